// Whether a snapshot grows while the guest's state does not: one partition, frozen after
// every event (increment and push alternately, as a counter sees them), the stored bytes
// after 1, 200 and 2,000 cycles.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleComponent } from "../guests/examples.ts";
import type { TaskEvent } from "../runtime/executor/protocol.ts";
import type { JsEngine } from "../runtime/toolchain/js-engines.ts";
import { startHost } from "../src/host.ts";
import { round } from "./stats.ts";

const MARKS = [1, 200, 2000];

export async function growthFigures(label: string, engine: JsEngine): Promise<Record<string, number>> {
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-bench-growth-"));
  const host = await startHost({ dataDir, executors: 1 });
  const figures: Record<string, number> = {};
  try {
    const { digest } = await host.components.add(await readFile(await exampleComponent("counter", { engine })));
    const { id } = await host.partitions.create({ name: "growth", component: digest });
    for (let i = 1; i <= MARKS.at(-1)!; i++) {
      await host.partitions.deliver(id, event(i % 2 ? "increment" : "push", String(i)));
      await host.partitions.freeze(id);
      if (MARKS.includes(i)) figures[`snapshot.${label}.bytes_after_${i}`] = (await host.snapshots.head(id))!.latest.bytes;
    }
    figures[`snapshot.${label}.growth_1_to_2000`] = round(figures[`snapshot.${label}.bytes_after_2000`]! / figures[`snapshot.${label}.bytes_after_1`]!, 3);
    return figures;
  } finally {
    await host.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function event(entry: string, payload: string): TaskEvent {
  return { taskId: "bench", taskName: entry, entry, payload: new TextEncoder().encode(payload), scheduledAt: 0n, firedAt: 0n, attempt: 1, occurrences: 1 };
}
