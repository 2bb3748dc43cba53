// Background-task figures: inserting 100k registrations, and how late timers fire while
// 10k are armed and each fire wakes a frozen partition — beside their baselines (Node's
// own timers, Miniflare Durable Object alarms) measured in the same run.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleComponent } from "../guests/examples.ts";
import { startHost, type HostEvent } from "../src/host.ts";
import { HeapTimerQueue } from "../src/scheduler/heap-timer-queue.ts";
import { openStore } from "../src/store/open.ts";
import { TaskRegistry } from "../src/tasks/registry.ts";
import { miniflareAlarmLateness } from "./peer-miniflare.ts";
import { percentile, round } from "./stats.ts";
import { spreadTimers, timerTask } from "./task-records.ts";

function heapMb(): number {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** 100k registrations (100 partitions × 1,000) into the registry on the fs store, armed in the timer queue. */
export async function insertFigures(): Promise<Record<string, number>> {
  const total = 100_000;
  const perPartition = 1000;
  const now = Date.now();
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-bench-insert-"));
  const store = await openStore({ dataDir });
  try {
    const registry = new TaskRegistry(store.registrations);
    const queue = new HeapTimerQueue();
    registry.watch({ changed: (task) => void queue.arm(`task:${task.id}`, task.nextFire!), removed: () => undefined });
    const batches = Array.from({ length: total / perPartition }, (_, p) =>
      Array.from({ length: perPartition }, (_, i) => timerTask(`p_${p}`, `t${i}`, now + 3_600_000 + p * perPartition + i, now)),
    );
    const heapBefore = heapMb();
    let started = performance.now();
    for (const [p, upserts] of batches.entries()) await registry.apply(`p_${p}`, { upserts, removals: [] });
    const insertMs = performance.now() - started;
    const heapAfter = heapMb();
    started = performance.now();
    const reloaded = new TaskRegistry(store.registrations);
    await reloaded.load();
    const loadMs = performance.now() - started;

    // Baseline: one Node timer per task, the thing a single queue avoids.
    const nodeBefore = heapMb();
    started = performance.now();
    const timers = Array.from({ length: total }, (_, i) => setTimeout(() => undefined, 3_600_000 + i));
    const nodeMs = performance.now() - started;
    const nodeAfter = heapMb();
    for (const timer of timers) clearTimeout(timer);
    return {
      "tasks.insert_100k.ms": round(insertMs, 1),
      "tasks.insert_100k.heap_mb": round(heapAfter - heapBefore, 1),
      "tasks.insert_100k.armed": await queue.size(),
      "tasks.load_100k_after_restart.ms": round(loadMs, 1),
      "tasks.baseline.node_setTimeout_100k.ms": round(nodeMs, 1),
      "tasks.baseline.node_setTimeout_100k.heap_mb": round(nodeAfter - nodeBefore, 1),
    };
  } finally {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

interface LatenessRun {
  /** From the due time to the start of the delivery attempt. */
  fire: number[];
  /** From the due time to the guest's reply (wake included). */
  done: number[];
  rehydrated: number;
}

/**
 * `partitions` frozen WAT partitions; `armed` one-shot timers over them, due from 3 s
 * from now, spread evenly over `spreadMs`; the first `measured` fires are measured.
 */
async function dormantLateness(partitions: number, armed: number, spreadMs: number, measured: number): Promise<LatenessRun> {
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-bench-lateness-"));
  const run: LatenessRun = { fire: [], done: [], rehydrated: 0 };
  let finished!: () => void;
  const all = new Promise<void>((resolve) => (finished = resolve));
  const onEvent = (event: HostEvent) => {
    if (event.type === "activated" && event.kind === "rehydrated") run.rehydrated++;
    if (event.type !== "delivered" || run.fire.length >= measured) return;
    run.fire.push(event.firedAt - event.scheduledAt);
    run.done.push(performance.timeOrigin + performance.now() - event.scheduledAt);
    if (run.fire.length === measured) finished();
  };
  const host = await startHost({ dataDir, executors: 2, idleTimeoutMs: 200, onEvent, budget: { maxConcurrent: 64 } });
  try {
    const { digest } = await host.components.add(await readFile(await exampleComponent("wat-minimal")));
    const ids: string[] = [];
    for (let p = 0; p < partitions; p++) ids.push((await host.partitions.create({ name: `p${p}`, component: digest })).id);
    await Promise.all(ids.map((id) => host.partitions.activate(id)));
    await host.partitions.freezeAll();
    const now = Date.now();
    for (const [partition, upserts] of spreadTimers(ids, armed, now + 3000, spreadMs, now)) await host.registry.apply(partition, { upserts, removals: [] });
    const timeout = setTimeout(finished, 3000 + spreadMs + 60_000);
    await all;
    clearTimeout(timeout);
    return run;
  } finally {
    await host.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Rounds of the 200-timer burst on each side (see `latenessFigures`). */
const ROUNDS = 3;

/** Lateness beside Miniflare's alarms; `spread: false` (`npm run bench -- lateness`) runs only the timers due together. */
export async function latenessFigures({ spread: withSpread = true } = {}): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  const put = (key: string, samples: number[]) => {
    figures[`${key}.p50_ms`] = round(percentile(samples, 50), 1);
    figures[`${key}.p99_ms`] = round(percentile(samples, 99), 1);
  };
  if (withSpread) {
    // 10k armed, due over 100 s; the first 1,000 fires (about 10 s) are measured.
    const spread = await dormantLateness(1000, 10_000, 100_000, 1000);
    put("lateness.dormant.10k_armed.fire", spread.fire);
    put("lateness.dormant.10k_armed.delivered", spread.done);
    figures["lateness.dormant.10k_armed.rehydrated"] = spread.rehydrated;
  }
  // A burst's tail moves by half from one run to the next on a shared machine, both
  // Dormant's and Miniflare's: 200 due together runs ROUNDS times, the two alternating,
  // and is compared by the median of each side's p99s (the range is kept beside it).
  for (const [count, rounds] of [
    [200, ROUNDS],
    [1000, 1],
  ] as const) {
    const ours: LatenessRun[] = [];
    const peers: number[][] = [];
    for (let r = 0; r < rounds; r++) {
      ours.push(await dormantLateness(count, count, 0, count));
      peers.push(await miniflareAlarmLateness(count, 0));
    }
    const middle = <T>(runs: T[], p99: (run: T) => number): T => [...runs].sort((a, b) => p99(a) - p99(b))[runs.length >> 1]!;
    const together = middle(ours, (run) => percentile(run.done, 99));
    const peer = middle(peers, (run) => percentile(run, 99));
    put(`lateness.dormant.${count}_due_together.fire`, together.fire);
    put(`lateness.dormant.${count}_due_together.delivered`, together.done);
    put(`lateness.miniflare.${count}_due_together.in_alarm`, peer);
    figures[`lateness.${count}_due_together.delivered_p99_vs_miniflare`] = round(percentile(together.done, 99) / Math.max(1, percentile(peer, 99)), 2);
    if (rounds > 1) {
      figures[`lateness.${count}_due_together.rounds`] = rounds;
      const range = (key: string, p99s: number[]) => {
        figures[`${key}.p99_ms_min`] = round(Math.min(...p99s), 1);
        figures[`${key}.p99_ms_max`] = round(Math.max(...p99s), 1);
      };
      range(
        `lateness.dormant.${count}_due_together.delivered`,
        ours.map((run) => percentile(run.done, 99)),
      );
      range(
        `lateness.miniflare.${count}_due_together.in_alarm`,
        peers.map((run) => percentile(run, 99)),
      );
    }
  }
  if (withSpread) put("lateness.miniflare.1000_over_10s.in_alarm", await miniflareAlarmLateness(1000, 10_000));
  return figures;
}
