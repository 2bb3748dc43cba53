/**
 * Small records packed into bucket files, for the fs-atomic driver's record mounts
 * (partition records and task registrations), with a write-ahead journal in front.
 *
 * With one file per record, a host starting on 100,000 partitions opened, read and closed
 * 200,000 files before it could serve. Here a mount's items live in BUCKETS files under
 * `<mount>/.packed/`, each key in the bucket its FNV-1a hash names, so a start reads a
 * thousand files.
 *
 * Rewriting an 80 KB bucket (temp file, fsync, rename: a dozen threadpool operations) for
 * every record change made each fired timer pay for one, so changes go to a journal first:
 * `<mount>/.packed/journal.<n>`, one file a generation. A change joins the batch being
 * gathered; one writer appends a whole batch (a plain write on a kept-open file) and
 * `fdatasync`s it, then acknowledges every change in it. Changes arriving during a sync go
 * together in the next batch. A change is acknowledged only once its batch is durable.
 *
 * Reads see acknowledged changes only: a change enters the in-memory overlay (the journal's
 * changes not yet in buckets) once its batch is durable, so a read during a write sees the
 * value before it, as a read during a bucket rewrite always did.
 *
 * Compaction: when a generation passes COMPACT_RECORDS changes or COMPACT_BYTES, appends
 * move to generation n+1 and, in the background, every bucket generation n touched is
 * rewritten once (the atomic way) with its changes; only then is `journal.<n>` deleted. A
 * crash anywhere in between leaves the journal, whose replay over the buckets gives the same
 * state however many of them were rewritten. At 100,000 partitions a generation (4 MiB of
 * 700-byte registrations, about 5,800 changes) touches nearly all 1,024 buckets, so a fold
 * rewrites each about once per 6 changes to it instead of once per change. A larger
 * threshold saves more writes but holds more in memory and replays longer: the overlay holds
 * at most two generations (the live one, and one being folded), about 1.3 KB per change
 * held, so some 15 MB per mount at most. A fold that fails (a full disk) leaves its
 * generation in the overlay and is tried again; the live one grows meanwhile. Each failed fold,
 * and each fold that works, is told to the driver's `onFold`: the store reports a fold that
 * keeps failing when it starts, at most once a minute while it lasts, and when it ends.
 *
 * Opening a mount replays every generation in order onto the overlay; they are folded into
 * the buckets once the mount is next written to, not while a starting host reads them all.
 * A batch is one frame with one checksum, and at most one batch is ever unsynced, so a crash
 * mid-append leaves at most a torn last frame in the newest generation: it was never
 * acknowledged, and is cut off. A bad frame anywhere else is damage (`records-corrupt`).
 *
 * A store written before packing has one loose file per key under the mount: the first
 * use of the mount folds them into their buckets, and removes each loose file only once
 * its bucket is durable. A crash in between leaves both, with the same content, and the
 * next start folds them again.
 *
 * The journal is this process's: the store holds the data directory's lock while it is open
 * (fs-lock.ts), so a second host on the same directory is refused when it starts. (Should two
 * processes write one mount anyway, they are refused when they meet on a journal file.)
 */
import { close, closeSync, fdatasync, fstatSync, ftruncateSync, open, promises as fsp, writeSync, type Dirent } from "node:fs";
import { join, relative, sep } from "node:path";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { DormantError } from "../../../runtime/index.ts";

/** Buckets per mount: 100,000 partitions put about 100 records in each. */
export const BUCKETS = 1024;
export const PACKED_DIR = ".packed";
const MAGIC = Buffer.from("DPK1");
const JOURNAL_MAGIC = Buffer.from("DPJ1");
const JOURNAL_RE = /^journal\.(\d+)$/;
/** A journal generation is folded into buckets after this many changes… */
export const COMPACT_RECORDS = 8192;
/** …or this many bytes (large raw values), whichever comes first. */
export const COMPACT_BYTES = 4 * 2 ** 20;
/** A failed compaction (a full disk) is tried again with the first batch after this long. */
const COMPACT_RETRY_MS = 1000;
/** Files read at once when a whole mount is read. */
const READS_AT_ONCE = 64;
/** Buckets rewritten at once by a compaction: few, so the journal's fdatasync never queues behind many on the threadpool. */
const COMPACT_AT_ONCE = 2;

const openFd = promisify(open);
const closeFd = promisify(close);
const syncData = promisify(fdatasync);

export interface PackedIo {
  /** Write a file atomically and durably (the driver's temp-fsync-rename); `syncDir: false` leaves the directory's fsync to the caller. */
  writeFile(path: string, data: Uint8Array, syncDir?: boolean): Promise<void>;
  /** fsync a directory, so names created or removed in it are durable. */
  syncDir(dir: string): Promise<void>;
  /** Whether a file name is another write's temp file, never a record. */
  isTempFile(name: string): boolean;
  dirMode: number;
  fileMode: number;
  /** Told each time folding the journal in `dir` into its buckets fails (with the error), and each time it works. */
  onFold?: ((dir: string, error?: Error) => void) | undefined;
}

export interface CompactAfter {
  /** Changes in one journal generation before it is folded into buckets (default COMPACT_RECORDS). */
  records?: number;
  /** Bytes of one journal generation before it is folded into buckets (default COMPACT_BYTES). */
  bytes?: number;
}

type Entries = Map<string, Buffer>;
type Op = { kind: "set"; key: string; value: Buffer } | { kind: "remove"; key: string } | { kind: "clear"; prefix: string };
const OP_CODES = { set: 1, remove: 2, clear: 3 } as const;

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

/** One change as a journal record: a u8 op, a u16 key length, a u32 value length, the key (UTF-8) and the value. */
function encodeOp(op: Op): Buffer[] {
  const key = Buffer.from(op.kind === "clear" ? op.prefix : op.key, "utf8");
  if (key.length > 0xffff) {
    throw new DormantError(
      "invalid-key",
      `A record key of ${key.length} bytes cannot be stored: a packed record's key is at most 65,535 bytes. Use a shorter key.`,
    );
  }
  const value = op.kind === "set" ? op.value : Buffer.alloc(0);
  const header = Buffer.alloc(7);
  header.writeUInt8(OP_CODES[op.kind], 0);
  header.writeUInt16BE(key.length, 1);
  header.writeUInt32BE(value.length, 3);
  return [header, key, value];
}

/**
 * A journal file: "DPJ1", then frames, one per batch: a u32 body length, the u32 CRC-32 of
 * the body, and the body (the batch's records). Calls `apply` with each change, batch by
 * batch, and returns how many bytes are sound: less than the file only for a torn last frame
 * of the newest generation (`newest`). Any other bad frame throws `records-corrupt`.
 */
export function decodeJournal(bytes: Buffer, path: string, newest: boolean, apply: (op: Op) => void): number {
  const corrupt = (what: string, at: number) =>
    new DormantError(
      "records-corrupt",
      `The record journal ${path} is damaged (${what}): the record changes from byte ${at} on cannot be read. ` +
        `Restore the directory it is in from a backup, or, to keep the changes before byte ${at} and lose those after, truncate the file to ${at} bytes; nothing was changed.`,
      { details: { path, at } },
    );
  if (bytes.length === 0) return 0;
  if (bytes.length < JOURNAL_MAGIC.length && newest && JOURNAL_MAGIC.subarray(0, bytes.length).equals(bytes)) return 0;
  if (bytes.length < JOURNAL_MAGIC.length || !bytes.subarray(0, JOURNAL_MAGIC.length).equals(JOURNAL_MAGIC)) throw corrupt("it does not start with DPJ1", 0);
  let at = JOURNAL_MAGIC.length;
  while (at < bytes.length) {
    const length = at + 8 <= bytes.length ? bytes.readUInt32BE(at) : undefined;
    const end = at + 8 + (length ?? 0);
    const problem =
      length === undefined
        ? "a batch header is cut off"
        : length === 0
          ? "a batch is empty"
          : end > bytes.length
            ? "a batch runs past the end"
            : crc32(bytes.subarray(at + 8, end)) !== bytes.readUInt32BE(at + 4)
              ? "a batch fails its checksum"
              : undefined;
    if (problem !== undefined) {
      // A torn append is the last thing in the file: cut off, ending it, or followed by nothing but zeros (a power cut).
      const last = length === undefined || end >= bytes.length || bytes.subarray(at).every((byte) => byte === 0);
      if (newest && last) return at;
      throw corrupt(`${problem} at byte ${at}`, at);
    }
    // The checksum held, so a record that does not fit is damage written whole, never a torn append.
    const ops: Op[] = [];
    for (let next = at + 8; next < end;) {
      if (next + 7 > end) throw corrupt(`a record header is cut off at byte ${next}`, at);
      const code = bytes.readUInt8(next);
      const keyEnd = next + 7 + bytes.readUInt16BE(next + 1);
      const valueEnd = keyEnd + bytes.readUInt32BE(next + 3);
      if (valueEnd > end) throw corrupt(`a record at byte ${next} runs past its batch`, at);
      const key = bytes.toString("utf8", next + 7, keyEnd);
      if (code === OP_CODES.set) ops.push({ kind: "set", key, value: Buffer.from(bytes.subarray(keyEnd, valueEnd)) });
      else if (code === OP_CODES.remove) ops.push({ kind: "remove", key });
      else if (code === OP_CODES.clear) ops.push({ kind: "clear", prefix: key });
      else throw corrupt(`a record at byte ${next} has the unknown kind ${code}`, at);
      next = valueEnd;
    }
    ops.forEach(apply);
    at = end;
  }
  return at;
}

/**
 * Changes not yet folded into buckets, by bucket: a value, or null for a removal, over the
 * prefixes cleared before them. One layer is one journal generation (or, replayed at open,
 * all generations on disk then). Applying a layer to a bucket twice gives what once does,
 * which is what makes a compaction that a crash cut short safe to run again.
 */
class Layer {
  readonly #changes = new Map<number, Map<string, Buffer | null>>();
  readonly clears: string[] = [];
  records = 0;
  bytes = 0;
  /** The layer that took appends over when this one was frozen: a read that began on this one goes on through it. */
  next: Layer | undefined;

  constructor(readonly generations: number[]) {}

  apply(op: Op): void {
    this.records++;
    if (op.kind === "clear") {
      for (const changes of this.#changes.values()) for (const key of changes.keys()) if (key.startsWith(op.prefix)) changes.delete(key);
      this.clears.push(op.prefix);
      return;
    }
    const bucket = bucketOf(op.key);
    let changes = this.#changes.get(bucket);
    if (!changes) this.#changes.set(bucket, (changes = new Map()));
    changes.set(op.key, op.kind === "set" ? op.value : null);
  }

  /** What this layer says of a key: its value, null when removed, undefined when it says nothing. */
  lookup(key: string): Buffer | null | undefined {
    const change = this.#changes.get(bucketOf(key))?.get(key);
    if (change !== undefined) return change;
    return this.clears.some((prefix) => key.startsWith(prefix)) ? null : undefined;
  }

  /** Apply this layer's changes to one bucket's entries; `copy` for a reader, who may change what it gets. */
  applyTo(bucket: number, entries: Entries, copy: boolean): void {
    for (const prefix of this.clears) for (const key of entries.keys()) if (key.startsWith(prefix)) entries.delete(key);
    for (const [key, value] of this.#changes.get(bucket) ?? []) {
      if (value === null) entries.delete(key);
      else entries.set(key, copy ? Buffer.from(value) : value);
    }
  }

  buckets(): Iterable<number> {
    return this.#changes.keys();
  }

  /** Changes that give this layer when applied in order (its clears, then what it holds by key). */
  ops(): Op[] {
    const ops: Op[] = this.clears.map((prefix) => ({ kind: "clear", prefix }));
    for (const changes of this.#changes.values()) {
      for (const [key, value] of changes) ops.push(value === null ? { kind: "remove", key } : { kind: "set", key, value });
    }
    return ops;
  }
}

interface Batch {
  ops: Op[];
  parts: Buffer[];
  done: Promise<void>;
  settle: (error?: unknown) => void;
}

interface Journal {
  fd: number;
  generation: number;
  /** Bytes written and synced: where the next batch goes. */
  end: number;
  /** A failed append may have left bytes past `end`: cut them off before the next one. */
  dirty: boolean;
}

/** One packed mount: `mount` is its directory under the driver's base ("partitions"). */
export class PackedMount {
  readonly #dir: string;
  readonly #bucketDir: string;
  readonly #io: PackedIo;
  readonly #compactRecords: number;
  readonly #compactBytes: number;
  #ready: Promise<void> | undefined;
  /** Appends go to this layer's generation. */
  #live = new Layer([0]);
  /** The generation(s) being folded into buckets, still read over them until that is done. */
  #frozen: Layer | undefined;
  #journal: Journal | undefined;
  #pending: Batch | undefined;
  #writing: Promise<void> | undefined;
  #compacting: Promise<void> | undefined;
  #compactAfter = 0;
  #closing = false;

  constructor(
    base: string,
    readonly mount: string,
    io: PackedIo,
    compactAfter: CompactAfter = {},
  ) {
    this.#dir = join(base, mount);
    this.#bucketDir = join(this.#dir, PACKED_DIR);
    this.#io = io;
    this.#compactRecords = compactAfter.records ?? COMPACT_RECORDS;
    this.#compactBytes = compactAfter.bytes ?? COMPACT_BYTES;
  }

  async get(key: string): Promise<Buffer | null> {
    await this.#opened();
    for (const layer of [this.#live, this.#frozen]) {
      const change = layer?.lookup(key);
      if (change !== undefined) return change && Buffer.from(change);
    }
    return (await this.#resolved(bucketOf(key), this.#frozen ?? this.#live)).get(key) ?? null;
  }

  set(key: string, value: Buffer): Promise<void> {
    return this.#change({ kind: "set", key, value });
  }

  remove(key: string): Promise<void> {
    return this.#change({ kind: "remove", key });
  }

  /** Every entry (keys relative to the mount), or those of `keys` that exist. */
  async entries(keys?: readonly string[]): Promise<{ key: string; value: Buffer }[]> {
    await this.#opened();
    const from = this.#frozen ?? this.#live;
    const wanted = keys && new Set(keys);
    const buckets = new Set(wanted ? [...wanted].map(bucketOf) : await this.#bucketsOnDisk());
    const read = new Map<number, Entries>();
    await eachBounded([...buckets], async (bucket) => void read.set(bucket, await this.#read(bucket)));
    if (!wanted) {
      // Buckets only the journal has written to so far (a bucket file is never removed, so none was missed on disk).
      for (let layer: Layer | undefined = from; layer; layer = layer.next)
        for (const bucket of layer.buckets()) if (!read.has(bucket)) read.set(bucket, new Map());
    }
    const found: { key: string; value: Buffer }[] = [];
    for (const [bucket, entries] of read) {
      for (let layer: Layer | undefined = from; layer; layer = layer.next) layer.applyTo(bucket, entries, true);
      for (const [key, value] of entries) if (!wanted || wanted.has(key)) found.push({ key, value });
    }
    return found;
  }

  /** Remove every entry whose key starts with `prefix` (all of them for ""): a change like any other. */
  clear(prefix: string): Promise<void> {
    return this.#change({ kind: "clear", prefix });
  }

  /** Fold loose files from before packing into buckets and replay the journal now (the store's open does, so no single operation's deadline has to cover it). */
  prepare(): Promise<void> {
    return this.#opened();
  }

  /** Wait for the writes under way and stop compacting (a compaction cut short is finished by the next open); the next use opens the mount again. */
  async close(): Promise<void> {
    this.#closing = true;
    while (this.#writing || this.#compacting) await (this.#writing ?? this.#compacting);
    const journal = this.#journal;
    this.#journal = undefined;
    this.#ready = undefined;
    if (journal) await closeFd(journal.fd);
  }

  async #change(op: Op): Promise<void> {
    await this.#opened();
    // Encoded first: a change that cannot be (a key too long) fails alone, and a batch is never empty.
    const parts = encodeOp(op);
    let batch = this.#pending;
    if (!batch) {
      let settle!: (error?: unknown) => void;
      const done = new Promise<void>((resolve, reject) => (settle = (error) => (error === undefined ? resolve() : reject(error))));
      this.#pending = batch = { ops: [], parts: [], done, settle };
    }
    batch.ops.push(op);
    batch.parts.push(...parts);
    this.#writing ??= this.#write();
    return batch.done;
  }

  /** The one writer: a batch at a time, everything that arrived meanwhile in the next. */
  async #write(): Promise<void> {
    while (this.#pending) {
      const batch = this.#pending;
      this.#pending = undefined;
      try {
        const layer = this.#live;
        await this.#append(layer, batch);
        for (const op of batch.ops) layer.apply(op);
        batch.settle();
      } catch (error) {
        batch.settle(error ?? new Error("journal append failed"));
      }
      // Between batches, never during one: a batch's bytes and its changes stay in one generation.
      this.#maybeCompact();
    }
    this.#writing = undefined;
  }

  async #append(layer: Layer, batch: Batch): Promise<void> {
    if (this.#journal && fstatSync(this.#journal.fd).nlink === 0) {
      // The journal was removed under the host (its folder deleted or replaced): appending to
      // the unlinked file would acknowledge changes nothing can read back. A new file holds
      // this generation's changes again, and this batch; while none can be made, writes fail.
      closeSync(this.#journal.fd);
      this.#journal = undefined;
    }
    const journal = await this.#journalFor(layer.generations[0]!);
    const parts = journal.end === 0 && layer.records > 0 ? [...layer.ops().flatMap(encodeOp), ...batch.parts] : batch.parts;
    if (journal.dirty) await this.#cutBack(journal);
    const body = Buffer.concat(parts);
    const header = Buffer.alloc(8);
    header.writeUInt32BE(body.length, 0);
    header.writeUInt32BE(crc32(body), 4);
    const frame = journal.end === 0 ? Buffer.concat([JOURNAL_MAGIC, header, body]) : Buffer.concat([header, body]);
    try {
      // Synchronous: a page-cache copy, cheaper than waking a threadpool thread for it.
      for (let done = 0; done < frame.length;) done += writeSync(journal.fd, frame, done, frame.length - done, journal.end + done);
      await syncData(journal.fd);
    } catch (error) {
      // The batch failed: its bytes must not land at a later sync or replay.
      journal.dirty = true;
      await this.#cutBack(journal).catch(() => undefined);
      throw error;
    }
    journal.end += frame.length;
    layer.bytes += frame.length;
  }

  /** Cut a failed append's bytes off the journal, durably. */
  async #cutBack(journal: Journal): Promise<void> {
    ftruncateSync(journal.fd, journal.end);
    await syncData(journal.fd);
    journal.dirty = false;
  }

  async #journalFor(generation: number): Promise<Journal> {
    if (this.#journal?.generation === generation) return this.#journal;
    await fsp.mkdir(this.#bucketDir, { recursive: true, mode: this.#io.dirMode });
    const path = this.#journalPath(generation);
    let fd: number;
    try {
      // "wx": a generation is only ever started once; finding it means another process writes this mount.
      fd = await openFd(path, "wx", this.#io.fileMode);
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
      throw new DormantError(
        "store-unavailable",
        `The record journal ${path} was started by someone else: another process is writing to this data directory. Run one host per data directory.`,
        { cause: error, details: { path } },
      );
    }
    // The new file's name is durable before anything in it is acknowledged.
    await this.#io.syncDir(this.#bucketDir);
    this.#journal = { fd, generation, end: 0, dirty: false };
    return this.#journal;
  }

  /** Start folding the live generation into buckets once it is large enough, or try a failed fold again. */
  #maybeCompact(): void {
    if (this.#compacting || this.#closing || Date.now() < this.#compactAfter) return;
    if (!this.#frozen) {
      const live = this.#live;
      if (live.records < this.#compactRecords && live.bytes < this.#compactBytes) return;
      // A journal whose failed append could not be cut off yet stays the newest until it is.
      if (this.#journal?.dirty) return;
      this.#frozen = live;
      this.#live = live.next = new Layer([live.generations[0]! + 1]);
      if (this.#journal) closeSync(this.#journal.fd);
      this.#journal = undefined;
    }
    const frozen = this.#frozen;
    this.#compacting = this.#compact(frozen).finally(() => {
      this.#compacting = undefined;
      // The next generation may have filled meanwhile; a batch under way calls again when it is done.
      if (!this.#writing) this.#maybeCompact();
    });
  }

  /** Rewrite every bucket the frozen layer touches once, then retire its journal generations. */
  async #compact(frozen: Layer): Promise<void> {
    try {
      const buckets = new Set(frozen.buckets());
      if (frozen.clears.length > 0) for (const bucket of await this.#bucketsOnDisk()) buckets.add(bucket);
      let cut = false;
      await eachBounded(
        [...buckets],
        async (bucket) => {
          if ((cut ||= this.#closing)) return;
          const entries = await this.#read(bucket);
          frozen.applyTo(bucket, entries, false);
          await this.#io.writeFile(this.#pathOf(bucket), encodeBucket(entries), false);
        },
        COMPACT_AT_ONCE,
      );
      if (cut) return;
      // One directory fsync makes every bucket's rename durable, before any journal goes.
      await this.#io.syncDir(this.#bucketDir);
      // Oldest first, each removal durable before the next: replaying a newer generation alone over the buckets is safe, an older one alone is not.
      for (const generation of [...frozen.generations].sort((a, b) => a - b)) {
        await fsp.rm(this.#journalPath(generation), { force: true });
        await this.#io.syncDir(this.#bucketDir);
      }
    } catch (error) {
      // A full or failing disk: the journal keeps every change, and the fold is tried again later.
      this.#compactAfter = Date.now() + COMPACT_RETRY_MS;
      this.#io.onFold?.(this.#bucketDir, error as Error);
      return;
    }
    this.#frozen = undefined;
    this.#io.onFold?.(this.#bucketDir);
  }

  /** A bucket as it is now: the file, with every layer from `from` on applied over it. */
  async #resolved(bucket: number, from: Layer): Promise<Entries> {
    const entries = await this.#read(bucket);
    for (let layer: Layer | undefined = from; layer; layer = layer.next) layer.applyTo(bucket, entries, true);
    return entries;
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
    return (await this.#packedNames()).filter((name) => /^[0-9a-f]{3}$/.test(name)).map((name) => parseInt(name, 16));
  }

  async #packedNames(): Promise<string[]> {
    return fsp.readdir(this.#bucketDir).catch((error: { code?: string }) => {
      if (error.code === "ENOENT") return [] as string[];
      throw error;
    });
  }

  #pathOf(bucket: number): string {
    return join(this.#bucketDir, bucketName(bucket));
  }

  #journalPath(generation: number): string {
    return join(this.#bucketDir, `journal.${generation}`);
  }

  /** Loose files from before packing are folded in, and the journal replayed, before the mount is first used. */
  #opened(): Promise<void> {
    this.#ready ??= this.#open().catch((error: unknown) => {
      this.#ready = undefined; // tried again on the next use
      throw error;
    });
    return this.#ready;
  }

  async #open(): Promise<void> {
    this.#closing = false;
    await this.#migrate();
    const generations = (await this.#packedNames())
      .map((name) => JOURNAL_RE.exec(name)?.[1])
      .filter((n) => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const replayed = new Layer(generations);
    for (const [i, generation] of generations.entries()) {
      const path = this.#journalPath(generation);
      const bytes = await fsp.readFile(path);
      const sound = decodeJournal(bytes, path, i === generations.length - 1, (op) => replayed.apply(op));
      // A torn last append, never acknowledged: cut off, so that this generation can stop being the newest.
      if (sound < bytes.length) await truncateDurably(path, sound);
    }
    this.#live = new Layer([(generations.at(-1) ?? -1) + 1]);
    this.#frozen = undefined;
    this.#journal = undefined;
    if (generations.length > 0) {
      // Folded into buckets once the mount is written to: not while a starting host reads every bucket.
      replayed.next = this.#live;
      this.#frozen = replayed;
    }
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
      // Straight to the bucket: the journal is not open yet, and loose files are older than anything in it.
      const entries = await this.#read(bucket);
      for (const file of files) entries.set(file.key, await fsp.readFile(file.path));
      await this.#io.writeFile(this.#pathOf(bucket), encodeBucket(entries), false);
    });
    await this.#io.syncDir(this.#bucketDir);
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

async function truncateDurably(path: string, length: number): Promise<void> {
  const handle = await fsp.open(path, "r+");
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function eachBounded<T>(items: readonly T[], work: (item: T) => Promise<unknown>, atOnce = READS_AT_ONCE): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      await work(items[next++]!).catch((error: unknown) => {
        failed = true;
        throw error;
      });
    }
  };
  // A failure stops the others taking more, and what they have under way is waited for: no
  // write of a failed fold lands after its caller has moved on (a close, the folder's removal).
  const settled = await Promise.allSettled(Array.from({ length: Math.min(atOnce, items.length) }, worker));
  const failure = settled.find((result) => result.status === "rejected");
  if (failure) throw failure.reason;
}
