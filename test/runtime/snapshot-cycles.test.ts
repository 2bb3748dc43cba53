// A guest's state survives being frozen and woken again and again: each wake restores the
// snapshot of the last freeze exactly, through an executor and the fs store.
import { describe, expect, it } from "vitest";
import { testHosts } from "../support/host.ts";
import { bodyText, event } from "../support/runtime.ts";

// The suite runs 100 cycles; `DORMANT_SOAK=1 npx vitest run test/runtime/snapshot-cycles.test.ts`
// runs 1,000 (about 15 s here: each freeze is an fsynced store write).
const CYCLES = process.env.DORMANT_SOAK ? 1_000 : 100;

describe("freeze/rehydrate cycles", () => {
  const hosts = testHosts();

  it(`keeps a QuickJS counter exact across ${CYCLES} freeze/rehydrate cycles`, async () => {
    const h = await hosts.start({ executors: 1 });
    const component = await h.deploy("counter", { engine: "quickjs" });
    const { id } = await h.partitions.create({ name: "exact", component });
    const counts: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const outcome = await h.partitions.deliver(id, event("push"));
      counts.push(JSON.parse(bodyText(outcome.ok ? outcome.reply?.body : undefined)).count);
      await h.partitions.freeze(id);
    }
    expect(counts).toEqual(Array.from({ length: CYCLES }, (_, i) => i + 1));
    const final = await h.partitions.deliver(id, event("get"));
    expect(JSON.parse(bodyText(final.ok ? final.reply?.body : undefined))).toEqual({ count: CYCLES, activations: CYCLES + 1 });
    expect(h.events.filter((e) => e.type === "activated" && e.partition === id).map((e) => e.type === "activated" && e.kind)).toEqual([
      "fresh",
      ...Array(CYCLES).fill("rehydrated"),
    ]);
  });
});
