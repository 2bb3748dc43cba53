// Freeze and wake figures for one example guest, through a real host (executors, fs store).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleComponent, type ExampleName } from "../guests/examples.ts";
import type { JsEngine } from "../runtime/toolchain/js-engines.ts";
import type { PreparedComponent } from "../runtime/engine.ts";
import type { TaskEvent } from "../runtime/executor/protocol.ts";
import { startHost } from "../src/host.ts";
import { idleThreadRoundTrip, plainJcoInstantiate } from "./baseline-jco.ts";
import { percentile, round } from "./stats.ts";

/** The event both wake benches deliver: the guests count it. */
export const tick: TaskEvent = {
  taskId: "bench",
  taskName: "tick",
  entry: "tick",
  payload: new Uint8Array(),
  scheduledAt: 0n,
  firedAt: 0n,
  attempt: 1,
  occurrences: 1,
};

/** The idle time between a freeze and the next wake, in which the executor refills its pool. */
const IDLE_GAP_MS = 15;

export async function wakeFigures(label: string, example: ExampleName, cycles: number, engine?: JsEngine): Promise<Record<string, number>> {
  const bytes = await readFile(await exampleComponent(example, { engine }));
  const figures: Record<string, number> = { [`component.${label}.bytes`]: bytes.length };
  let plainSamples: number[] = [];
  await measureHost(bytes, 0, 5, 0, async (prepared) => {
    plainSamples = await plainJcoInstantiate(prepared, Math.min(cycles, 100));
  });
  const plainP50 = percentile(plainSamples, 50);
  figures[`instantiate.${label}.plain_jco.p50_ms`] = round(plainP50);
  // A wake crosses to its executor and back after the same idle gap: this is its floor here.
  const floor = await idleThreadRoundTrip(Math.min(cycles, 200), IDLE_GAP_MS);
  figures[`wake.floor.thread_round_trip_after_idle.p50_ms`] = round(percentile(floor, 50));

  // pool: a spare instance and the snapshot in the host's memory (a warm wake);
  // cold: a spare instance, the snapshot read from the store and inflated;
  // fresh: no spare instance either (instantiated on every wake).
  for (const [mode, spareInstances, snapshotCacheBytes] of [
    ["pool", 2, undefined],
    ["cold", 2, 0],
    ["fresh", 0, 0],
  ] as const) {
    const run = await measureHost(bytes, spareInstances, cycles, snapshotCacheBytes);
    const wakeP50 = percentile(run.wake, 50);
    figures[`wake.${label}.${mode}.p50_ms`] = round(wakeP50);
    figures[`wake.${label}.${mode}.p99_ms`] = round(percentile(run.wake, 99));
    figures[`wake.${label}.${mode}.speedup_vs_plain_instantiate`] = round(plainP50 / wakeP50, 2);
    if (mode === "fresh") {
      figures[`instantiate.${label}.fresh.p50_ms`] = round(percentile(run.firstActivation, 50));
      figures[`freeze.${label}.p50_ms`] = round(percentile(run.freeze, 50));
      figures[`freeze.${label}.p99_ms`] = round(percentile(run.freeze, 99));
      figures[`snapshot.${label}.bytes`] = run.snapshotBytes;
      figures[`call.${label}.warm.p50_ms`] = round(percentile(run.warmCall, 50));
    }
  }
  return figures;
}

async function measureHost(
  bytes: Uint8Array,
  spareInstances: number,
  cycles: number,
  snapshotCacheBytes: number | undefined,
  beforeClose?: (prepared: PreparedComponent) => Promise<void>,
) {
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-bench-"));
  let snapshotBytes = 0;
  const firstActivation: number[] = [];
  const host = await startHost({
    dataDir,
    executors: 1,
    spareInstances,
    ...(snapshotCacheBytes === undefined ? {} : { snapshotCacheBytes }),
    onEvent: (event) => {
      if (event.type === "frozen") snapshotBytes = event.bytes;
      if (event.type === "activated" && event.kind === "fresh") firstActivation.push(event.ms);
    },
  });
  try {
    const prepared = await host.components.add(bytes);
    const wake: number[] = [];
    const freeze: number[] = [];
    for (let p = 0; p < 5; p++) {
      const { id } = await host.partitions.create({ name: `fresh-${p}`, component: prepared.digest });
      await host.partitions.deliver(id, tick);
    }
    const { id } = await host.partitions.create({ name: "bench", component: prepared.digest });
    await host.partitions.deliver(id, tick);
    for (let i = 0; i < cycles; i++) {
      let started = performance.now();
      await host.partitions.freeze(id);
      freeze.push(performance.now() - started);
      // Let the executor refill its pool between wakes, as idle time would.
      await new Promise((resolve) => setTimeout(resolve, spareInstances > 0 ? IDLE_GAP_MS : 0));
      started = performance.now();
      await host.partitions.deliver(id, tick);
      wake.push(performance.now() - started);
    }
    const head = await host.snapshots.head(id);
    // An event to a live partition: the thread round trip and the guest's own work.
    const warmCall: number[] = [];
    for (let i = 0; i < Math.min(cycles, 200); i++) {
      const started = performance.now();
      await host.partitions.deliver(id, tick);
      warmCall.push(performance.now() - started);
    }
    await beforeClose?.(prepared);
    return { prepared, wake, freeze, warmCall, firstActivation, snapshotBytes: head?.latest.bytes ?? snapshotBytes };
  } finally {
    await host.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
