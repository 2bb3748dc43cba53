// The latest snapshot of recently frozen partitions, kept in memory so a warm wake reads
// no disk, verifies no hash and (holding the uncompressed image) inflates nothing, and its
// head, so the next freeze reads no head either.
// Bounded by bytes, least recently used out first. It only ever holds what the store has already
// written: durability is the store's, the cache just saves reading it back.
import type { SnapshotHead } from "./snapshot-store.ts";

export interface CachedSnapshot {
  /** The head as stored: `latest` is this snapshot. */
  head: SnapshotHead;
  /** The snapshot as `applySnapshot` takes it (uncompressed when the executor gave that form). */
  image: Uint8Array;
}

export interface SnapshotCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
  capacityBytes: number;
}

export class SnapshotCache {
  /** Map order is recency: the first entry is the least recently used. */
  readonly #entries = new Map<string, CachedSnapshot>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(readonly capacityBytes: number) {}

  get(partitionId: string): CachedSnapshot | undefined {
    const found = this.#entries.get(partitionId);
    if (!found) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#entries.delete(partitionId);
    this.#entries.set(partitionId, found);
    return found;
  }

  /** The entry, if any, without counting a hit or a miss or making it recent. */
  peek(partitionId: string): CachedSnapshot | undefined {
    return this.#entries.get(partitionId);
  }

  set(partitionId: string, entry: CachedSnapshot): void {
    this.delete(partitionId);
    if (entry.image.byteLength > this.capacityBytes) return;
    this.#entries.set(partitionId, entry);
    this.#bytes += entry.image.byteLength;
    for (const [id, oldest] of this.#entries) {
      if (this.#bytes <= this.capacityBytes) break;
      this.#entries.delete(id);
      this.#bytes -= oldest.image.byteLength;
      this.#evictions++;
    }
  }

  delete(partitionId: string): void {
    const found = this.#entries.get(partitionId);
    if (!found) return;
    this.#entries.delete(partitionId);
    this.#bytes -= found.image.byteLength;
  }

  get stats(): SnapshotCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      entries: this.#entries.size,
      bytes: this.#bytes,
      capacityBytes: this.capacityBytes,
    };
  }
}
