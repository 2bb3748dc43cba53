// Push figures: requests to one warm partition, and requests spread over 1,000 frozen
// partitions (each woken by its request), beside a plain hono handler and Miniflare
// Durable Objects measured in the same run. Load comes from a separate process, on
// 127.0.0.1 only, for a fixed number of requests.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Miniflare } from "miniflare";
import { exampleComponent } from "../guests/examples.ts";
import { isCompiled, moduleUrl } from "../runtime/module-url.ts";
import { startServer, type Server } from "../src/serve/server.ts";
import { round } from "./stats.ts";
import { pushTask } from "./task-records.ts";

const run = promisify(execFile);
const LOADER = fileURLToPath(moduleUrl("./load-client.ts", import.meta.url));

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
  /** The loader's CPU time over wall time (1 = one core busy): near 1, the loader was the bound. */
  loaderCpu: number;
}

/** `requests` POSTs spread over `urls` (on one origin or several) from a loader process. */
export async function load(urls: string[], requests: number, connections: number): Promise<Load> {
  const spec = { urls, requests, connections, method: "POST", body: "ping" };
  const { stdout } = await run(process.execPath, [...(isCompiled(import.meta.url) ? [] : ["--import", "tsx"]), LOADER, JSON.stringify(spec)], {
    maxBuffer: 1 << 20,
    timeout: 300_000,
  });
  return JSON.parse(stdout) as Load;
}

/** A load's figures under `key`: rps, p99, the loader's CPU, and the answers that were not 2xx. */
export function loadFigures(key: string, result: Load): Record<string, number> {
  const figures: Record<string, number> = {
    [`${key}.rps`]: round(result.rps, 0),
    [`${key}.p99_ms`]: round(result.p99, 2),
    [`${key}.loader_cpu`]: round(result.loaderCpu, 2),
  };
  const failed = Object.entries(result.statuses)
    .filter(([status]) => !status.startsWith("2"))
    .reduce((sum, [, n]) => sum + n, 0);
  if (failed > 0) figures[`${key}.non_2xx`] = failed;
  return figures;
}

async function plainHono(): Promise<{ url: string; close(): void }> {
  const app = new Hono();
  app.post("/push/:token", async (c) => c.json({ ok: true, echo: await c.req.text() }));
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      resolve({ url: `http://127.0.0.1:${info.port}`, close: () => server.close() }),
    );
  });
}

const DO_WORKER = `
export class Counter {
  constructor(ctx) { this.ctx = ctx; }
  async fetch(request) {
    const count = ((await this.ctx.storage.get("count")) ?? 0) + 1;
    await this.ctx.storage.put("count", count);
    return Response.json({ count, echo: await request.text() });
  }
}
export default {
  async fetch(request, env) {
    const name = new URL(request.url).pathname.split("/")[2];
    return env.COUNTER.get(env.COUNTER.idFromName(name)).fetch(request);
  },
};`;

async function dormant(work: (server: Server) => Promise<void>): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-bench-push-"));
  const server = await startServer({
    dataDir,
    port: 0,
    adminPort: 0,
    executors: 2,
    maxLive: 250,
    log: () => undefined,
    http: { pushRate: { perSecond: 1e9, burst: 1e9 } },
  });
  try {
    await work(server);
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function pushFigures(): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  const put = (key: string, result: Load) => Object.assign(figures, loadFigures(key, result));
  const WARM_REQUESTS = 20_000;

  const hono = await plainHono();
  await load([`${hono.url}/push/warmup`], 2000, 32);
  const plain = await load([`${hono.url}/push/x`], WARM_REQUESTS, 32);
  hono.close();
  put("push.baseline.plain_hono", plain);

  await dormant(async (server) => {
    const { partitions } = server.host;
    const wat = await server.host.components.add(await readFile(await exampleComponent("wat-minimal")));
    const js = await server.host.components.add(await readFile(await exampleComponent("counter", { engine: "starlingmonkey" })));
    const qjs = await server.host.components.add(await readFile(await exampleComponent("counter", { engine: "quickjs" })));

    /** A counter partition, activated so it registers its `inbox` push task; returns the task's URL. */
    const counterInbox = async (name: string, digest: string, durability: "on-idle" | "per-activation" = "on-idle") => {
      const counter = await partitions.create({ name, component: digest, durability });
      await partitions.activate(counter.id);
      const inbox = server.host.registry.tasksOf(counter.id).find((task) => task.name === "inbox")!;
      return `${server.pushUrl}/push/${inbox.pushToken}`;
    };

    // One warm partition: the JS counter's own `inbox` push task (QuickJS and StarlingMonkey), and a WAT partition's.
    for (const [label, digest] of [
      ["warm_qjs", qjs.digest],
      ["warm_js", js.digest],
    ] as const) {
      const url = await counterInbox(label, digest);
      await load([url], 1000, 32);
      const warm = await load([url], WARM_REQUESTS, 32);
      put(`push.dormant.${label}`, warm);
      figures[`push.dormant.${label}.vs_plain_hono`] = round(warm.rps / plain.rps, 3);
    }

    const single = await partitions.create({ name: "wat", component: wat.digest });
    const task = pushTask(single.id, Date.now());
    await server.host.registry.apply(single.id, { upserts: [task], removals: [] });
    const watUrl = `${server.pushUrl}/push/${task.pushToken}`;
    await load([watUrl], 1000, 32);
    const warmWat = await load([watUrl], WARM_REQUESTS, 32);
    put("push.dormant.warm_wat", warmWat);
    figures["push.dormant.warm_wat.vs_plain_hono"] = round(warmWat.rps / plain.rps, 3);

    // 1,000 frozen partitions, each woken by one request, in random order: WAT, and the
    // QuickJS counter under both durabilities (per-activation stores a snapshot per request,
    // as Miniflare writes its storage per request).
    const spread = async (key: string, make: (i: number) => Promise<string>) => {
      const urls: string[] = [];
      for (let i = 0; i < 1000; i++) urls.push(await make(i));
      await partitions.freezeAll();
      urls.sort(() => Math.random() - 0.5);
      const before = server.host.snapshots.cacheStats;
      put(key, await load(urls, urls.length, 32));
      const after = server.host.snapshots.cacheStats;
      figures[`${key}.snapshot_cache_hit_ratio`] = round((after.hits - before.hits) / Math.max(1, after.hits + after.misses - before.hits - before.misses), 2);
      // The same again, every partition frozen again: the host's code paths are warm by now, as on a host that has run a while.
      await partitions.freezeAll();
      urls.sort(() => Math.random() - 0.5);
      put(`${key}.again`, await load(urls, urls.length, 32));
    };
    await spread("push.dormant.spread_1000_frozen", async (i) => {
      const p = await partitions.create({ name: `w${i}`, component: wat.digest });
      const t = pushTask(p.id, Date.now());
      await server.host.registry.apply(p.id, { upserts: [t], removals: [] });
      await partitions.activate(p.id);
      return `${server.pushUrl}/push/${t.pushToken}`;
    });
    await spread("push.dormant.spread_1000_frozen_qjs", (i) => counterInbox(`q${i}`, qjs.digest));
    await spread("push.dormant.spread_1000_frozen_qjs_per_activation", (i) => counterInbox(`a${i}`, qjs.digest, "per-activation"));
  });

  const mf = new Miniflare({
    modules: true,
    script: DO_WORKER.replace("constructor(ctx) {", "constructor(ctx, env) {"),
    durableObjects: { COUNTER: "Counter" },
    port: 0,
    host: "127.0.0.1",
  });
  try {
    const base = (await mf.ready).toString().replace(/\/$/, "");
    await load([`${base}/push/warm`], 1000, 32);
    put("push.miniflare.one_object", await load([`${base}/push/warm`], 5000, 32));
    const names = Array.from({ length: 1000 }, (_, i) => `${base}/push/o${i}`).sort(() => Math.random() - 0.5);
    const spread = await load(names, names.length, 32);
    put("push.miniflare.spread_1000_new_objects", spread);
    figures["push.spread_1000.dormant_vs_miniflare"] = round(figures["push.dormant.spread_1000_frozen.rps"]! / spread.rps, 2);
    figures["push.spread_1000.qjs_vs_miniflare"] = round(figures["push.dormant.spread_1000_frozen_qjs.rps"]! / spread.rps, 2);
    figures["push.spread_1000.qjs_again_vs_miniflare"] = round(figures["push.dormant.spread_1000_frozen_qjs.again.rps"]! / spread.rps, 2);
    figures["push.spread_1000.qjs_per_activation_vs_miniflare"] = round(figures["push.dormant.spread_1000_frozen_qjs_per_activation.rps"]! / spread.rps, 2);
  } finally {
    await mf.dispose();
  }
  return figures;
}
