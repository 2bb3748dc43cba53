/**
 * Partition snapshots with crash-safe replacement and one step of history.
 *
 * Per partition (under its own prefix) the store keeps its snapshots in three blob slots
 * (`blob-<seq % 3>`) and a head `{ latest, previous }` recording each one's size and sha256,
 * in two head slots (`head-<latest.seq % 2>`), each the head's JSON, a newline and the JSON's
 * sha256. A put writes its blob into the slot neither the latest nor the previous snapshot
 * holds, then its head into the slot the current head is not in, both over the files' own
 * blocks (no file is made, renamed or removed once a partition has frozen a few times, which
 * on this store's disk is most of a freeze's cost): a crash mid-put tears only what nothing
 * current names. A reader takes the newer head slot that verifies, so a torn head leaves the
 * one before it; a blob damaged afterwards is caught by its size and hash and the previous
 * snapshot used instead. A partition's first head is written whole (temp file and rename),
 * so a lone head slot that does not verify is damage, never a first freeze cut short.
 *
 * Stores of format 1 (see STORE_FORMAT) kept one head under `head` and blobs under their
 * seq; such a partition is read as it is and moves into slots at its next put, its old
 * files removed as they fall out of the head.
 */
import { createHash } from "node:crypto";
import { prefixStorage, type Storage } from "unstorage";
import { DormantError, isDormantError } from "../../runtime/index.ts";
import { SnapshotCache, type SnapshotCacheStats } from "./snapshot-cache.ts";

export interface SnapshotRef {
  seq: number;
  sha256: string;
  bytes: number;
  takenAt: number;
  /** Where a store of format 1 keeps this blob (its seq); absent for one in its slot, `blob-<seq % 3>`. */
  blob?: string;
}

export interface SnapshotHead {
  latest: SnapshotRef;
  previous?: SnapshotRef;
}

export interface LoadedSnapshot {
  data: Uint8Array;
  ref: SnapshotRef;
  /** Newer snapshots that failed verification and were passed over. */
  skipped: DormantError[];
}

export type SnapshotProblem = "missing blob" | "size mismatch" | "hash mismatch" | "unreadable blob";

/** One snapshot failed verification (`details`: partitionId, seq, problem). */
export function snapshotCorrupt(
  partitionId: string,
  seq: number,
  problem: SnapshotProblem,
  detail: string,
  fallbackSeq: number | undefined,
): DormantError<"snapshot-corrupt"> {
  const next =
    fallbackSeq === undefined
      ? `No older snapshot is kept, so the partition can only start fresh.`
      : `The previous snapshot (seq ${fallbackSeq}) will be used instead.`;
  return new DormantError("snapshot-corrupt", `Snapshot ${seq} of partition "${partitionId}" is unusable: ${problem} (${detail}). ${next}`, {
    details: { partitionId, seq, problem },
  });
}

/** A head exists but none of the snapshots it names verifies (`details.problems`: what each one had). */
function noUsableSnapshot(partitionId: string, problems: DormantError[]): DormantError<"no-usable-snapshot"> {
  const list = problems.map((p) => `seq ${String(p.details.seq)}: ${String(p.details.problem)}`).join("; ");
  return new DormantError(
    "no-usable-snapshot",
    `Partition "${partitionId}" has no usable snapshot (${list}). Restore its snapshot data from a backup, or call delete("${partitionId}") to start it fresh.`,
    { details: { partitionId, problems: problems.map((p) => ({ ...p.details, message: p.message })) } },
  );
}

/** No head the partition has verifies, so no snapshot can be located. */
function snapshotHeadCorrupt(partitionId: string, detail: string): DormantError<"snapshot-head-corrupt"> {
  return new DormantError(
    "snapshot-head-corrupt",
    `The snapshot head of partition "${partitionId}" is unreadable (${detail}). ` +
      `Restore it from a backup, or call delete("${partitionId}") to start the partition fresh.`,
    { details: { partitionId } },
  );
}

/** One of a partition's two head slots does not verify and the other one is used (reported by `load`). */
function headSlotPassedOver(partitionId: string, slot: string, detail: string, used: SnapshotRef): DormantError<"snapshot-head-corrupt"> {
  return new DormantError(
    "snapshot-head-corrupt",
    `The snapshot head in slot "${slot}" of partition "${partitionId}" is unreadable (${detail}); the other slot's head, ` +
      `whose latest snapshot is ${used.seq}, is used. A freeze cut short by a crash leaves its head so; if the host did not crash, the store's disk damaged it.`,
    { details: { partitionId, slot } },
  );
}

const PARTITION_ID_RE = /^[a-zA-Z0-9_-]{1,128}$/;
const HEAD_SLOTS = ["head-0", "head-1"] as const;
/** The one head of a partition in a store of format 1. */
const LEGACY_HEAD_KEY = "head";
const SLOT_KEY_RE = /^(head-[01]|blob-[012])$/;
const LEGACY_BLOB_RE = /^\d+$/;

const headSlotOf = (seq: number): string => HEAD_SLOTS[seq % 2]!;
const blobKeyOf = (ref: SnapshotRef): string => ref.blob ?? `blob-${ref.seq % 3}`;

/** A head slot's content: the head's JSON, a newline, and the JSON's sha256. */
function encodeHead(head: SnapshotHead): Uint8Array {
  const json = JSON.stringify(head);
  return Buffer.from(`${json}\n${sha256Hex(Buffer.from(json))}`);
}

export function assertPartitionId(partitionId: string): void {
  if (typeof partitionId !== "string" || !PARTITION_ID_RE.test(partitionId)) {
    throw new DormantError(
      "invalid-partition-id",
      `Invalid partition id ${JSON.stringify(String(partitionId))}: use 1-128 characters from letters, digits, "_" and "-" (it becomes a storage key segment).`,
    );
  }
}

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function isRef(value: unknown): value is SnapshotRef {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    (r.blob === undefined || (typeof r.blob === "string" && LEGACY_BLOB_RE.test(r.blob))) &&
    Number.isSafeInteger(r.seq) &&
    (r.seq as number) > 0 &&
    typeof r.sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(r.sha256) &&
    Number.isSafeInteger(r.bytes) &&
    (r.bytes as number) >= 0 &&
    typeof r.takenAt === "number" &&
    Number.isFinite(r.takenAt)
  );
}

/**
 * Backends hand raw values back differently: fs gives a Buffer, and drivers
 * without native raw support (redis) give unstorage's base64 decoding, also a
 * Buffer. Anything else means the value was not written by us as raw bytes.
 */
function asBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return undefined;
}

interface FoundHead {
  head: SnapshotHead;
  inSlot: boolean;
  passedOver?: DormantError | undefined;
}

/** A head record's JSON value, or what is wrong with it. */
function parseHead(raw: unknown): SnapshotHead | string {
  if (typeof raw !== "object" || raw === null) return "it is not a JSON object";
  const { latest, previous } = raw as Record<string, unknown>;
  if (!isRef(latest)) return "its latest entry is malformed";
  if (previous !== undefined && !isRef(previous)) return "its previous entry is malformed";
  return previous === undefined ? { latest } : { latest, previous };
}

/** A head slot's head (see encodeHead), or what is wrong with it. */
function readHeadSlot(raw: unknown, slot: number): SnapshotHead | string {
  const bytes = asBytes(raw);
  if (!bytes) return `it is a ${typeof raw}, not bytes`;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  const end = text.lastIndexOf("\n");
  const json = text.slice(0, Math.max(end, 0));
  if (end < 0 || sha256Hex(Buffer.from(json)) !== text.slice(end + 1)) return "its checksum does not match";
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return "its checksum matches but it is not JSON";
  }
  const head = parseHead(value);
  if (typeof head !== "string" && head.latest.seq % 2 !== slot) return `it names snapshot ${head.latest.seq}, whose head belongs in the other slot`;
  return head;
}

export interface PutOptions {
  /** The same snapshot uncompressed, which a load from memory hands back while the cache keeps it (see SnapshotCache). */
  image?: Uint8Array;
  /**
   * Runs once the blob is written and before the head names it: if it fails, the head stays
   * on the previous snapshot (the blob is left for the sweep) and `put` fails with its error.
   */
  beforeHead?: () => Promise<void>;
}

export interface SnapshotStoreOptions {
  /** Bytes of recently written snapshots to keep in memory for `load` (default 0: every load reads the store). */
  cacheBytes?: number;
}

export class SnapshotStore {
  /** Serialises puts per partition so concurrent callers cannot reuse a seq. */
  readonly #pending = new Map<string, Promise<unknown>>();
  readonly #cache: SnapshotCache;

  constructor(
    private readonly storage: Storage,
    options: SnapshotStoreOptions = {},
  ) {
    this.#cache = new SnapshotCache(options.cacheBytes ?? 0);
  }

  /** Hits, misses and size of the in-memory cache of recent snapshots. */
  get cacheStats(): SnapshotCacheStats {
    return this.#cache.stats;
  }

  /** Store a snapshot (with what else must hold before it becomes the restore point), kept in the cache once the write is complete. */
  async put(partitionId: string, data: Uint8Array, takenAt: number, options: PutOptions = {}): Promise<SnapshotRef> {
    const ps = this.#partition(partitionId);
    if (!(data instanceof Uint8Array)) throw new TypeError(`put("${partitionId}"): data must be a Uint8Array.`);
    if (!Number.isFinite(takenAt)) throw new TypeError(`put("${partitionId}"): takenAt must be a finite number.`);
    return this.#serial(partitionId, async () => {
      // The head this store last wrote, if still cached, is the stored one (one host per
      // store, or per partition in a cluster, which forgets it on handover). Until the new
      // head is written the stored latest is the old one; a failed put leaves nothing stale here.
      const cachedHead = this.#cache.peek(partitionId)?.head;
      this.#cache.delete(partitionId);
      const found = cachedHead ? { head: cachedHead, inSlot: true } : await this.#findHead(partitionId, ps);
      const old = found?.head;
      const ref: SnapshotRef = {
        seq: (old?.latest.seq ?? 0) + 1,
        sha256: sha256Hex(data),
        bytes: data.byteLength,
        takenAt,
      };
      // Order matters: the blob must be complete before any head names it. Its slot is neither
      // the latest's nor the previous's, so writing over it tears nothing a head relies on.
      await ps.setItemRaw(blobKeyOf(ref), data, { inPlace: true });
      await options.beforeHead?.();
      const head: SnapshotHead = old ? { latest: ref, previous: old.latest } : { latest: ref };
      // Over the other slot only while the current head verifies in its own: a torn write
      // then leaves it. A first head (or the first after format 1) is written whole.
      await ps.setItemRaw(headSlotOf(ref.seq), encodeHead(head), { inPlace: found?.inSlot === true });
      this.#cache.set(partitionId, { head, data, image: options.image });
      // Only now is a format-1 store's old head, and its blob that fell out, unreferenced.
      // The snapshot is stored whatever becomes of them: one left behind is the sweep's.
      try {
        if (found && !found.inSlot) await ps.removeItem(LEGACY_HEAD_KEY);
        if (old?.previous?.blob !== undefined) await ps.removeItem(old.previous.blob);
      } catch {
        // Left for the sweep (see `sweep`), which reports what it cannot remove.
      }
      return ref;
    });
  }

  /** The latest snapshot that verifies (from memory when recently written: a copy the caller owns). */
  async load(partitionId: string): Promise<LoadedSnapshot | undefined> {
    const cached = this.#cache.get(partitionId);
    // The image is the caller's now (see SnapshotCache.get); the stored snapshot stays cached, so the caller gets a copy.
    if (cached) return { data: cached.image ?? cached.data.slice(), ref: cached.head.latest, skipped: [] };
    const ps = this.#partition(partitionId);
    // After any put under way: its head slot, half written, would be passed over and reported.
    return this.#serial(partitionId, async () => {
      const found = await this.#findHead(partitionId, ps);
      if (!found) return undefined;
      const { head } = found;
      const skipped: DormantError[] = found.passedOver ? [found.passedOver] : [];
      const candidates = head.previous ? [head.latest, head.previous] : [head.latest];
      for (const [i, ref] of candidates.entries()) {
        const result = await this.#verify(partitionId, ps, ref, candidates[i + 1]?.seq);
        if (result instanceof DormantError) skipped.push(result);
        else return { data: result, ref, skipped };
      }
      throw noUsableSnapshot(
        partitionId,
        skipped.filter((problem) => problem.code === "snapshot-corrupt"),
      );
    });
  }

  async head(partitionId: string): Promise<SnapshotHead | undefined> {
    return (await this.#findHead(partitionId, this.#partition(partitionId)))?.head;
  }

  /** Drop what is cached of a partition: another host may write its snapshots from now on. */
  forget(partitionId: string): void {
    this.#cache.delete(partitionId);
  }

  /** Removes every snapshot of the partition; a later put starts at seq 1. */
  async delete(partitionId: string): Promise<void> {
    const ps = this.#partition(partitionId);
    await this.#serial(partitionId, async () => {
      this.#cache.delete(partitionId);
      // Heads first, the current one last: a crash part-way leaves the partition as it was, or
      // orphan blobs, never an older head in charge or a head naming deleted blobs.
      // A head that cannot be read now (the store failing) must not send the removals in the
      // wrong order; only a damaged one, which names nothing to keep, is removed as it is.
      const current = await this.#findHead(partitionId, ps).catch((error: unknown) => {
        if (isDormantError(error, "snapshot-head-corrupt")) return undefined;
        throw error;
      });
      const last = current?.inSlot ? headSlotOf(current.head.latest.seq) : LEGACY_HEAD_KEY;
      for (const key of [...HEAD_SLOTS, LEGACY_HEAD_KEY].filter((key) => key !== last)) await ps.removeItem(key);
      await ps.removeItem(last);
      // unstorage's clear(base) skips the root mount, so remove keys one by one.
      const keys = await ps.getKeys();
      await Promise.all(keys.map((key) => ps.removeItem(key)));
    });
  }

  /**
   * Remove the blobs no head names: restore needs only the latest and previous snapshot. That
   * is the third blob slot of a partition frozen since the last sweep (its next freeze makes
   * the file again), a format-1 store's leftovers, and what a put or delete cut short by a
   * crash left behind. Each partition is swept inside its own queue, so a put under way
   * (blob written, head not yet) is never touched.
   */
  async sweep(owns: (partition: string) => boolean = () => true): Promise<{ removed: number }> {
    const byPartition = new Map<string, string[]>();
    for (const key of await this.storage.getKeys()) {
      const [partitionId, name, ...rest] = key.split(":");
      if (!partitionId || !name || rest.length > 0 || !PARTITION_ID_RE.test(partitionId) || !owns(partitionId)) continue;
      if (!byPartition.has(partitionId)) byPartition.set(partitionId, []);
      byPartition.get(partitionId)!.push(name);
    }
    let removed = 0;
    for (const [partitionId, names] of byPartition) {
      // Usually slots only, a head and at most two blobs: nothing to read.
      const blobs = names.filter((name) => name.startsWith("blob-")).length;
      if (names.every((name) => SLOT_KEY_RE.test(name)) && blobs <= 2 && blobs < names.length) continue;
      removed += await this.#serial(partitionId, async () => {
        const ps = this.#partition(partitionId);
        const found = await this.#findHead(partitionId, ps).catch(() => "unreadable" as const);
        // An unreadable head is left for an operator to look at, with all it may name.
        if (found === "unreadable") return 0;
        const named = found ? [found.head.latest, ...(found.head.previous ? [found.head.previous] : [])] : [];
        const kept = new Set([...HEAD_SLOTS, ...named.map(blobKeyOf)]);
        if (!found || !found.inSlot) kept.add(LEGACY_HEAD_KEY);
        const stale = (await ps.getKeys()).filter((key) => !kept.has(key) && (SLOT_KEY_RE.test(key) || LEGACY_BLOB_RE.test(key) || key === LEGACY_HEAD_KEY));
        for (const key of stale) await ps.removeItem(key);
        return stale.length;
      });
    }
    return { removed };
  }

  #partition(partitionId: string): Storage {
    assertPartitionId(partitionId);
    return prefixStorage(this.storage, partitionId);
  }

  #serial<T>(partitionId: string, task: () => Promise<T>): Promise<T> {
    const prior = this.#pending.get(partitionId) ?? Promise.resolve();
    const run = prior.then(task, task);
    const settled = run.catch(() => {});
    this.#pending.set(partitionId, settled);
    void settled.then(() => {
      if (this.#pending.get(partitionId) === settled) this.#pending.delete(partitionId);
    });
    return run;
  }

  /**
   * The partition's current head: the newer head slot that verifies (`passedOver` says why the
   * other one did not, if it exists and does not), else a format-1 store's head. `inSlot` says
   * the head verifies in its own slot, so the next put may write over the other one.
   */
  async #findHead(partitionId: string, ps: Storage): Promise<FoundHead | undefined> {
    const raws = await Promise.all(HEAD_SLOTS.map((key) => ps.getItemRaw(key)));
    let best: SnapshotHead | undefined;
    const problems: { slot: string; detail: string }[] = [];
    for (const [i, raw] of raws.entries()) {
      if (raw === null || raw === undefined) continue;
      const slot = HEAD_SLOTS[i]!;
      const read = readHeadSlot(raw, i);
      if (typeof read === "string") problems.push({ slot, detail: read });
      else if (!best || read.latest.seq > best.latest.seq) best = read;
    }
    if (best) {
      const problem = problems[0];
      return { head: best, inSlot: true, passedOver: problem && headSlotPassedOver(partitionId, problem.slot, problem.detail, best.latest) };
    }
    if (problems.length > 0) throw snapshotHeadCorrupt(partitionId, problems.map(({ slot, detail }) => `${slot}: ${detail}`).join("; "));
    const legacy = await ps.getItem<unknown>(LEGACY_HEAD_KEY);
    if (legacy === null || legacy === undefined) return undefined;
    const head = parseHead(legacy);
    if (typeof head === "string") throw snapshotHeadCorrupt(partitionId, head);
    const named = (ref: SnapshotRef): SnapshotRef => ({ ...ref, blob: String(ref.seq) });
    return { head: head.previous ? { latest: named(head.latest), previous: named(head.previous) } : { latest: named(head.latest) }, inSlot: false };
  }

  async #verify(partitionId: string, ps: Storage, ref: SnapshotRef, fallbackSeq: number | undefined): Promise<Uint8Array | DormantError> {
    const corrupt = (problem: SnapshotProblem, detail: string) => snapshotCorrupt(partitionId, ref.seq, problem, detail, fallbackSeq);
    const raw = await ps.getItemRaw(blobKeyOf(ref));
    if (raw === null || raw === undefined) return corrupt("missing blob", "no data stored under its key");
    const data = asBytes(raw);
    if (!data) return corrupt("unreadable blob", `stored value is a ${typeof raw}, not bytes`);
    if (data.byteLength !== ref.bytes) {
      return corrupt("size mismatch", `expected ${ref.bytes} bytes, found ${data.byteLength}`);
    }
    const actual = sha256Hex(data);
    if (actual !== ref.sha256) {
      return corrupt("hash mismatch", `expected sha256 ${ref.sha256}, found ${actual}`);
    }
    return data;
  }
}
