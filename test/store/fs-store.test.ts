import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fsAtomicDriver from "../../src/store/drivers/fs-atomic.ts";
import { openStore, parseStoreUrl, type Store } from "../../src/store/open.ts";
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

  it("stores keys as nested paths under the data directory", async () => {
    await store.registrations.setItem("nested:deeper:reg", { a: 1 });
    expect((await stat(join(dataDir, "registrations", "nested", "deeper", "reg"))).isFile()).toBe(true);
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
    expect(await driver.getKeys("", {})).toEqual(["registrations:r"]);
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
