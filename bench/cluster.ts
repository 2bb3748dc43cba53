// Cluster figures (`npm run bench -- cluster`, minutes): real `dormant serve` processes
// (bin/dormant.js on dist/: `npm run build` first) on one PostgreSQL schema, 1 host and
// 3 hosts, beside a single `dormant serve` on the fs store measured in the same run:
// - timer lateness with 10,000 timers armed over 1,000 frozen QuickJS counters: 200 of
//   them due over 20 s, the rest an hour later, so the heap holds 10,000 while nothing else
//   fires afterwards. Each fire wakes a counter: at 10 a second a single host keeps up on
//   a loaded 2-core machine (at bench/tasks.ts's 100 a second, with the QuickJS counter
//   instead of WAT, it did not, and lateness measured the backlog, not the timers). Read from each host's own
//   `dormant_fire_lateness_ms` histogram (first attempts of timers: firedAt − scheduledAt),
//   so p50 and p99 are the upper bounds of their buckets, and the share within 10 ms is exact;
// - spread pushes over the 1,000 counters, each request to a random host (bench/load-client.ts);
// - forwarding: one warm counter pushed sequentially through its owner and through another host;
// - failover: SIGKILL of a host to the first delivery of one of its partitions on a new
//   owner, and SIGTERM (graceful handover) to the same, read from the new owner's log.
// The timers and partitions are written by an in-process host on the same store before
// the serve processes start (the admin API has no way to arm 10,000 timers).
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { exampleComponent } from "../guests/examples.ts";
import { generateToken } from "../src/http/auth.ts";
import { startHost, type Host } from "../src/host.ts";
import { spawnServe, type ServeProcess } from "../test/support/serve-process.ts";
import { load, loadFigures } from "./push.ts";
import { histogramOf, histogramPercentile, percentile, round } from "./stats.ts";
import { spreadTimers } from "./task-records.ts";
import { inParallel } from "../test/support/in-parallel.ts";

const PARTITIONS = 1000;
const ARMED = 10_000;
/** Due over `WINDOW_MS` in each run; the rest of `ARMED` an hour later. */
const MEASURED = 200;
const WINDOW_MS = 20_000;
/** From arming a run's timers to the first being due: the serve processes start and take their shards in between. */
const LEAD_MS = 25_000;
/** The default: on a loaded machine a shorter one lets leases lapse while the preparing host is busy. */
const TTL_MS = 10_000;
const SHARDS = 64;
const TOKEN = generateToken();
const FLAGS = ["--push-rate", "1000000", "--push-burst", "1000000"];

interface Setup {
  /** Where every process of the setup gets its data directory. */
  root: string;
  /** The single host's fs data directory, or the cluster's URL. */
  dataDir?: string;
  url?: string;
}

const clusterFlags = (url: string) => ["--cluster", url, "--cluster-ttl", String(TTL_MS), "--cluster-shards", String(SHARDS)];

/** An in-process host on the setup's store, alone (holding every shard of a cluster), for `work`; closed after (handing its shards back). */
async function prepHost<T>(setup: Setup, work: (host: Host) => Promise<T>): Promise<T> {
  const dataDir = setup.dataDir ?? (await mkdtemp(join(setup.root, "prep-")));
  const cluster = setup.url ? { cluster: { url: setup.url, shards: SHARDS, ttlMs: TTL_MS, host: `bench-prep-${randomBytes(3).toString("hex")}` } } : {};
  const host = await startHost({ dataDir, executors: 2, ...cluster });
  try {
    if (host.cluster) {
      await host.cluster.join({ address: "http://bench-prep.invalid", adminAddress: "http://bench-prep.invalid" });
      await until(() => host.cluster!.membership.heldShards().length === SHARDS, 60_000, "the preparing host to hold every shard");
    }
    return await work(host);
  } finally {
    await host.close();
  }
}

/** 1,000 QuickJS counters, activated (registering their `inbox` push task) and frozen, with `ARMED - MEASURED` timers an hour away; their inbox paths. */
async function provision(setup: Setup, component: Uint8Array): Promise<{ id: string; path: string }[]> {
  return prepHost(setup, async (host) => {
    const { digest } = await host.components.add(component);
    const made: { id: string; path: string }[] = [];
    let n = 0;
    await inParallel(Array.from({ length: PARTITIONS }), 16, async () => {
      const { id } = await host.partitions.create({ name: `c${n++}`, component: digest });
      await host.partitions.activate(id);
      const inbox = host.registry.tasksOf(id).find((task) => task.name === "inbox")!;
      made.push({ id, path: `/push/${inbox.pushToken}` });
    });
    const ids = made.map(({ id }) => id);
    const now = Date.now();
    const far = spreadTimers(ids, ARMED - MEASURED, now + 3_600_000, 100_000, now, "far");
    // The counter's own 60 s heartbeat would fire among the measured timers: only the bench's timers are armed.
    for (const id of ids) await host.registry.apply(id, { upserts: far.get(id) ?? [], removals: ["heartbeat"] });
    await host.partitions.freezeAll();
    return made;
  });
}

/** Arms `MEASURED` timers due over `WINDOW_MS` from `LEAD_MS` on; when the first is due. */
async function armWindow(setup: Setup, ids: string[], run: string): Promise<number> {
  return prepHost(setup, async (host) => {
    const now = Date.now();
    const start = now + LEAD_MS;
    for (const [id, upserts] of spreadTimers(ids, MEASURED, start, WINDOW_MS, now, `${run}-`)) await host.registry.apply(id, { upserts, removals: [] });
    return start;
  });
}

async function startServes(setup: Setup, count: number): Promise<ServeProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, async () => {
      const dataDir = setup.dataDir ?? (await mkdtemp(join(setup.root, "host-")));
      return spawnServe(dataDir, TOKEN, [...FLAGS, ...(setup.url ? clusterFlags(setup.url) : [])]);
    }),
  );
  if (setup.url) await until(async () => fairShares(started), 60_000, `${count} hosts to hold their shares`);
  return started;
}

async function stopServes(serves: ServeProcess[]): Promise<void> {
  await Promise.all(
    serves.map(async (serve) => {
      if (serve.process.exitCode === null && serve.process.signalCode === null) serve.process.kill("SIGTERM");
      await serve.exit;
    }),
  );
}

async function api(serve: ServeProcess, path: string): Promise<any> {
  const response = await fetch(`${serve.adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`);
  return path === "/metrics" ? response.text() : response.json();
}

async function fairShares(serves: ServeProcess[]): Promise<boolean> {
  const { cluster } = await api(serves[0]!, "/api/cluster");
  const held = (cluster.members as { alive: boolean; shards: number }[]).filter((m) => m.alive).map((m) => m.shards);
  // No host over its fair share and every shard held: as even as whole shards allow (64 over 3 is 22, 22, 20).
  const fair = Math.ceil(SHARDS / serves.length);
  return held.length === serves.length && held.every((n) => n <= fair) && held.reduce((a, b) => a + b, 0) === SHARDS;
}

/** Lateness of the run's window, from the hosts' histograms once the window is over. */
async function lateness(key: string, serves: ServeProcess[], start: number): Promise<Record<string, number>> {
  const readyBefore = start - Date.now();
  await sleep(start + WINDOW_MS + 2000 - Date.now());
  const buckets = histogramOf(await Promise.all(serves.map((serve) => api(serve, "/metrics"))), "dormant_fire_lateness_ms");
  const fires = buckets.at(-1)?.count ?? 0;
  return {
    [`${key}.ready_before_due_ms`]: Math.round(readyBefore),
    [`${key}.fires`]: fires,
    [`${key}.p50_le_ms`]: histogramPercentile(buckets, 50),
    [`${key}.p99_le_ms`]: histogramPercentile(buckets, 99),
    [`${key}.within_10ms_pct`]: round((100 * (buckets.find((b) => b.le === 10)?.count ?? 0)) / Math.max(1, fires), 1),
  };
}

/** Every inbox once, in random order, each request to a random host. */
async function spreadPush(key: string, serves: ServeProcess[], made: { path: string }[]): Promise<Record<string, number>> {
  const urls = made.map(({ path }) => `${serves[Math.floor(Math.random() * serves.length)]!.pushUrl}${path}`).sort(() => Math.random() - 0.5);
  return loadFigures(key, await load(urls, urls.length, 32));
}

/** Sync pushes to one warm counter, one at a time, alternating: through its owner and through another host. */
async function forwarding(serves: ServeProcess[], made: { id: string; path: string }[]): Promise<Record<string, number>> {
  const { id, path } = made[0]!;
  const { address } = await api(serves[0]!, `/api/cluster/owner/${id}`);
  const owner = serves.find((serve) => serve.pushUrl === address)!;
  const other = serves.find((serve) => serve !== owner)!;
  const direct: number[] = [];
  const forwarded: number[] = [];
  const once = async (via: ServeProcess) => {
    const started = performance.now();
    const response = await fetch(`${via.pushUrl}${path}`, { method: "POST", body: "ping" });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`A push through ${via.pushUrl} answered ${response.status}.`);
    return performance.now() - started;
  };
  for (let i = 0; i < 50; i++) await Promise.all([once(owner), once(other)]); // warm: connections, the forwarder's pool
  for (let i = 0; i < 500; i++) {
    direct.push(await once(owner));
    forwarded.push(await once(other));
  }
  const figures: Record<string, number> = {};
  for (const p of [50, 99]) {
    figures[`cluster.forward.direct_to_owner.p${p}_ms`] = round(percentile(direct, p), 2);
    figures[`cluster.forward.through_other_host.p${p}_ms`] = round(percentile(forwarded, p), 2);
    figures[`cluster.forward.overhead.p${p}_ms`] = round(percentile(forwarded, p) - percentile(direct, p), 2);
  }
  return figures;
}

/**
 * Signal `leaving`, push its partitions through a remaining host until one is answered, and
 * give the time from the signal to the first delivery of one of them that a remaining host
 * (its new owner) logged.
 */
async function moveTime(serves: ServeProcess[], leaving: ServeProcess, made: { id: string; path: string }[], signal: NodeJS.Signals): Promise<number> {
  const owners = await Promise.all(made.slice(0, 100).map(async ({ id }) => (await api(serves[0]!, `/api/cluster/owner/${id}`)).address as string));
  const theirs = made.slice(0, 100).filter((_, i) => owners[i] === leaving.pushUrl);
  const via = serves.find((serve) => serve !== leaving)!;
  const remaining = serves.filter((serve) => serve !== leaving);
  const ids = new Set(theirs.map(({ id }) => id));
  const logged = remaining.map((serve) => serve.stdout.length);
  const signalledAt = Date.now();
  leaving.process.kill(signal);
  const firstDelivery = () => {
    const times = remaining.flatMap((serve, i) =>
      serve.stdout
        .slice(logged[i])
        .join("")
        .split("\n")
        .flatMap((line) => {
          // The first chunk may begin mid-line.
          const e = parse(line);
          return e?.event === "delivery" && e.ok && ids.has(e.partition!) && Date.parse(e.at) >= signalledAt ? [Date.parse(e.at)] : [];
        }),
    );
    return times.length > 0 ? Math.min(...times) : undefined;
  };
  const deadline = signalledAt + TTL_MS + 30_000;
  while (firstDelivery() === undefined) {
    if (Date.now() > deadline) throw new Error(`No partition of the ${signal} host was delivered on another host within ${deadline - signalledAt} ms.`);
    await Promise.all(
      theirs.slice(0, 8).map(({ path }) =>
        fetch(`${via.pushUrl}${path}`, { method: "POST", body: "x" }).then(
          (r) => r.arrayBuffer(),
          () => undefined,
        ),
      ),
    );
    await sleep(20);
  }
  await leaving.exit;
  return firstDelivery()! - signalledAt;
}

export async function clusterFigures(): Promise<Record<string, number>> {
  const component = await readFile(await exampleComponent("counter", { engine: "quickjs" }));
  const schema = `dormant_bench_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres", max: 1 });
  const root = await mkdtemp(join(tmpdir(), "dormant-bench-cluster-"));
  const single: Setup = { root, dataDir: await mkdtemp(join(root, "fs-")) };
  const cluster: Setup = { root, url: `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}` };
  const figures: Record<string, number> = { "cluster.load_avg_1m.start": round(loadavg()[0]!, 1), "cluster.ttl_ms": TTL_MS, "cluster.shards": SHARDS };
  const running: ServeProcess[] = [];
  // Shown as they come (minutes apart), so a run cut short still tells what it measured.
  const add = (more: Record<string, number>) => {
    for (const [key, value] of Object.entries(more)) console.error(`${key}  ${value}`);
    Object.assign(figures, more);
  };
  const serve = async (setup: Setup, count: number) => {
    const started = await startServes(setup, count);
    running.push(...started);
    return started;
  };
  try {
    // Baseline: one `dormant serve` on the fs store, as a single host runs today.
    const onFs = await provision(single, component);
    let start = await armWindow(
      single,
      onFs.map(({ id }) => id),
      "fs",
    );
    let serves = await serve(single, 1);
    add(await lateness("cluster.lateness.baseline_single_fs", serves, start));
    add(await spreadPush("cluster.push.baseline_single_fs.spread_1000", serves, onFs));
    await stopServes(serves);

    const made = await provision(cluster, component);
    const ids = made.map(({ id }) => id);
    for (const count of [1, 3]) {
      const label = count === 1 ? "1_host" : "3_hosts";
      start = await armWindow(cluster, ids, label);
      serves = await serve(cluster, count);
      add(await lateness(`cluster.lateness.${label}`, serves, start));
      add(await spreadPush(`cluster.push.${label}.spread_1000_random_host`, serves, made));
      if (count === 1) await stopServes(serves);
    }
    add(await forwarding(serves, made));
    add({
      "cluster.failover.sigkill_to_first_delivery_ms": await moveTime(serves, serves[2]!, made, "SIGKILL"),
      "cluster.failover.goal_ttl_plus_1s_ms": TTL_MS + 1000,
    });
    add({ "cluster.handover.sigterm_to_first_delivery_ms": await moveTime(serves.slice(0, 2), serves[1]!, made, "SIGTERM") });
    add({ "cluster.load_avg_1m.end": round(loadavg()[0]!, 1) });
    return figures;
  } finally {
    for (const child of running) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
    await Promise.all(running.map((child) => child.exit));
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
    await rm(root, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function parse(line: string): { event: string; partition?: string; ok?: boolean; at: string } | undefined {
  try {
    return JSON.parse(line) as { event: string; partition?: string; ok?: boolean; at: string };
  } catch {
    return undefined;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`Waited ${timeoutMs} ms for ${what}.`);
    await sleep(100);
  }
}
