// What a sweep removes from the store: snapshot blobs no head names (the third blob slot of a
// partition frozen since, a format-1 store's blobs left by a crash, what a delete cut short
// left) and temp files of writers that died; never a restore point.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/open.ts";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";
import { cleanTempFiles } from "../../src/store/staging.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dormant-retention-"));
  store = await openStore({ url: `fs:${dir}` });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const bytes = (n: number) => new Uint8Array(64).fill(n);

describe("the snapshot sweep", () => {
  it("keeps the heads and the latest and previous snapshots, and removes the blob slot no head names", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    for (const n of [1, 2, 3, 4]) await snapshots.put("p1", bytes(n), n);

    expect(await snapshots.sweep()).toEqual({ removed: 1 });
    expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:blob-0", "p1:blob-1", "p1:head-0", "p1:head-1"]);
    expect((await snapshots.load("p1"))?.data).toEqual(bytes(4));
    await snapshots.put("p1", bytes(5), 5);
    expect((await new SnapshotStore(store.snapshots).load("p1"))?.data).toEqual(bytes(5));
  });

  it("removes a format-1 store's head and blobs a crash left behind once the partition's head is in its slots", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    for (const orphan of ["p1:4", "p1:5"]) await store.snapshots.setItemRaw(orphan, bytes(4));
    await store.snapshots.setItem("p1:head", { latest: { seq: 5, sha256: "0".repeat(64), bytes: 64, takenAt: 5, blob: "5" } });

    expect(await snapshots.sweep()).toEqual({ removed: 3 });
    expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:blob-1", "p1:head-1"]);
    expect((await snapshots.load("p1"))?.data).toEqual(bytes(1));
  });

  it("stores a put whose format-1 head cannot be removed after the new head is written, and leaves that head to the sweep", async () => {
    const old = bytes(5);
    await store.snapshots.setItemRaw("p1:5", old);
    await store.snapshots.setItem("p1:head", { latest: { seq: 5, sha256: createHash("sha256").update(old).digest("hex"), bytes: 64, takenAt: 5, blob: "5" } });
    // The store refuses to remove the old head: the new snapshot is stored all the same.
    const refusing = new Proxy(store.snapshots, {
      get(target, property) {
        if (property === "removeItem") return async () => Promise.reject(new Error("disk on fire"));
        const value = Reflect.get(target, property) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    expect(await new SnapshotStore(refusing).put("p1", bytes(6), 6)).toMatchObject({ seq: 6 });

    const snapshots = new SnapshotStore(store.snapshots);
    expect((await snapshots.load("p1"))?.data).toEqual(bytes(6));
    expect(await snapshots.sweep()).toEqual({ removed: 1 });
    expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:5", "p1:blob-0", "p1:head-0"]);
    expect((await snapshots.head("p1"))?.previous?.seq).toBe(5);
  });

  it("removes the blobs of a partition whose delete was cut short after its heads went", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("gone", bytes(1), 1);
    await snapshots.put("gone", bytes(2), 2);
    for (const head of ["gone:head-0", "gone:head-1"]) await store.snapshots.removeItem(head);

    expect(await snapshots.sweep()).toEqual({ removed: 2 });
    expect(await store.snapshots.getKeys("gone")).toEqual([]);
  });

  it("never removes the blob of a put under way: the sweep waits for it", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    for (const orphan of ["p1:7", "p1:blob-0"]) await store.snapshots.setItemRaw(orphan, bytes(7));
    const put = snapshots.put("p1", bytes(2), 2);
    const [, swept] = await Promise.all([put, snapshots.sweep()]);
    expect(swept).toEqual({ removed: 2 });
    expect((await snapshots.load("p1"))?.data).toEqual(bytes(2));
    expect((await snapshots.head("p1"))?.previous?.seq).toBe(1);
  });

  it("leaves a partition with an unreadable head untouched, for an operator to look at", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    await store.snapshots.setItemRaw("p1:blob-0", bytes(7));
    await store.snapshots.setItem("p1:head-1", "garbage");
    expect(await snapshots.sweep()).toEqual({ removed: 0 });
    expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:blob-0", "p1:blob-1", "p1:head-1"]);
  });
});

describe("temp files of the fs store", () => {
  it("removes those whose writer has died and keeps a running writer's", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    const gone = spawnSync("true").pid!;
    const left = `.1.${gone}.0123456789ab.tmp`;
    const writing = `.2.${process.pid}.0123456789ab.tmp`;
    for (const name of [left, writing]) await writeFile(join(dir, "snapshots", "p1", name), bytes(0));

    expect(await cleanTempFiles(dir)).toEqual([join(dir, "snapshots", "p1", left)]);
    expect((await readdir(join(dir, "snapshots", "p1"))).sort()).toEqual([writing, "blob-1", "head-1"].sort());
  });
});
