/**
 * SIGKILLs a writing process at random moments and checks that everything it
 * reported as written is intact afterwards: through SnapshotStore (the
 * blob-then-head protocol), straight through the fs-atomic driver, through the
 * record buckets many records share, through the journal in front of them (and while
 * it is folded into them), and while a store's loose record files are folded into buckets.
 * A journal torn or damaged by hand checks what its next open makes of it.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStore } from "../../src/store/open.ts";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";
import { CHANGE_KEYS, CHANGE_WORKERS, changeOf, OVERWRITE_KEY, partitionIds, payloadFor, recordFor } from "./fixtures/snapshot-writer.ts";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/snapshot-writer.ts", import.meta.url));
const PARTITIONS = 20;

let dir: string;
let dataDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dormant-crash-"));
  dataDir = join(dir, "data");
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/**
 * Runs the writer until it has printed `killAfter` progress lines, SIGKILLs
 * it, and returns every progress line it printed (lines still in the pipe
 * when it died count too: those writes had completed).
 */
async function writeUntilKilled(args: string[], killAfter: number, killWhen?: () => Promise<unknown>): Promise<string[]> {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dataDir, ...args], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));

  const lines: string[] = [];
  for await (const line of createInterface({ input: child.stdout })) {
    lines.push(line);
    // A line only says the last write finished; the next one begins with a
    // millisecond of CPU work, so a little jitter moves the kill into its I/O.
    if (lines.length === killAfter) {
      if (killWhen) void killWhen().then(() => child.kill("SIGKILL"));
      else setTimeout(() => child.kill("SIGKILL"), Math.random() * 12);
    }
  }
  const signal = await exited;
  if (lines.length < killAfter) throw new Error(`writer exited after ${lines.length} lines (signal ${signal}):\n${stderr}`);
  expect(signal).toBe("SIGKILL");
  return lines;
}

/** Temp files from interrupted writes: evidence that a kill landed mid-write. */
async function tempFileCount(): Promise<number> {
  const files = await readdir(dataDir, { recursive: true }).catch(() => []);
  return files.filter((f) => f.endsWith(".tmp")).length;
}

/** Kills after 5..104 lines; returns a label noting whether the kill hit a write. */
async function killRound(args: string[]): Promise<{ lines: string[]; label: string }> {
  const killAfter = 5 + Math.floor(Math.random() * 100);
  const before = await tempFileCount();
  const lines = await writeUntilKilled(args, killAfter);
  const midWrite = (await tempFileCount()) > before;
  return { lines, label: `${killAfter}${midWrite ? " (mid-write)" : ""}` };
}

it("keeps every reported snapshot loadable when the writer is SIGKILLed mid-write", async () => {
  const highestReported = new Map<string, number>();
  const kills: string[] = [];
  let tornHeads = 0;
  // The same directory across rounds: each writer resumes from its killed predecessor.
  for (let round = 0; round < 6; round++) {
    const { lines, label } = await killRound(["snapshots", String(PARTITIONS)]);
    kills.push(label);
    for (const line of lines) {
      const [, id, seq] = /^put (\S+) (\d+)$/.exec(line) ?? [];
      if (id && seq) highestReported.set(id, Math.max(Number(seq), highestReported.get(id) ?? 0));
    }

    const store = await openStore({ url: `fs:${dataDir}` });
    try {
      const snapshots = new SnapshotStore(store.snapshots);
      for (const id of partitionIds(PARTITIONS)) {
        const reported = highestReported.get(id);
        const loaded = await snapshots.load(id); // throws no-usable-snapshot if nothing verifies
        if (reported === undefined && loaded === undefined) continue;
        const where = `${id} after kill at ${label} (round ${round})`;
        expect(loaded, where).toBeDefined();
        expect(loaded!.ref.seq, where).toBeGreaterThanOrEqual(reported ?? 1);
        // No snapshot needed skipping: the newest one a head names survived intact. A head
        // slot the kill cut short may be passed over, for the one before it.
        for (const problem of loaded!.skipped) expect(problem, where).toMatchObject({ code: "snapshot-head-corrupt" });
        if (loaded!.skipped.length > 0) tornHeads++;
        expect(Buffer.from(loaded!.data).equals(payloadFor(id, loaded!.ref.seq)), where).toBe(true);
      }
      // Temp files of interrupted writes may remain on disk but are never listed as keys.
      for (const key of await store.snapshots.getKeys()) expect(key).toMatch(/^part-\d\d:(blob-[012]|head-[01])$/);
    } finally {
      await store.close();
    }
  }
  console.info(`snapshot writer killed after puts: ${kills.join(", ")}; head slots found torn: ${tornHeads}`);
});

it("never leaves a torn value when a raw overwrite is SIGKILLed mid-write", async () => {
  const kills: string[] = [];
  for (let round = 0; round < 4; round++) {
    const { lines, label } = await killRound(["overwrite"]);
    kills.push(label);
    const lastReported = Number(/^wrote (\d+)$/.exec(lines.at(-1) ?? "")?.[1]);

    const store = await openStore({ url: `fs:${dataDir}` });
    try {
      const raw = await store.partitions.getItemRaw<Uint8Array>(OVERWRITE_KEY);
      expect(raw).toBeInstanceOf(Uint8Array);
      const header = /^big:(\d+)\n/.exec(Buffer.from(raw!.subarray(0, 32)).toString("latin1"));
      const n = Number(header?.[1]);
      // The write in flight at the kill either fully landed or not at all.
      expect([lastReported, lastReported + 1], `kill at ${label}`).toContain(n);
      expect(Buffer.from(raw!).equals(payloadFor(OVERWRITE_KEY, n)), `kill at ${label}`).toBe(true);
    } finally {
      await store.close();
    }
  }
  console.info(`overwriter killed after writes: ${kills.join(", ")}`);
});

it("keeps every acknowledged record and removal when writes to shared record buckets are SIGKILLed", async () => {
  const kills: string[] = [];
  const present = new Set<string>();
  const removed = new Set<string>();
  for (let round = 0; round < 4; round++) {
    const { lines, label } = await killRound(["records", String(round)]);
    kills.push(label);
    for (const line of lines) {
      const [, what, key] = /^(set|removed) (\S+)$/.exec(line) ?? [];
      if (what === "set") present.add(key!);
      if (what === "removed") (present.delete(key!), removed.add(key!));
    }
    // A record whose removal was under way at the kill may be there or not.
    for (const key of present) if (Number(key.split("-")[1]) % 3 === 2) present.delete(key);
    const store = await openStore({ url: `fs:${dataDir}` });
    try {
      const stored = new Map((await store.partitions.entries()).map(({ key, value }) => [key, JSON.parse(value.toString("utf8"))]));
      for (const key of present) expect(stored.get(key), `${key} after kill at ${label} (round ${round})`).toEqual(recordFor(key));
      for (const key of removed) expect(stored.has(key), `${key} after kill at ${label} (round ${round})`).toBe(false);
    } finally {
      await store.close();
    }
  }
  console.info(`record writer killed after acknowledgements: ${kills.join(", ")}`);
});

it("loses no record when the folding of a store's loose record files into buckets is SIGKILLed", async () => {
  // A store as written before packing: one file per partition record and registration set.
  const keys = Array.from({ length: 3000 }, (_, i) => `p_loose${i}`);
  const delays: string[] = [];
  for (let round = 0; round < 5; round++) {
    // Loose again each round (the same records, some already in buckets from the round before).
    for (const mount of ["partitions", "registrations"]) {
      await mkdir(join(dataDir, mount), { recursive: true });
      for (let at = 0; at < keys.length; at += 200) {
        await Promise.all(keys.slice(at, at + 200).map((key) => writeFile(join(dataDir, mount, key), JSON.stringify(recordFor(`${mount}:${key}`)))));
      }
    }
    // The fold of these 6,000 files takes some tens of milliseconds once the store starts opening.
    const delay = 20 + Math.floor(Math.random() * 100);
    const child = spawn(process.execPath, ["--import", "tsx", WRITER, dataDir, "open"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "ignore"] });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    const lines = createInterface({ input: child.stdout });
    for await (const line of lines) if (line === "opening") break;
    await new Promise((resolve) => setTimeout(resolve, delay));
    child.kill("SIGKILL");
    await exited;
    // Some loose files gone, some not: the kill landed while the fold removed them (its buckets already durable).
    const left = (await readdir(join(dataDir, "partitions"))).filter((name) => name !== ".packed").length;
    delays.push(`${delay}${left === 0 ? "" : left < keys.length ? " (mid-removal)" : " (before removal)"}`);
    const store = await openStore({ url: `fs:${dataDir}` });
    try {
      for (const mount of ["partitions", "registrations"] as const) {
        const stored = new Map((await store[mount].entries()).map(({ key, value }) => [key, JSON.parse(value.toString("utf8"))]));
        expect(stored.size, `${mount} after a kill ${delay} ms into the open`).toBe(keys.length);
        for (const key of keys) expect(stored.get(key)).toEqual(recordFor(`${mount}:${key}`));
      }
      // Once a host has opened the store, every record is in a bucket and no loose file is left.
      expect((await readdir(join(dataDir, "partitions"))).filter((name) => name !== ".packed")).toEqual([]);
    } finally {
      await store.close();
    }
  }
  console.info(`store open killed after ms: ${delays.join(", ")}`);
}, 180_000);

const packedDir = () => join(dataDir, "registrations", ".packed");
const journals = async () => (await readdir(packedDir()).catch(() => [])).filter((name) => name.startsWith("journal.")).length;

/**
 * Checks the registrations against what the `changes` writers reported: a key is as its
 * last acknowledged change left it, or as the change after it (under way at the kill)
 * did. `settled` holds what earlier rounds found, which must never change again.
 */
async function expectAcknowledgedChanges(lines: string[], settled: Map<string, string>, where: string): Promise<void> {
  const acknowledged = new Map<string, number>();
  for (const line of lines) {
    const [key, n] = line.split(" ");
    acknowledged.set(key!, Math.max(Number(n), acknowledged.get(key!) ?? -1));
  }
  const store = await openStore({ url: `fs:${dataDir}` });
  try {
    const stored = new Map((await store.registrations.entries()).map(({ key, value }) => [key, value.toString("utf8")]));
    const text = (key: string, n: number) => {
      const change = changeOf(key, n);
      return change === "removed" ? "removed" : JSON.stringify(change);
    };
    const found = (key: string) => stored.get(key) ?? "removed";
    for (const [key, n] of acknowledged) {
      expect([text(key, n), text(key, n + 1)], `${key} after ${n} acknowledged, ${where}`).toContain(found(key));
      settled.set(key, found(key));
    }
    for (const [key, value] of settled) expect(found(key), `${key}, settled in an earlier round, ${where}`).toBe(value);
    // A key none of whose changes was acknowledged holds nothing, or its first change (under way at the kill).
    for (const key of stored.keys()) if (!settled.has(key)) expect(found(key), `${key}, never acknowledged, ${where}`).toBe(text(key, 0));
  } finally {
    await store.close();
  }
}

it("keeps every journaled change a writer acknowledged before it was SIGKILLed, and brings back no older one", async () => {
  const settled = new Map<string, string>();
  const kills: string[] = [];
  for (let round = 0; round < 4; round++) {
    // 64 writers: acknowledgements come a batch at a time, so the kill lands after many.
    const killAfter = 100 + Math.floor(Math.random() * 2000);
    const lines = await writeUntilKilled(["changes", String(round)], killAfter);
    kills.push(`${lines.length}`);
    await expectAcknowledgedChanges(lines, settled, `after a kill at ${lines.length} acknowledgements (round ${round})`);
  }
  expect(settled.size).toBeGreaterThan(CHANGE_WORKERS);
  console.info(`journal writer killed after acknowledgements: ${kills.join(", ")}`);
}, 120_000);

it("loses no acknowledged change and brings back no older value when the journal's folding into buckets is SIGKILLed", async () => {
  const settled = new Map<string, string>();
  const kills: string[] = [];
  for (let round = 0; round < 5; round++) {
    // Folded after every 64 changes: a fold is nearly always under way; the kill waits for one (two generations on disk).
    const killAfter = 200 + Math.floor(Math.random() * 1000);
    const killWhen = async () => {
      while ((await journals()) < 2) await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
    };
    const lines = await writeUntilKilled(["changes", String(round), "64"], killAfter, killWhen);
    const temp = (await readdir(packedDir())).some((name) => name.endsWith(".tmp"));
    kills.push(`${lines.length} (${await journals()} generations${temp ? ", mid-bucket-write" : ""})`);
    await expectAcknowledgedChanges(lines, settled, `after a kill at ${lines.length} acknowledgements (round ${round})`);
  }
  expect(settled.size).toBeGreaterThan(CHANGE_WORKERS * CHANGE_KEYS);
  console.info(`journal folding killed after acknowledgements: ${kills.join(", ")}`);
}, 120_000);

/** Three acknowledged changes, then a fourth whose append is cut in half, as a kill in the middle of writing it would. */
async function journalWithTornTail(): Promise<string> {
  const journal = join(packedDir(), "journal.0");
  const store = await openStore({ url: `fs:${dataDir}` });
  for (const i of [1, 2, 3]) await store.registrations.setItem(`k${i}`, { i });
  const acknowledged = (await stat(journal)).size;
  await store.registrations.setItem("k4", { i: 4 });
  await store.close();
  const written = (await stat(journal)).size;
  await truncate(journal, acknowledged + Math.floor((written - acknowledged) / 2));
  return journal;
}

it("ignores a torn append at the end of the journal at the next open, with every acknowledged change there", async () => {
  await journalWithTornTail();
  const store = await openStore({ url: `fs:${dataDir}` });
  try {
    expect(await store.registrations.getItem("k1")).toEqual({ i: 1 });
    expect(await store.registrations.getItem("k3")).toEqual({ i: 3 });
    expect(await store.registrations.getItem("k4")).toBeNull();
    expect((await store.registrations.getKeys()).sort()).toEqual(["k1", "k2", "k3"]);
  } finally {
    await store.close();
  }
});

it("cuts a torn append off the journal, so that the opens after the next one do not take it for damage", async () => {
  await journalWithTornTail();
  let store = await openStore({ url: `fs:${dataDir}` });
  await store.registrations.setItem("k5", { i: 5 });
  await store.close();
  store = await openStore({ url: `fs:${dataDir}` });
  try {
    expect((await store.registrations.getKeys()).sort()).toEqual(["k1", "k2", "k3", "k5"]);
  } finally {
    await store.close();
  }
});

it("refuses to open a journal whose middle is damaged, as records-corrupt naming the file and what to do", async () => {
  const store = await openStore({ url: `fs:${dataDir}` });
  for (const i of [1, 2, 3]) await store.registrations.setItem(`k${i}`, { i });
  await store.close();
  const journal = join(packedDir(), "journal.0");
  const bytes = await readFile(journal);
  bytes[4 + 8 + 10]! ^= 0xff; // inside the first batch, two acknowledged batches after it
  await writeFile(journal, bytes);
  const refused = openStore({ url: `fs:${dataDir}` });
  await expect(refused).rejects.toMatchObject({ code: "records-corrupt" });
  await expect(refused).rejects.toThrow(new RegExp(`${journal}.*fails its checksum at byte 4.*Restore.*or.*truncate the file to 4 bytes`));
});

it("refuses a torn append in a journal generation that is not the newest, as damage", async () => {
  const journal = await journalWithTornTail();
  // A newer generation after it: the torn batch was followed by acknowledged work, so it is no crash's leftover.
  await writeFile(join(packedDir(), "journal.1"), await readFile(journal));
  await expect(openStore({ url: `fs:${dataDir}` })).rejects.toMatchObject({ code: "records-corrupt", details: { path: journal } });
});
