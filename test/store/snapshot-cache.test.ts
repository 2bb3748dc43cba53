// The in-memory copy of recently written snapshots: a load it can answer reads nothing
// from the store; it holds at most its size in bytes, least recently used out first.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/open.ts";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dormant-snapshot-cache-"));
  store = await openStore({ url: `fs:${join(dir, "data")}` });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const bytes = (fill: number, length = 1000) => new Uint8Array(length).fill(fill);
/** Remove a partition's blobs behind the snapshot store's back: only a load from memory still finds them. */
const wipe = async (id: string) => Promise.all((await store.snapshots.getKeys(id)).map((key) => store.snapshots.removeItem(key)));

describe("snapshot cache", () => {
  it("answers a load of a recently written snapshot from memory, with the image it was given", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 10_000 });
    const ref = await snapshots.put("p1", bytes(1), 1, { image: bytes(9, 3000) });
    await wipe("p1");
    const loaded = await snapshots.load("p1");
    expect(loaded).toMatchObject({ ref, skipped: [] });
    expect(loaded!.data).toEqual(bytes(9, 3000));
    expect(snapshots.cacheStats).toMatchObject({ hits: 1, misses: 0, entries: 1, images: 0, bytes: 1000 });
  });

  it("hands its image to the load that takes it, and answers the next load with the stored snapshot", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 10_000 });
    await snapshots.put("p1", bytes(1), 1, { image: bytes(9, 3000) });
    expect(snapshots.cacheStats).toMatchObject({ images: 1, bytes: 4000 });
    const taken = (await snapshots.load("p1"))!.data;
    expect(taken).toEqual(bytes(9, 3000));
    expect(snapshots.cacheStats).toMatchObject({ images: 0, bytes: 1000 });
    await wipe("p1");
    expect((await snapshots.load("p1"))!.data).toEqual(bytes(1));
    expect(snapshots.cacheStats).toMatchObject({ hits: 2, misses: 0 });
  });

  it("writes the next snapshot after the head it holds, reading no head from the store", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 10_000 });
    await snapshots.put("p1", bytes(1), 1);
    await store.snapshots.removeItem("p1:head-1"); // behind its back: only the cached head still names seq 1
    const ref = await snapshots.put("p1", bytes(2), 2);
    expect(ref.seq).toBe(2);
    expect(await snapshots.head("p1")).toMatchObject({ latest: { seq: 2 }, previous: { seq: 1 } });
  });

  it("hands out a copy, so a caller that transfers or changes it leaves the cached one intact", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 10_000 });
    await snapshots.put("p1", bytes(1), 1);
    (await snapshots.load("p1"))!.data.fill(0);
    expect((await snapshots.load("p1"))!.data).toEqual(bytes(1));
  });

  it("keeps at most its size in bytes, dropping the least recently used first", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 2500 });
    for (const id of ["a", "b"]) await snapshots.put(id, bytes(1), 1);
    await snapshots.load("a"); // b is now the least recently used
    await snapshots.put("c", bytes(3), 1);
    expect(snapshots.cacheStats).toMatchObject({ entries: 2, bytes: 2000, evictions: 1 });
    await wipe("a");
    await wipe("c");
    expect((await snapshots.load("a"))!.data).toEqual(bytes(1));
    expect((await snapshots.load("c"))!.data).toEqual(bytes(3));
    const missesBefore = snapshots.cacheStats.misses;
    expect((await snapshots.load("b"))!.data).toEqual(bytes(1));
    expect(snapshots.cacheStats.misses).toBe(missesBefore + 1);
  });

  it("keeps images in at most half its size, the most recent, and hands back the stored snapshot of an older one", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 10_000 });
    for (const id of ["a", "b", "c"]) await snapshots.put(id, bytes(1, 100), 1, { image: bytes(9, 2000) });
    expect(snapshots.cacheStats).toMatchObject({ entries: 3, images: 2, bytes: 4300 });
    await Promise.all(["a", "b", "c"].map(wipe));
    expect((await snapshots.load("a"))!.data).toEqual(bytes(1, 100));
    expect((await snapshots.load("c"))!.data).toEqual(bytes(9, 2000));
    expect(snapshots.cacheStats).toMatchObject({ hits: 2, misses: 0 });
  });

  it("forgets a deleted partition's snapshot", async () => {
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: 10_000 });
    await snapshots.put("p1", bytes(1), 1);
    await snapshots.delete("p1");
    expect(await snapshots.load("p1")).toBeUndefined();
    expect(snapshots.cacheStats).toMatchObject({ entries: 0, bytes: 0 });
  });

  it("holds nothing when its size is 0", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    await wipe("p1");
    await expect(snapshots.load("p1")).resolves.toBeUndefined();
    expect(snapshots.cacheStats).toMatchObject({ hits: 0, misses: 1, entries: 0 });
  });
});
