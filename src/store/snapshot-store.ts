/**
 * Partition snapshots with crash-safe replacement and one step of history.
 *
 * Per partition (under its own prefix) the store keeps blobs `<seq>` and a
 * JSON head `{ latest, previous }` recording each blob's size and sha256.
 * A put writes the new blob completely before the head points at it, so a
 * crash at any moment leaves a head whose blobs were fully written; a blob
 * damaged afterwards (disk, operator, torn write on a non-atomic backend) is
 * caught by the size/hash check and the previous snapshot is used instead.
 */
import { createHash } from "node:crypto";
import { prefixStorage, type Storage } from "unstorage";
import { DormantError } from "../../runtime/index.ts";
import { SnapshotCache, type SnapshotCacheStats } from "./snapshot-cache.ts";

export interface SnapshotRef {
  seq: number;
  sha256: string;
  bytes: number;
  takenAt: number;
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

/** The head record itself cannot be parsed, so no snapshot can be located. */
function snapshotHeadCorrupt(partitionId: string, detail: string): DormantError<"snapshot-head-corrupt"> {
  return new DormantError(
    "snapshot-head-corrupt",
    `The snapshot head of partition "${partitionId}" is unreadable (${detail}). ` +
      `Restore it from a backup, or call delete("${partitionId}") to start the partition fresh.`,
    { details: { partitionId } },
  );
}

const PARTITION_ID_RE = /^[a-zA-Z0-9_-]{1,128}$/;
const HEAD_KEY = "head";

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
      const old = cachedHead ?? (await this.#readHead(partitionId, ps));
      const ref: SnapshotRef = {
        seq: (old?.latest.seq ?? 0) + 1,
        sha256: sha256Hex(data),
        bytes: data.byteLength,
        takenAt,
      };
      // Order matters: the blob must be complete before any head names it. Until then nothing
      // reads it, so a driver may write it in place (fs: no temp file, rename or directory
      // fsync; the head's write syncs the same directory): see RawWriteOptions.
      await ps.setItemRaw(String(ref.seq), data, { unreferenced: true });
      await options.beforeHead?.();
      const head: SnapshotHead = old ? { latest: ref, previous: old.latest } : { latest: ref };
      await ps.setItem(HEAD_KEY, head);
      this.#cache.set(partitionId, { head, data, image: options.image });
      // Only now is the old "previous" unreferenced.
      if (old?.previous) await ps.removeItem(String(old.previous.seq));
      return ref;
    });
  }

  /** The latest snapshot that verifies (from memory when recently written: a copy the caller owns). */
  async load(partitionId: string): Promise<LoadedSnapshot | undefined> {
    const cached = this.#cache.get(partitionId);
    // The image is the caller's now (see SnapshotCache.get); the stored snapshot stays cached, so the caller gets a copy.
    if (cached) return { data: cached.image ?? cached.data.slice(), ref: cached.head.latest, skipped: [] };
    const ps = this.#partition(partitionId);
    const head = await this.#readHead(partitionId, ps);
    if (!head) return undefined;
    const skipped: DormantError[] = [];
    const candidates = head.previous ? [head.latest, head.previous] : [head.latest];
    for (const [i, ref] of candidates.entries()) {
      const result = await this.#verify(partitionId, ps, ref, candidates[i + 1]?.seq);
      if (result instanceof DormantError) skipped.push(result);
      else return { data: result, ref, skipped };
    }
    throw noUsableSnapshot(partitionId, skipped);
  }

  async head(partitionId: string): Promise<SnapshotHead | undefined> {
    return this.#readHead(partitionId, this.#partition(partitionId));
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
      // Head first: a crash part-way leaves orphan blobs, never a head
      // pointing at deleted ones.
      await ps.removeItem(HEAD_KEY);
      // unstorage's clear(base) skips the root mount, so remove keys one by one.
      const keys = await ps.getKeys();
      await Promise.all(keys.map((key) => ps.removeItem(key)));
    });
  }

  /**
   * Remove the blobs no head names: restore needs only the latest and previous snapshot,
   * and a put or delete cut short by a crash leaves others behind. Each partition is swept
   * inside its own queue, so a put under way (blob written, head not yet) is never touched.
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
      // Usually just the head and its two blobs: nothing to read again.
      if (names.length <= 3 && names.includes(HEAD_KEY)) continue;
      removed += await this.#serial(partitionId, async () => {
        const ps = this.#partition(partitionId);
        const head = await this.#readHead(partitionId, ps).catch(() => "unreadable" as const);
        // An unreadable head is left for an operator to look at, with all it may name.
        if (head === "unreadable") return 0;
        const kept = new Set([HEAD_KEY, ...(head ? [String(head.latest.seq)] : []), ...(head?.previous ? [String(head.previous.seq)] : [])]);
        const stale = (await ps.getKeys()).filter((key) => !kept.has(key) && /^\d+$/.test(key));
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

  async #readHead(partitionId: string, ps: Storage): Promise<SnapshotHead | undefined> {
    const raw = await ps.getItem<unknown>(HEAD_KEY);
    if (raw === null || raw === undefined) return undefined;
    if (typeof raw !== "object") {
      throw snapshotHeadCorrupt(partitionId, "it is not a JSON object");
    }
    const { latest, previous } = raw as Record<string, unknown>;
    if (!isRef(latest)) throw snapshotHeadCorrupt(partitionId, "its latest entry is malformed");
    if (previous !== undefined && !isRef(previous)) {
      throw snapshotHeadCorrupt(partitionId, "its previous entry is malformed");
    }
    return previous === undefined ? { latest } : { latest, previous };
  }

  async #verify(partitionId: string, ps: Storage, ref: SnapshotRef, fallbackSeq: number | undefined): Promise<Uint8Array | DormantError> {
    const corrupt = (problem: SnapshotProblem, detail: string) => snapshotCorrupt(partitionId, ref.seq, problem, detail, fallbackSeq);
    const raw = await ps.getItemRaw(String(ref.seq));
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
