// Graceful handover, step by step (`npm run bench -- handover`, a few minutes): three
// `dormant serve` processes (bin/dormant.js on dist/: `npm run build` first) on one
// PostgreSQL schema with 300 QuickJS counters spread over them. In each trial three fresh
// hosts start on the same schema, some counters are pushed (live on their owners, so the
// leaving host has that many to save), one host gets SIGTERM, and its counters are pushed
// through another host until one is answered. Read from the hosts' logs, from the signal:
// the leaving host's first shard released and its last freeze, the first and the last shard
// claimed by another host (by then every partition of the leaving host has a new owner),
// and the first delivery of one of its partitions on a new owner (what bench/cluster.ts
// reports as the handover time).
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { exampleComponent } from "../guests/examples.ts";
import { generateToken } from "../src/http/auth.ts";
import { adminApi, spawnServe, type ServeProcess } from "../test/support/serve-process.ts";
import { percentile, round } from "./stats.ts";
import { inParallel } from "../test/support/in-parallel.ts";

const PARTITIONS = 300;
const TRIALS = 3;
/** Counters pushed before the stop, in the two kinds of trial: every one, and a tenth. */
const LIVE = [PARTITIONS, PARTITIONS / 10];
const SHARDS = 64;
const TTL_MS = 10_000;
const TOKEN = generateToken();
const FLAGS = ["--push-rate", "1000000", "--push-burst", "1000000"];

interface Line {
  at: string;
  event: string;
  partition?: string;
  ok?: boolean;
  how?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const api = (serve: ServeProcess, method: string, path: string, body?: unknown, type?: string) => adminApi(serve, TOKEN, method, path, body, type);

/** What a process logged, from its `from`th chunk on (the first may begin mid-line). */
function lines(serve: ServeProcess, from = 0): Line[] {
  return serve.stdout
    .slice(from)
    .join("")
    .split("\n")
    .flatMap((line) => {
      try {
        return line.startsWith("{") ? [JSON.parse(line) as Line] : [];
      } catch {
        return [];
      }
    });
}

async function startServes(url: string, root: string, count: number): Promise<ServeProcess[]> {
  const serves = await Promise.all(
    Array.from({ length: count }, async () =>
      spawnServe(await mkdtemp(join(root, "host-")), TOKEN, [...FLAGS, "--cluster", url, "--cluster-ttl", String(TTL_MS), "--cluster-shards", String(SHARDS)]),
    ),
  );
  const fair = Math.ceil(SHARDS / count);
  for (;;) {
    const { cluster } = await api(serves[0]!, "GET", "/api/cluster");
    const held = (cluster.members as { alive: boolean; shards: number }[]).filter((m) => m.alive).map((m) => m.shards);
    if (held.length === count && held.every((n) => n <= fair) && held.reduce((a, b) => a + b, 0) === SHARDS) return serves;
    await sleep(100);
  }
}

async function stopAll(serves: ServeProcess[]): Promise<void> {
  for (const serve of serves) if (serve.process.exitCode === null && serve.process.signalCode === null) serve.process.kill("SIGTERM");
  await Promise.all(serves.map((serve) => serve.exit));
}

/** One trial: `live` counters pushed, then SIGTERM to one host; the times of its steps from the signal (ms). */
async function trial(serves: ServeProcess[], made: { id: string; path: string }[], live: number): Promise<Record<string, number>> {
  await inParallel(made.slice(0, live), 16, ({ path }, i) =>
    fetch(`${serves[i % 3]!.pushUrl}${path}`, { method: "POST", body: "w" }).then((r) => r.arrayBuffer()),
  );
  const leaving = serves[2]!;
  const remaining = serves.slice(0, 2);
  const owners = await inParallel(made, 16, async ({ id }) => (await api(serves[0]!, "GET", `/api/cluster/owner/${id}`)).address as string);
  const theirs = made.filter((_, i) => owners[i] === leaving.pushUrl);
  const ids = new Set(theirs.map(({ id }) => id));
  const logged = remaining.map((serve) => serve.stdout.length);
  const leavingLogged = leaving.stdout.length;
  const signalledAt = Date.now();
  leaving.process.kill("SIGTERM");
  const since = (e: Line) => Date.parse(e.at) - signalledAt;
  const firstDelivery = () => {
    const times = remaining.flatMap((serve, i) =>
      lines(serve, logged[i]).flatMap((e) => (e.event === "delivery" && e.ok && ids.has(e.partition!) && since(e) >= 0 ? [since(e)] : [])),
    );
    return times.length > 0 ? Math.min(...times) : undefined;
  };
  // As bench/cluster.ts does: push the first of the leaving host's counters through a remaining host until one is delivered there.
  while (firstDelivery() === undefined) {
    if (Date.now() > signalledAt + 60_000) throw new Error("No partition of the stopped host was delivered on another host within 60 s.");
    await Promise.all(
      theirs.slice(0, 8).map(({ path }) =>
        fetch(`${remaining[0]!.pushUrl}${path}`, { method: "POST", body: "x" }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        ),
      ),
    );
    await sleep(20);
  }
  await leaving.exit;
  const left = lines(leaving, leavingLogged);
  const frozen = left.filter((e) => e.event === "frozen").map(since);
  const released = left.filter((e) => e.event === "shards-released" && e.how === "handover").map(since);
  const acquired = remaining.flatMap((serve, i) =>
    lines(serve, logged[i])
      .filter((e) => e.event === "shards-acquired")
      .map(since),
  );
  return {
    saved: frozen.length,
    ...(released.length > 0 ? { first_shard_released_ms: Math.min(...released) } : {}),
    last_freeze_ms: Math.max(0, ...frozen),
    first_shard_claimed_ms: Math.min(...acquired),
    last_shard_claimed_ms: Math.max(...acquired),
    first_delivery_ms: firstDelivery()!,
  };
}

export async function handoverFigures(): Promise<Record<string, number>> {
  const component = await readFile(await exampleComponent("counter", { engine: "quickjs" }));
  const schema = `dormant_handover_${randomBytes(5).toString("hex")}`;
  const url = `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`;
  const root = await mkdtemp(join(tmpdir(), "dormant-handover-"));
  const admin = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres", max: 1 });
  const figures: Record<string, number> = { "cluster.handover.load_avg_1m.start": round(loadavg()[0]!, 1) };
  try {
    // The counters, created over three hosts that then stop: every one frozen when the trials begin.
    let serves = await startServes(url, root, 3);
    const { digest } = await api(serves[0]!, "POST", "/api/components", component, "application/wasm");
    const made = await inParallel(
      Array.from({ length: PARTITIONS }, (_, i) => i),
      16,
      async (i) => {
        const { id, tasks } = await api(serves[i % 3]!, "POST", "/api/partitions", { name: `c${i}`, component: digest });
        return { id: id as string, path: tasks.find((t: { name: string }) => t.name === "inbox").pushUrl as string };
      },
    );
    await stopAll(serves);
    for (const live of LIVE) {
      const samples: Record<string, number[]> = {};
      for (let n = 0; n < TRIALS; n++) {
        serves = await startServes(url, root, 3);
        try {
          const steps = await trial(serves, made, live);
          console.error(`handover, ${live} live: ${JSON.stringify(steps)} (load ${loadavg()[0]!.toFixed(1)})`);
          for (const [key, value] of Object.entries(steps)) (samples[key] ??= []).push(value);
        } finally {
          await stopAll(serves);
        }
      }
      for (const [key, values] of Object.entries(samples)) {
        figures[`cluster.handover.${live}_live.${key}.median`] = round(percentile(values, 50), 0);
        figures[`cluster.handover.${live}_live.${key}.max`] = Math.max(...values);
      }
    }
    figures["cluster.handover.load_avg_1m.end"] = round(loadavg()[0]!, 1);
    return figures;
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
    await rm(root, { recursive: true, force: true });
  }
}
