// One process per fs data directory: the store's lock (src/store/drivers/fs-lock.ts).
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { LOCK_NAME } from "../../src/store/drivers/fs-lock.ts";
import { openStore, type Store } from "../../src/store/open.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/snapshot-writer.ts", import.meta.url));

let dir: string;
let dataDir: string;
const open: Store[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dormant-lock-"));
  dataDir = join(dir, "data");
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
  await rm(dir, { recursive: true, force: true });
});

async function store(): Promise<Store> {
  const opened = await openStore({ url: `fs:${dataDir}` });
  open.push(opened);
  return opened;
}

/** A child process that opens the store on the data directory and keeps it open until it is killed. */
async function holderProcess(): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dataDir, "open"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  for await (const line of createInterface({ input: child.stdout })) if (line === "opened") break;
  return {
    pid: child.pid!,
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

const LEFT = `${process.pid}.000000000000`;
/** The files in the lock: one, named for its holder. */
const holders = () => readdir(join(dataDir, LOCK_NAME));

/** A lock as a host left it (its file named LEFT), with what it said of itself changed by `change`. */
async function leftLock(change: Record<string, unknown>): Promise<void> {
  const start = Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[19]);
  const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  await mkdir(join(dataDir, LOCK_NAME), { recursive: true });
  const holder = { pid: process.pid, host: hostname(), boot, start, since: new Date().toISOString(), ...change };
  await writeFile(join(dataDir, LOCK_NAME, LEFT), JSON.stringify(holder));
}

it("refuses a second store on the same data directory, naming the directory, the pid holding it and what to do", async () => {
  await store();
  const refused = openStore({ url: `fs:${dataDir}` });
  await expect(refused).rejects.toMatchObject({ code: "store-locked", details: { dir: dataDir, pid: process.pid } });
  await expect(refused).rejects.toThrow(
    `The data directory ${dataDir} is in use by another Dormant host (pid ${process.pid} (this process) on ${hostname()}, since `,
  );
  await expect(refused).rejects.toThrow(/Stop that host, or start this one with another data directory \(--data-dir, or --store fs:<dir>\)\.$/);
});

it("gives the data directory's lock back on close, so that a new store opens there", async () => {
  const first = await store();
  await first.registrations.setItem("kept", 1);
  await expect(openStore({ url: `fs:${dataDir}` })).rejects.toMatchObject({ code: "store-locked" });
  await first.close();
  const second = await store();
  expect(await second.registrations.getItem("kept")).toBe(1);
});

it("refuses a store on a data directory another process has open, naming that process", async () => {
  const holder = await holderProcess();
  try {
    await expect(openStore({ url: `fs:${dataDir}` })).rejects.toMatchObject({ code: "store-locked", details: { pid: holder.pid } });
  } finally {
    await holder.kill();
  }
});

it("takes over the lock a SIGKILLed process left on the data directory", async () => {
  const holder = await holderProcess();
  await holder.kill();
  expect(await holders()).toEqual([expect.stringMatching(new RegExp(`^${holder.pid}\\.`))]);
  const taken = await store();
  expect(await taken.registrations.getKeys()).toEqual([]);
  await expect(openStore({ url: `fs:${dataDir}` })).rejects.toMatchObject({ code: "store-locked", details: { pid: process.pid } });
});

it("takes over a lock taken before the machine last booted, though its pid runs now", async () => {
  await leftLock({ boot: "00000000-0000-0000-0000-000000000000" });
  await store();
  expect(await holders()).toEqual([expect.not.stringMatching(LEFT)]);
});

it("takes over a lock whose pid now runs another process than the one that took it", async () => {
  await leftLock({ start: 1 });
  await store();
  expect(await holders()).toEqual([expect.not.stringMatching(LEFT)]);
});

it("refuses a lock held on another machine, saying to remove it if that host no longer runs", async () => {
  await leftLock({ host: "elsewhere" });
  await expect(openStore({ url: `fs:${dataDir}` })).rejects.toThrow(`is in use by a Dormant host on another machine (pid ${process.pid} on elsewhere, since `);
  await expect(openStore({ url: `fs:${dataDir}` })).rejects.toThrow(`Stop that host; if it no longer runs, remove ${join(dataDir, LOCK_NAME)}.`);
});

it("lets exactly one of many stores opened at once take over a stale lock", async () => {
  await leftLock({ start: 1 });
  const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => openStore({ url: `fs:${dataDir}` })));
  for (const outcome of outcomes) if (outcome.status === "fulfilled") open.push(outcome.value);
  expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
  for (const outcome of outcomes) if (outcome.status === "rejected") expect(outcome.reason).toMatchObject({ code: "store-locked" });
  expect(await holders()).toEqual([expect.not.stringMatching(LEFT)]);
});

it("keeps its lock out of the store's keys, and a clear of the whole store leaves it", async () => {
  const opened = await store();
  await opened.root.setItem("a:b", 1);
  expect(await opened.root.getKeys()).toEqual(["a:b", "store-format"]);
  await opened.root.clear();
  expect(await opened.root.getKeys()).toEqual([]);
  await expect(openStore({ url: `fs:${dataDir}` })).rejects.toMatchObject({ code: "store-locked" });
});
