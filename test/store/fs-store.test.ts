import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import fsAtomicDriver from "../../src/store/drivers/fs-atomic.ts";
import { LOCK_NAME } from "../../src/store/drivers/fs-lock.ts";
import { bucketOf } from "../../src/store/drivers/fs-packed.ts";
import { FOLD_REPORT_MS, foldReporter, openStore, parseStoreUrl, STORE_FORMAT, type Store } from "../../src/store/open.ts";
import type { StoreEvent } from "../../src/store/watch.ts";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";
import { awkwardBytes, describeStoreContract } from "./store-contract.ts";

const tempDirs = () => mkdtemp(join(tmpdir(), "dormant-fs-store-"));

/** Fresh directory per store; closing the store also removes it. */
async function openTempFsStore(): Promise<Store> {
  const dir = await tempDirs();
  const store = await openStore({ url: `fs:${join(dir, "data")}` });
  return {
    ...store,
    async close() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every path under `dir` (recursively), with its stat. */
async function walk(dir: string): Promise<{ path: string; mode: number; isDir: boolean }[]> {
  const out: { path: string; mode: number; isDir: boolean }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const st = await stat(path);
    out.push({ path, mode: st.mode & 0o777, isDir: entry.isDirectory() });
    if (entry.isDirectory()) out.push(...(await walk(path)));
  }
  return out;
}

describeStoreContract("fs (atomic driver)", openTempFsStore);

describe("fs store specifics", () => {
  let dir: string;
  let dataDir: string;
  let store: Store;

  beforeEach(async () => {
    dir = await tempDirs();
    dataDir = join(dir, "data");
    store = await openStore({ url: `fs:${dataDir}` });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const writeSome = async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    for (let i = 0; i < 3; i++) await snapshots.put("p1", awkwardBytes(1000), i);
    await store.registrations.setItem("nested:deeper:reg", { a: 1 });
    await store.components.setItemRaw("c1", awkwardBytes(10));
  };

  it("creates the data directory and its subdirectories 0700 and files 0600", async () => {
    await writeSome();
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    const entries = await walk(dataDir);
    expect(entries.filter((e) => !e.isDir).length).toBeGreaterThan(3);
    for (const e of entries) expect([e.path, e.mode.toString(8)]).toEqual([e.path, e.isDir ? "700" : "600"]);
  });

  it("leaves no temp files behind after writes", async () => {
    await writeSome();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.partitions.setItem("same", { i })));
    const leftovers = (await walk(dataDir)).filter((e) => e.path.endsWith(".tmp"));
    expect(leftovers).toEqual([]);
  });

  it("acknowledges many writes asked for at once, each one readable afterwards", async () => {
    const written = Array.from({ length: 200 }, (_, i) => awkwardBytes(100 + i));
    await Promise.all(written.map((bytes, i) => store.components.setItemRaw(`c${i}`, bytes)));
    for (let i = 0; i < 200; i += 37) {
      expect(Buffer.from((await store.components.getItemRaw(`c${i}`)) as Uint8Array)).toEqual(Buffer.from(written[i]!));
    }
  });

  it("removes a file written just before, in the order they were asked for", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `c${i}`);
    await Promise.all(keys.flatMap((key) => [store.components.setItemRaw(key, awkwardBytes(1000)), store.components.removeItem(key)]));
    expect(await store.components.getKeys()).toEqual([]);
    expect((await walk(join(dataDir, "components"))).filter((e) => !e.isDir)).toEqual([]);
  });

  it("makes a directory removed under it again and writes into it", async () => {
    await store.snapshots.setItemRaw("p1:1", awkwardBytes(10));
    await rm(join(dataDir, "snapshots", "p1"), { recursive: true });
    const bytes = awkwardBytes(20);
    await store.snapshots.setItemRaw("p1:2", bytes);
    expect(Buffer.from((await store.snapshots.getItemRaw("p1:2")) as Uint8Array)).toEqual(Buffer.from(bytes));
  });

  it("fails a write with the filesystem's own error code, leaving no temp file", async () => {
    await mkdir(join(dataDir, "snapshots"), { recursive: true });
    await writeFile(join(dataDir, "snapshots", "p1"), "a file where the partition's folder would be");
    await expect(store.snapshots.setItemRaw("p1:1", awkwardBytes(10))).rejects.toThrow(/ENOTDIR|EEXIST/);
    expect((await walk(dataDir)).filter((e) => e.path.endsWith(".tmp"))).toEqual([]);
  });

  it("writes a value in place over the file's own blocks when asked, and any other write as a new file renamed over the old", async () => {
    const path = join(dataDir, "snapshots", "p1", "7");
    await store.snapshots.setItemRaw("p1:7", awkwardBytes(3000), { inPlace: true });
    const first = (await stat(path)).ino;
    for (const bytes of [awkwardBytes(1000), awkwardBytes(5000)]) {
      await store.snapshots.setItemRaw("p1:7", bytes, { inPlace: true });
      expect((await stat(path)).ino).toBe(first);
      expect(Buffer.from((await store.snapshots.getItemRaw("p1:7")) as Uint8Array)).toEqual(Buffer.from(bytes));
    }
    await store.snapshots.setItemRaw("p1:7", awkwardBytes(10));
    expect((await stat(path)).ino).not.toBe(first);
  });

  it("makes the folder of a key written in place, 0700, the file 0600", async () => {
    await store.snapshots.setItemRaw("p2:1", awkwardBytes(10), { inPlace: true });
    expect((await stat(join(dataDir, "snapshots", "p2"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dataDir, "snapshots", "p2", "1"))).mode & 0o777).toBe(0o600);
  });

  it("makes, renames and removes no file once a partition's snapshot slots exist: each put writes over two", async () => {
    const snapshots = new SnapshotStore(store.snapshots);
    for (let seq = 1; seq <= 3; seq++) await snapshots.put("p1", awkwardBytes(100 * seq), seq);
    const folder = join(dataDir, "snapshots", "p1");
    const inodes = async () => new Map(await Promise.all((await readdir(folder)).map(async (name) => [name, (await stat(join(folder, name))).ino] as const)));
    const before = await inodes();
    expect([...before.keys()].sort()).toEqual(["blob-0", "blob-1", "blob-2", "head-0", "head-1"]);
    let last: Uint8Array = new Uint8Array();
    for (let seq = 4; seq <= 9; seq++) await snapshots.put("p1", (last = awkwardBytes(50 * seq)), seq);
    expect(await inodes()).toEqual(before);
    expect(Buffer.from((await new SnapshotStore(store.snapshots).load("p1"))!.data)).toEqual(Buffer.from(last));
  });

  it("stores keys as nested paths under the data directory", async () => {
    await store.components.setItem("nested:deeper:c", { a: 1 });
    expect((await stat(join(dataDir, "components", "nested", "deeper", "c"))).isFile()).toBe(true);
  });

  it("packs partition records and registrations into bucket files, not a file each", async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.partitions.setItem(`p_${i}`, { i })));
    await store.registrations.setItem("p_1", [{ name: "beat" }]);
    const files = (await walk(dataDir)).filter((e) => !e.isDir && !e.path.includes(LOCK_NAME) && !e.path.endsWith("store-format")).map((e) => e.path);
    expect(files.every((path) => path.includes(`${sep}.packed${sep}`))).toBe(true);
    expect(files.length).toBeLessThan(200);
    expect((await store.partitions.getKeys()).length).toBe(200);
    expect(await store.partitions.getItem("p_7")).toEqual({ i: 7 });
    expect((await store.partitions.entries(["p_3", "p_9", "p_missing"])).map(({ key }) => key).sort()).toEqual(["p_3", "p_9"]);
  });

  it("folds a store's one-file-per-record partitions and registrations into buckets the first time it is used", async () => {
    await store.close();
    await mkdir(join(dataDir, "partitions"), { recursive: true });
    await writeFile(join(dataDir, "partitions", "p_old"), JSON.stringify({ id: "p_old" }));
    await mkdir(join(dataDir, "registrations", "nested"), { recursive: true });
    await writeFile(join(dataDir, "registrations", "nested", "p_old"), JSON.stringify([{ name: "beat" }]));
    store = await openStore({ url: `fs:${dataDir}` });
    expect(await store.partitions.getKeys()).toEqual(["p_old"]);
    expect(await store.partitions.getItem("p_old")).toEqual({ id: "p_old" });
    expect(await store.registrations.getItem("nested:p_old")).toEqual([{ name: "beat" }]);
    expect(await readdir(join(dataDir, "partitions"))).toEqual([".packed"]);
    expect((await walk(join(dataDir, "registrations"))).filter((e) => !e.isDir && !e.path.includes(".packed"))).toEqual([]);
  });

  it("removes a packed record for good", async () => {
    await store.partitions.setItem("a", 1);
    await store.partitions.setItem("b", 2);
    await store.partitions.removeItem("a");
    expect(await store.partitions.hasItem("a")).toBe(false);
    await store.close();
    store = await openStore({ url: `fs:${dataDir}` });
    expect(await store.partitions.getKeys()).toEqual(["b"]);
  });

  it("clears a prefix within a packed mount when the driver is asked to", async () => {
    const driver = fsAtomicDriver({ base: dataDir, packed: ["partitions"] });
    await driver.setItem!("partitions:a:1", "{}", {});
    await driver.setItem!("partitions:b", "{}", {});
    await driver.clear!("partitions:a:", {});
    expect(await driver.getKeys("partitions:", {})).toEqual(["partitions:b"]);
  });

  it("clears a whole packed mount for good when the driver is asked to, leaving the other mounts alone", async () => {
    await store.close();
    const driver = fsAtomicDriver({ base: dataDir, packed: ["partitions", "registrations"] });
    await driver.setItem!("partitions:a", "1", {});
    await driver.setItem!("registrations:a", "2", {});
    await driver.clear!("partitions:", {});
    await driver.setItem!("partitions:after", "3", {});
    await driver.dispose!();
    store = await openStore({ url: `fs:${dataDir}` });
    expect(await store.partitions.getKeys()).toEqual(["after"]);
    expect(await store.registrations.getItem("a")).toBe(2);
  });

  it("folds journaled sets, removals and clears into buckets with the result of applying them in order", async () => {
    await store.close();
    // Folded after every 5 changes: many folds, each under way while more changes arrive.
    const driver = fsAtomicDriver({ base: dataDir, packed: ["partitions"], compactAfter: { records: 5 } });
    const expected = new Map<string, string>();
    let seed = 7;
    const random = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let round = 0; round < 40; round++) {
      const changes: unknown[] = [];
      for (let i = 0; i < 8; i++) {
        // Distinct keys within a round: changes under way together land in any order.
        const key = `g${round % 3}:k${i}`;
        if (random(4) === 0) {
          expected.delete(key);
          changes.push(driver.removeItem!(`partitions:${key}`, {}));
        } else {
          expected.set(key, `v${round}.${i}`);
          changes.push(driver.setItem!(`partitions:${key}`, `v${round}.${i}`, {}));
        }
      }
      await Promise.all(changes);
      if (round % 10 === 9) {
        const prefix = `g${random(3)}:`;
        await driver.clear!(`partitions:${prefix}`, {});
        for (const key of [...expected.keys()]) if (key.startsWith(prefix)) expected.delete(key);
      }
    }
    await driver.dispose!();
    expect((await readdir(join(dataDir, "partitions", ".packed"))).filter((name) => /^[0-9a-f]{3}$/.test(name)).length).toBeGreaterThan(0);
    store = await openStore({ url: `fs:${dataDir}` });
    const stored = new Map((await store.partitions.entries()).map(({ key, value }) => [key, value.toString("utf8")]));
    expect(stored).toEqual(expected);
  });

  it("refuses a record write while its mount's folder is gone, and keeps every acknowledged one once the folder is back", async () => {
    await store.registrations.setItem("before", "1");
    const mount = join(dataDir, "registrations");
    await rm(mount, { recursive: true, force: true });
    await writeFile(mount, "not a folder");
    await expect(store.registrations.setItem("refused", "2")).rejects.toMatchObject({ code: "store-unavailable" });
    await rm(mount);
    await mkdir(mount);
    await store.registrations.setItem("after", "3");
    await store.close();
    store = await openStore({ url: `fs:${dataDir}` });
    expect((await store.registrations.getKeys()).sort()).toEqual(["after", "before"]);
  });

  it("ignores temp files left by an interrupted write when listing keys", async () => {
    await store.partitions.setItem("state", "ok");
    await writeFile(join(dataDir, "partitions", `.state.4242.0123456789ab.tmp`), "torn");
    expect(await store.partitions.getKeys()).toEqual(["state"]);
    expect(await store.partitions.getItem("state")).toBe("ok");
  });

  it("rejects keys with '..' segments through the store", async () => {
    await expect(store.root.setItem("a:..:..:escape", "x")).rejects.toThrow(/Invalid key/);
    await expect(store.components.setItem("../../escape", "x")).rejects.toThrow(/Invalid key/);
    expect(await readdir(dir)).toEqual(["data"]);
  });

  it("rejects keys with '..' segments in the driver itself", async () => {
    const driver = fsAtomicDriver({ base: dataDir });
    for (const key of ["..:escape", "a:..:..:escape", "a/../../escape", "..\\escape"]) {
      await expect(async () => driver.setItem!(key, "x", {})).rejects.toMatchObject({ code: "invalid-key" });
      await expect(async () => driver.getItem(key)).rejects.toThrow(/would escape the data directory/);
    }
    expect(await readdir(dir)).toEqual(["data"]);
  });

  it("clears only the given prefix when the driver is asked to", async () => {
    const driver = fsAtomicDriver({ base: dataDir });
    await driver.setItem!("snapshots:p1:head", "{}", {});
    await driver.setItem!("registrations:r", "{}", {});
    await driver.clear!("snapshots:", {});
    expect(await driver.getKeys("", {})).toEqual(["registrations:r", "store-format"]);
  });
});

describe("folds of a record journal that fail", () => {
  let dir: string;
  let driver: ReturnType<typeof fsAtomicDriver>;
  const events: StoreEvent[] = [];
  const folds: (Error | undefined)[] = [];
  let foldEnded: (() => void) | undefined;
  /** The partitions mount's fold bucket for key "a": a folder there, and no fold can rewrite it. */
  let bucketOfA: string;

  beforeEach(async () => {
    dir = await tempDirs();
    events.length = 0;
    folds.length = 0;
    // Folded after every 2 changes, and reported as the store reports it.
    const report = foldReporter("fs:test", (event) => events.push(event));
    const onFold = (path: string, error?: Error) => {
      report(path, error);
      folds.push(error);
      foldEnded?.();
    };
    driver = fsAtomicDriver({ base: dir, packed: ["partitions"], compactAfter: { records: 2 }, onFold });
    bucketOfA = join(dir, "partitions", ".packed", bucketOf("a").toString(16).padStart(3, "0"));
    await mkdir(bucketOfA, { recursive: true });
    // Only Date: a failed fold is tried again with the first change a second later, and reported again a minute later.
    vi.useFakeTimers({ toFake: ["Date"] });
  });

  afterEach(async () => {
    vi.useRealTimers();
    await driver.dispose!();
    await rm(dir, { recursive: true, force: true });
  });

  /** Make `changes` (one at a time) `laterMs` from now, and wait for the fold they start. */
  const foldAfter = async (laterMs: number, ...changes: string[]): Promise<Error | undefined> => {
    vi.setSystemTime(Date.now() + laterMs);
    const ended = new Promise<void>((resolve) => (foldEnded = resolve));
    for (const key of changes) await driver.setItem!(`partitions:${key}`, key, {});
    await ended;
    return folds.at(-1);
  };

  it("reports a fold that fails, as the store unavailable, and once one works again", async () => {
    expect(await foldAfter(0, "a", "b")).toMatchObject({ code: "EISDIR" });
    expect(events).toEqual([
      {
        type: "store-unavailable",
        store: "fs:test",
        error: expect.objectContaining({
          code: "store-unavailable",
          message: expect.stringMatching(
            new RegExp(
              `^The store fs:test cannot fold the record journal in ${join(dir, "partitions", ".packed")} into its bucket files .*EISDIR.*Nothing is lost`,
            ),
          ),
        }),
      },
    ]);
    await rm(bucketOfA, { recursive: true });
    expect(await foldAfter(1000, "c")).toBeUndefined();
    expect(events.slice(1)).toEqual([{ type: "store-recovered", store: "fs:test", detail: expect.stringContaining("folded into its buckets again") }]);
    expect((await driver.getKeys("partitions:", {})).sort()).toEqual(["partitions:a", "partitions:b", "partitions:c"]);
  });

  it("reports a fold that keeps failing at most once a minute", async () => {
    const since = new Date(Date.now()).toISOString();
    await foldAfter(0, "a", "b");
    for (const key of ["c", "d", "e"]) expect(await foldAfter(1000, key)).toMatchObject({ code: "EISDIR" });
    expect(events).toHaveLength(1);
    expect(await foldAfter(FOLD_REPORT_MS - 3000, "f")).toMatchObject({ code: "EISDIR" });
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ type: "store-unavailable", error: { message: expect.stringContaining(`(failing since ${since})`) } });
  });
});

describe("the store's format", () => {
  it("marks a new store with this version's format", async () => {
    const store = await openTempFsStore();
    try {
      expect(await store.root.getItem("store-format")).toBe(STORE_FORMAT);
    } finally {
      await store.close();
    }
  });

  it("raises an older store's format to its own, so the older version refuses what this one writes", async () => {
    const dir = await tempDirs();
    try {
      const url = `fs:${join(dir, "data")}`;
      const first = await openStore({ url });
      await first.root.setItem("store-format", 1);
      await first.close();
      const second = await openStore({ url });
      expect(await second.root.getItem("store-format")).toBe(STORE_FORMAT);
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a store written by a newer version, saying so, and lets it go for the next host", async () => {
    const dir = await tempDirs();
    try {
      const url = `fs:${join(dir, "data")}`;
      const first = await openStore({ url });
      await first.root.setItem("store-format", STORE_FORMAT + 1);
      await first.close();
      await expect(openStore({ url })).rejects.toMatchObject({
        code: "store-config",
        message: expect.stringMatching(
          new RegExp(`written by a newer Dormant \\(store format ${STORE_FORMAT + 1}; this version reads format ${STORE_FORMAT}\\)`),
        ),
      });
      // The refusal closed the store: a second try is refused the same way, not as locked by the first.
      await expect(openStore({ url })).rejects.toMatchObject({ code: "store-config" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("fs store URLs", () => {
  it("defaults to ./.dormant resolved against the working directory", () => {
    expect(parseStoreUrl(undefined)).toMatchObject({ kind: "fs", dir: resolve(".dormant") });
  });

  it("uses dataDir when no URL is given", () => {
    expect(parseStoreUrl(undefined, "/srv/dormant")).toMatchObject({ description: "fs:/srv/dormant" });
  });

  it("accepts fs:<dir>, a plain path and a file URL as the same absolute directory", () => {
    const abs = resolve("some/dir");
    for (const url of ["fs:some/dir", "some/dir", abs, `fs://${abs}`, pathToFileURL(abs).href]) {
      expect(parseStoreUrl(url)).toEqual({ kind: "fs", dir: abs, description: `fs:${abs}` });
    }
  });

  it("describes an opened fs store by its absolute directory", async () => {
    const dir = await tempDirs();
    const store = await openStore({ dataDir: join(dir, "d") });
    expect(store.description).toBe(`fs:${join(dir, "d")}`);
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
});
