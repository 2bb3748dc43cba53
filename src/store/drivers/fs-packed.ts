/**
 * Small records packed into bucket files, for the fs-atomic driver's record mounts
 * (partition records and task registrations).
 *
 * With one file per record, a host starting on 100,000 partitions opened, read and closed
 * 200,000 files before it could serve. Here a mount's items live in BUCKETS files under
 * `<mount>/.packed/`, each key in the bucket its FNV-1a hash names, so a start reads a
 * thousand files. A write rewrites its bucket the fs-atomic way (temp file, fsync,
 * rename), so a reader sees the bucket before or after it, never a mix; writes to one
 * bucket that arrive while it is being written go together in the next write (group
 * commit). A write is acknowledged only once the bucket holding it is durable.
 *
 * A store written before packing has one loose file per key under the mount: the first
 * use of the mount folds them into their buckets, and removes each loose file only once
 * its bucket is durable. A crash in between leaves both, with the same content, and the
 * next start folds them again.
 */
import { promises as fsp, type Dirent } from "node:fs";
import { join, relative, sep } from "node:path";
import { DormantError } from "../../../runtime/index.ts";

/** Buckets per mount: 100,000 partitions put about 100 records in each. */
export const BUCKETS = 1024;
export const PACKED_DIR = ".packed";
const MAGIC = Buffer.from("DPK1");
/** Files read at once when a whole mount is read. */
const READS_AT_ONCE = 64;

export interface PackedIo {
  /** Write a file atomically and durably (the driver's temp-fsync-rename). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Whether a file name is another write's temp file, never a record. */
  isTempFile(name: string): boolean;
}

type Entries = Map<string, Buffer>;
type Change = (entries: Entries) => void;

/** The bucket a key (relative to its mount) lives in. */
export function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BUCKETS;
}

function bucketName(bucket: number): string {
  return bucket.toString(16).padStart(3, "0");
}

/** A bucket file: "DPK1", then per entry a u16 key length, a u32 value length, the key (UTF-8) and the value. */
export function encodeBucket(entries: Entries): Buffer {
  const parts: Buffer[] = [MAGIC];
  for (const [key, value] of entries) {
    const keyBytes = Buffer.from(key, "utf8");
    const header = Buffer.alloc(6);
    header.writeUInt16BE(keyBytes.length, 0);
    header.writeUInt32BE(value.length, 2);
    parts.push(header, keyBytes, value);
  }
  return Buffer.concat(parts);
}

export function decodeBucket(bytes: Buffer, path: string): Entries {
  const entries: Entries = new Map();
  const corrupt = (what: string) =>
    new DormantError(
      "records-corrupt",
      `The record file ${path} is damaged (${what}): the records in it cannot be read. Restore it from a backup; nothing was changed.`,
      { details: { path } },
    );
  if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt("it does not start with DPK1");
  let at = MAGIC.length;
  while (at < bytes.length) {
    if (at + 6 > bytes.length) throw corrupt(`an entry header is cut off at byte ${at}`);
    const keyLength = bytes.readUInt16BE(at);
    const valueLength = bytes.readUInt32BE(at + 2);
    const end = at + 6 + keyLength + valueLength;
    if (end > bytes.length) throw corrupt(`an entry at byte ${at} runs past the end`);
    const key = bytes.toString("utf8", at + 6, at + 6 + keyLength);
    entries.set(key, bytes.subarray(at + 6 + keyLength, end));
    at = end;
  }
  return entries;
}

/** One bucket's writes, one at a time; changes that arrive during a write go together in the next. */
class BucketWriter {
  #queued: { changes: Change[]; done: Promise<void>; settle: (error?: unknown) => void } | undefined;
  #running = false;

  constructor(private readonly flush: (changes: Change[]) => Promise<void>) {}

  write(change: Change): Promise<void> {
    if (!this.#queued) {
      let settle!: (error?: unknown) => void;
      const done = new Promise<void>((resolve, reject) => (settle = (error) => (error === undefined ? resolve() : reject(error))));
      this.#queued = { changes: [], done, settle };
    }
    this.#queued.changes.push(change);
    const { done } = this.#queued;
    if (!this.#running) void this.#run();
    return done;
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#queued) {
      const batch = this.#queued;
      this.#queued = undefined;
      try {
        await this.flush(batch.changes);
        batch.settle();
      } catch (error) {
        batch.settle(error ?? new Error("bucket write failed"));
      }
    }
    this.#running = false;
  }
}

/** One packed mount: `mount` is its directory under the driver's base ("partitions"). */
export class PackedMount {
  readonly #dir: string;
  readonly #bucketDir: string;
  readonly #io: PackedIo;
  readonly #writers = new Map<number, BucketWriter>();
  #ready: Promise<void> | undefined;

  constructor(
    base: string,
    readonly mount: string,
    io: PackedIo,
  ) {
    this.#dir = join(base, mount);
    this.#bucketDir = join(this.#dir, PACKED_DIR);
    this.#io = io;
  }

  async get(key: string): Promise<Buffer | null> {
    await this.#migrated();
    return (await this.#read(bucketOf(key))).get(key) ?? null;
  }

  set(key: string, value: Buffer): Promise<void> {
    return this.#change(bucketOf(key), (entries) => entries.set(key, value));
  }

  remove(key: string): Promise<void> {
    return this.#change(bucketOf(key), (entries) => entries.delete(key));
  }

  /** Every entry (keys relative to the mount), or those of `keys` that exist. */
  async entries(keys?: readonly string[]): Promise<{ key: string; value: Buffer }[]> {
    await this.#migrated();
    const wanted = keys && new Set(keys);
    const buckets = wanted ? [...new Set([...wanted].map(bucketOf))] : await this.#bucketsOnDisk();
    const found: { key: string; value: Buffer }[] = [];
    await eachBounded(buckets, async (bucket) => {
      for (const [key, value] of await this.#read(bucket)) if (!wanted || wanted.has(key)) found.push({ key, value });
    });
    return found;
  }

  /** Remove every entry whose key starts with `prefix` (all of them for ""). */
  async clear(prefix: string): Promise<void> {
    await this.#migrated();
    await Promise.all(
      (await this.#bucketsOnDisk()).map((bucket) =>
        this.#change(bucket, (entries) => {
          for (const key of [...entries.keys()]) if (key.startsWith(prefix)) entries.delete(key);
        }),
      ),
    );
  }

  async #change(bucket: number, change: Change): Promise<void> {
    await this.#migrated();
    let writer = this.#writers.get(bucket);
    if (!writer) this.#writers.set(bucket, (writer = new BucketWriter((changes) => this.#flush(bucket, changes))));
    return writer.write(change);
  }

  async #flush(bucket: number, changes: Change[]): Promise<void> {
    const entries = await this.#read(bucket);
    for (const change of changes) change(entries);
    // An emptied bucket is written too (four bytes): a removal is as durable as a write.
    await this.#io.writeFile(this.#pathOf(bucket), encodeBucket(entries));
  }

  async #read(bucket: number): Promise<Entries> {
    const path = this.#pathOf(bucket);
    try {
      return decodeBucket(await fsp.readFile(path), path);
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return new Map();
      throw error;
    }
  }

  async #bucketsOnDisk(): Promise<number[]> {
    const names = await fsp.readdir(this.#bucketDir).catch((error: { code?: string }) => {
      if (error.code === "ENOENT") return [] as string[];
      throw error;
    });
    return names.filter((name) => /^[0-9a-f]{3}$/.test(name)).map((name) => parseInt(name, 16));
  }

  #pathOf(bucket: number): string {
    return join(this.#bucketDir, bucketName(bucket));
  }

  /** Fold loose files from before packing into buckets now (the store's open does, so no single operation's deadline has to cover it). */
  prepare(): Promise<void> {
    return this.#migrated();
  }

  /** Loose files from before packing are folded in before the mount is first used. */
  #migrated(): Promise<void> {
    this.#ready ??= this.#migrate().catch((error: unknown) => {
      this.#ready = undefined; // tried again on the next use
      throw error;
    });
    return this.#ready;
  }

  async #migrate(): Promise<void> {
    const loose = await this.#looseFiles(this.#dir);
    if (loose.length === 0) return;
    const byBucket = new Map<number, { key: string; path: string }[]>();
    for (const file of loose) {
      const bucket = bucketOf(file.key);
      byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), file]);
    }
    await eachBounded([...byBucket], async ([bucket, files]) => {
      // Straight to the bucket, not through #change: it waits for this migration.
      const entries = await this.#read(bucket);
      for (const file of files) entries.set(file.key, await fsp.readFile(file.path));
      await this.#io.writeFile(this.#pathOf(bucket), encodeBucket(entries));
    });
    // Only now, with every bucket durable, do the loose copies go.
    await eachBounded(loose, (file) => fsp.rm(file.path, { force: true }));
  }

  /** Files under the mount's directory outside `.packed` (and not temp files), keyed like the driver's keys. */
  async #looseFiles(dir: string): Promise<{ key: string; path: string }[]> {
    let found: Dirent[];
    try {
      found = await fsp.readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return [];
      throw error;
    }
    const nested = await Promise.all(
      found.map(async (entry) => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return path === this.#bucketDir ? [] : this.#looseFiles(path);
        if (!entry.isFile() || this.#io.isTempFile(entry.name)) return [];
        return [{ key: relative(this.#dir, path).split(sep).join(":"), path }];
      }),
    );
    return nested.flat();
  }
}

async function eachBounded<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(READS_AT_ONCE, items.length) }, worker));
}
