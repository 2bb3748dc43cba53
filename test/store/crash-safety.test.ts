/**
 * SIGKILLs a writing process at random moments and checks that everything it
 * reported as written is intact afterwards: through SnapshotStore (the
 * blob-then-head protocol), straight through the fs-atomic driver, through the
 * record buckets many records share, and while a store's loose record files are
 * folded into buckets.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStore } from "../../src/store/open.ts";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";
import { OVERWRITE_KEY, partitionIds, payloadFor, recordFor } from "./fixtures/snapshot-writer.ts";

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
async function writeUntilKilled(args: string[], killAfter: number): Promise<string[]> {
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
    if (lines.length === killAfter) setTimeout(() => child.kill("SIGKILL"), Math.random() * 12);
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
        // Nothing needed skipping: the newest snapshot itself survived intact.
        expect(loaded!.skipped, where).toEqual([]);
        expect(Buffer.from(loaded!.data).equals(payloadFor(id, loaded!.ref.seq)), where).toBe(true);
      }
      // Temp files of interrupted writes may remain on disk but are never listed as keys.
      for (const key of await store.snapshots.getKeys()) expect(key).toMatch(/^part-\d\d:(\d+|head)$/);
    } finally {
      await store.close();
    }
  }
  console.info(`snapshot writer killed after puts: ${kills.join(", ")}`);
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
