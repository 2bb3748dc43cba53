// The latest snapshot of recently frozen partitions, kept in memory so a wake reads no disk
// and verifies no hash, and its head, so the next freeze reads no head either. It only ever
// holds what the store has already written: durability is the store's, the cache just saves
// reading it back.
//
// Each entry holds the snapshot as stored, and the most recent ones also its uncompressed
// image when that is not what was stored (a StarlingMonkey counter's, 120–180 KB, is stored
// deflated; the QuickJS counter's, about 10 KB, as it is), which a warm wake takes (no
// copy) and applies without inflating.
// Images take at most half the cache, least recently used out first; so 64 MiB keeps the
// images of thousands of QuickJS partitions and the snapshots of many more. Bounded by
// bytes in all, least recently used out first.
import type { SnapshotHead } from "./snapshot-store.ts";

export interface CachedSnapshot {
  /** The head as stored: `latest` is this snapshot. */
  head: SnapshotHead;
  /** The snapshot as stored. */
  data: Uint8Array;
  /** The same snapshot uncompressed, as `applySnapshot` also takes it; kept while images fit in their half. */
  image?: Uint8Array | undefined;
}

export interface SnapshotCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  /** Entries that also hold their uncompressed image. */
  images: number;
  bytes: number;
  capacityBytes: number;
}

export class SnapshotCache {
  /** Map order is recency: the first entry is the least recently used. */
  readonly #entries = new Map<string, { head: SnapshotHead; data: Uint8Array }>();
  /** The images, in their own order of recency. */
  readonly #images = new Map<string, Uint8Array>();
  #bytes = 0;
  #imageBytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  constructor(readonly capacityBytes: number) {}

  /**
   * The entry, counted as a hit or a miss and made the most recent, with its image when it
   * still has one. The image is handed over, not copied: it leaves the cache, because the
   * partition it restores is live until its next freeze, which brings a new image.
   */
  get(partitionId: string): CachedSnapshot | undefined {
    const found = this.#entries.get(partitionId);
    if (!found) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#entries.delete(partitionId);
    this.#entries.set(partitionId, found);
    const image = this.#images.get(partitionId);
    if (image) {
      this.#images.delete(partitionId);
      this.#imageBytes -= image.byteLength;
    }
    return { ...found, image };
  }

  /** The entry, if any, without counting a hit or a miss or making it recent. */
  peek(partitionId: string): CachedSnapshot | undefined {
    return this.#entries.get(partitionId);
  }

  set(partitionId: string, { head, data, image }: CachedSnapshot): void {
    this.delete(partitionId);
    if (data.byteLength > this.capacityBytes) return;
    this.#entries.set(partitionId, { head, data });
    this.#bytes += data.byteLength;
    if (image && image !== data && image.byteLength <= this.capacityBytes / 2) {
      this.#images.set(partitionId, image);
      this.#imageBytes += image.byteLength;
    }
    for (const [id, oldest] of this.#images) {
      if (this.#imageBytes <= this.capacityBytes / 2) break;
      this.#images.delete(id);
      this.#imageBytes -= oldest.byteLength;
    }
    for (const [id] of this.#entries) {
      if (this.#bytes + this.#imageBytes <= this.capacityBytes) break;
      this.delete(id);
      this.#evictions++;
    }
  }

  delete(partitionId: string): void {
    const found = this.#entries.get(partitionId);
    if (!found) return;
    this.#entries.delete(partitionId);
    this.#bytes -= found.data.byteLength;
    const image = this.#images.get(partitionId);
    if (!image) return;
    this.#images.delete(partitionId);
    this.#imageBytes -= image.byteLength;
  }

  get stats(): SnapshotCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
      entries: this.#entries.size,
      images: this.#images.size,
      bytes: this.#bytes + this.#imageBytes,
      capacityBytes: this.capacityBytes,
    };
  }
}
