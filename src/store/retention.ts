// What the host keeps is bounded by what is live: the sweep removes snapshot blobs no head
// names (restore needs the latest and the one before), temp files of writers that died,
// dead letters past their age, components nobody has used for a while, and trims the
// engine cache to its size. It then measures the disk, by kind, for the metrics and the
// admin API. Delivered events and superseded snapshots are removed as they happen; this
// catches what a crash or a bound left behind.
import { join } from "node:path";
import { treeBytesOf } from "./tree-bytes.ts";
import type { Store } from "./open.ts";
import { cleanTempFiles } from "./staging.ts";

/** Bytes on disk by kind; `store` is undefined when the store is not on this machine's disk (Redis). */
export interface DiskUsage {
  measuredAt: number;
  store: { snapshots: number; components: number; deliveries: number; deadLetters: number; records: number } | undefined;
  engineCache: { bytes: number; entries: number; capacityBytes: number };
  /** Everything measured, in bytes. */
  total: number;
}

export interface SweepResult {
  snapshotBlobs: number;
  tempFiles: number;
  deadLetters: number;
  components: string[];
}

/** The parts the sweep works on, by what it needs of them. */
export interface RetentionParts {
  store: Store;
  snapshots: { sweep(owns?: (partition: string) => boolean): Promise<{ removed: number }> };
  deadLetters: { expire(now: number, owns?: (partition: string) => boolean): Promise<number> };
  components: {
    collect(now: number): Promise<string[]>;
    trimCache(): Promise<void>;
    cacheUsage(): Promise<DiskUsage["engineCache"]>;
  };
  now(): number;
  /** On a cluster host: the partitions whose data it may remove (those of the shards it holds). */
  owns?: (partition: string) => boolean;
}

export class Retention {
  readonly #p: RetentionParts;
  #usage: DiskUsage | undefined;
  #sweeping: Promise<SweepResult> | undefined;
  #measuring: Promise<DiskUsage> | undefined;

  constructor(parts: RetentionParts) {
    this.#p = parts;
  }

  /** The last measurement (undefined before the first). */
  get usage(): DiskUsage | undefined {
    return this.#usage;
  }

  /** One sweep (concurrent calls share it), then a fresh measurement. */
  sweep(): Promise<SweepResult> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweep(): Promise<SweepResult> {
    const { store, snapshots, deadLetters, components, now, owns } = this.#p;
    const { removed: snapshotBlobs } = await snapshots.sweep(owns);
    const tempFiles = store.config.kind === "fs" ? (await cleanTempFiles(store.config.dir)).length : 0;
    const expired = await deadLetters.expire(now(), owns);
    const removed = await components.collect(now());
    await components.trimCache();
    await this.measure();
    return { snapshotBlobs, tempFiles, deadLetters: expired, components: removed };
  }

  /** The last measurement if taken within `maxAgeMs` (host clock), else a new one. */
  async recent(maxAgeMs: number): Promise<DiskUsage> {
    const usage = this.#usage;
    return usage && this.#p.now() - usage.measuredAt <= maxAgeMs ? usage : this.measure();
  }

  /** Measure the disk now (concurrent calls share one measurement). */
  measure(): Promise<DiskUsage> {
    this.#measuring ??= this.#measure().finally(() => (this.#measuring = undefined));
    return this.#measuring;
  }

  async #measure(): Promise<DiskUsage> {
    const { store, components, now } = this.#p;
    const engineCache = await components.cacheUsage();
    let byKind: DiskUsage["store"];
    if (store.config.kind === "fs") {
      const dir = store.config.dir;
      const [snapshots, componentBytes, deliveries, deadLetters, partitions, registrations] = await Promise.all(
        ["snapshots", "components", "deliveries", "dead-letters", "partitions", "registrations"].map((mount) => treeBytesOf(join(dir, mount))),
      );
      byKind = {
        snapshots: snapshots!,
        components: componentBytes!,
        deliveries: deliveries!,
        deadLetters: deadLetters!,
        records: partitions! + registrations!,
      };
    }
    const storeTotal = byKind ? Object.values(byKind).reduce((sum, bytes) => sum + bytes, 0) : 0;
    this.#usage = { measuredAt: now(), store: byKind, engineCache, total: storeTotal + engineCache.bytes };
    return this.#usage;
  }
}
