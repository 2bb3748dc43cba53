// A delete removes a partition's heads with the current one last, so a delete cut short
// leaves the partition as it was or gone, never on an older snapshot; it must read the
// heads to know which is current.
import { createStorage, defineDriver } from "unstorage";
import memoryDriver from "unstorage/drivers/memory";
import { expect, it } from "vitest";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";

/** A memory store whose reads of head slots fail while `failing` is set (the store going away). */
function flakyStorage() {
  const memory = memoryDriver();
  const state = { failing: false };
  const driver = defineDriver(() => ({
    ...memory,
    name: "flaky-memory",
    getItemRaw(key: string, opts: object) {
      if (state.failing && /:head-[01]$/.test(key)) throw new Error("EIO: the store went away");
      return memory.getItemRaw!(key, opts);
    },
  }))(undefined);
  return { storage: createStorage({ driver }), state };
}

it("refuses to delete a partition whose heads it cannot read, removing nothing", async () => {
  const { storage, state } = flakyStorage();
  const snapshots = new SnapshotStore(storage);
  for (let seq = 1; seq <= 4; seq++) await snapshots.put("p1", new Uint8Array(64).fill(seq), seq);
  const before = (await storage.getKeys("p1")).sort();
  state.failing = true;
  await expect(snapshots.delete("p1")).rejects.toThrow(/EIO/);
  state.failing = false;
  expect((await storage.getKeys("p1")).sort()).toEqual(before);
  expect((await new SnapshotStore(storage).load("p1"))?.ref.seq).toBe(4);
});

it("deletes a partition whose heads are damaged", async () => {
  const { storage } = flakyStorage();
  const snapshots = new SnapshotStore(storage);
  for (let seq = 1; seq <= 2; seq++) await snapshots.put("p1", new Uint8Array(64).fill(seq), seq);
  for (const key of ["p1:head-0", "p1:head-1"]) await storage.setItemRaw(key, new Uint8Array([1, 2, 3]));
  await snapshots.delete("p1");
  expect(await storage.getKeys("p1")).toEqual([]);
});
