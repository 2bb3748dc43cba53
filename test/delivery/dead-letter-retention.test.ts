// Dead letters are kept within bounds: per partition, per host and by age. The oldest go
// first, each with an event saying which and why.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeadLetter } from "../../src/delivery/delivery.ts";
import { DeliveryStore, type DeadLetterEvicted } from "../../src/delivery/delivery-store.ts";
import { openStore, type Store } from "../../src/store/open.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dormant-dead-letters-"));
  store = await openStore({ url: `fs:${dir}` });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

let next = 0;
function letter(partition: string, deadAt: number): DeadLetter {
  const id = `e_${++next}`;
  return {
    id,
    kind: "push",
    taskId: "t_1",
    taskName: "inbox",
    partition,
    entry: "inbox",
    payload: new Uint8Array(0),
    priority: 128,
    whenConstrained: "postpone",
    retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 },
    scheduledAt: deadAt,
    occurrences: 1,
    attempts: 1,
    lastError: "guest-trap",
    deadAt,
  };
}

function deliveryStore(limits: { perPartition: number; host: number; maxAgeMs: number }) {
  const evicted: DeadLetterEvicted[] = [];
  return { store: new DeliveryStore(store.deliveries, store.deadLetters, limits, (event) => evicted.push(event)), evicted };
}

const ids = async (s: DeliveryStore) => (await s.deadLetters()).map((l) => l.id);

describe("dead letters", () => {
  it("beyond a partition's bound, its oldest goes, reported as partition-limit; other partitions keep theirs", async () => {
    const { store: s, evicted } = deliveryStore({ perPartition: 2, host: 100, maxAgeMs: 10_000 });
    const [a1, a2, a3, b1] = [letter("p_a", 1), letter("p_a", 2), letter("p_a", 3), letter("p_b", 4)];
    for (const l of [a1, b1, a2, a3]) await s.bury(l);
    expect(await ids(s)).toEqual([a2.id, a3.id, b1.id]);
    expect(evicted).toEqual([
      { type: "dead-letter-evicted", delivery: a1.id, partition: "p_a", task: "t_1", name: "inbox", deadAt: 1, reason: "partition-limit" },
    ]);
  });

  it("beyond the host's bound, the oldest of all goes, reported as host-limit", async () => {
    const { store: s, evicted } = deliveryStore({ perPartition: 10, host: 2, maxAgeMs: 10_000 });
    const [a1, b1, c1] = [letter("p_a", 1), letter("p_b", 2), letter("p_c", 3)];
    for (const l of [a1, b1, c1]) await s.bury(l);
    expect(await ids(s)).toEqual([b1.id, c1.id]);
    expect(evicted.map((e) => [e.delivery, e.reason])).toEqual([[a1.id, "host-limit"]]);
  });

  it("older than the age bound, they go at the next expiry, reported as age", async () => {
    const { store: s, evicted } = deliveryStore({ perPartition: 10, host: 10, maxAgeMs: 1000 });
    const [old, young] = [letter("p_a", 1000), letter("p_a", 1900)];
    for (const l of [old, young]) await s.bury(l);
    expect(await s.expire(2500)).toBe(1);
    expect(await ids(s)).toEqual([young.id]);
    expect(evicted.map((e) => [e.delivery, e.reason])).toEqual([[old.id, "age"]]);
  });

  it("counts the dead letters already stored when it starts", async () => {
    const first = deliveryStore({ perPartition: 2, host: 100, maxAgeMs: 10_000 });
    const [a1, a2, a3] = [letter("p_a", 1), letter("p_a", 2), letter("p_a", 3)];
    for (const l of [a1, a2]) await first.store.bury(l);
    const second = deliveryStore({ perPartition: 2, host: 100, maxAgeMs: 10_000 });
    await second.store.bury(a3);
    expect(await ids(second.store)).toEqual([a2.id, a3.id]);
    expect(second.evicted.map((e) => e.delivery)).toEqual([a1.id]);
  });
});
