// What a sweep removes from the store: snapshot blobs no head names (left by a crash
// between writing a new head and deleting the old blob, or part-way through a delete) and
// temp files of writers that died; never a restore point.
import { spawnSync } from "node:child_process";
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
  it("keeps the head and the latest and previous snapshots, and removes blobs no head names", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    for (const n of [1, 2, 3]) await snapshots.put("p1", bytes(n), n);
    // A crash after the head moved on to seq 3 but before seq 1 was deleted, and a put cut short before its head.
    await store.snapshots.setItemRaw("p1:1", bytes(1));
    await store.snapshots.setItemRaw("p1:9", bytes(9));

    expect(await snapshots.sweep()).toEqual({ removed: 2 });
    expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:2", "p1:3", "p1:head"]);
    expect((await snapshots.load("p1"))?.data).toEqual(bytes(3));
  });

  it("removes the blobs of a partition whose delete was cut short after its head went", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("gone", bytes(1), 1);
    await snapshots.put("gone", bytes(2), 2);
    await store.snapshots.removeItem("gone:head");

    expect(await snapshots.sweep()).toEqual({ removed: 2 });
    expect(await store.snapshots.getKeys("gone")).toEqual([]);
  });

  it("never removes the blob of a put under way: the sweep waits for it", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    for (const orphan of ["p1:7", "p1:8"]) await store.snapshots.setItemRaw(orphan, bytes(7));
    const put = snapshots.put("p1", bytes(2), 2);
    const [, swept] = await Promise.all([put, snapshots.sweep()]);
    expect(swept).toEqual({ removed: 2 });
    expect((await snapshots.load("p1"))?.data).toEqual(bytes(2));
    expect((await snapshots.head("p1"))?.previous?.seq).toBe(1);
  });

  it("leaves a partition with an unreadable head untouched, for an operator to look at", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    await snapshots.put("p1", bytes(1), 1);
    await store.snapshots.setItemRaw("p1:7", bytes(7));
    await store.snapshots.setItem("p1:head", "garbage");
    expect(await snapshots.sweep()).toEqual({ removed: 0 });
    expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:1", "p1:7", "p1:head"]);
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
    expect((await readdir(join(dir, "snapshots", "p1"))).sort()).toEqual([writing, "1", "head"].sort());
  });
});
