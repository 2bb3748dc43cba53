// The bound on stored, undelivered work (async pushes, manual fires, retries): per
// partition and for the whole host, in deliveries and in bytes. Work beyond it is refused
// before it is stored, so an accepted delivery is one the host can honour in reasonable time.
import type { Delivery } from "./delivery.ts";
import { DormantError } from "../../runtime/index.ts";

export interface BacklogLimits {
  /** Deliveries waiting for one partition. */
  perPartition: number;
  /** Bytes (request bodies and payloads) waiting for one partition. */
  perPartitionBytes: number;
  /** Deliveries waiting on the host. */
  host: number;
  /** Bytes waiting on the host. */
  hostBytes: number;
}

interface Tally {
  count: number;
  bytes: number;
}

interface Entry {
  partition: string;
  bytes: number;
  /** When it became due first (its lag counts from here). */
  since: number;
}

/** What a stored delivery weighs: its request body and payload. */
export function weightOf(delivery: Pick<Delivery, "request" | "payload">): number {
  return (delivery.request?.body.byteLength ?? 0) + delivery.payload.byteLength;
}

export class Backlog {
  readonly #limits: BacklogLimits;
  readonly #byPartition = new Map<string, Tally & { entries: Set<Entry> }>();
  readonly #entries = new Map<string, Entry>();
  readonly #total: Tally = { count: 0, bytes: 0 };

  constructor(limits: BacklogLimits) {
    this.#limits = limits;
  }

  get count(): number {
    return this.#total.count;
  }

  get bytes(): number {
    return this.#total.bytes;
  }

  /** Count a delivery in (again, when it was already: a retry may have moved to another partition). */
  add(delivery: Delivery): void {
    const since = this.#entries.get(delivery.id)?.since ?? delivery.scheduledAt;
    this.remove(delivery.id);
    const entry = { partition: delivery.partition, bytes: weightOf(delivery), since };
    this.#entries.set(delivery.id, entry);
    const tally = this.#byPartition.get(entry.partition) ?? { count: 0, bytes: 0, entries: new Set<Entry>() };
    this.#byPartition.set(entry.partition, tally);
    tally.entries.add(entry);
    for (const t of [tally, this.#total]) {
      t.count++;
      t.bytes += entry.bytes;
    }
  }

  remove(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    const tally = this.#byPartition.get(entry.partition)!;
    tally.entries.delete(entry);
    for (const t of [tally, this.#total]) {
      t.count--;
      t.bytes -= entry.bytes;
    }
    if (tally.count === 0) this.#byPartition.delete(entry.partition);
  }

  /** Throws when one more delivery of `bytes` for `partition` would pass a bound: `details.backlog` says which, `details.retryAfterS` when to try again. */
  check(partition: string, bytes: number, now: number): void {
    const mine = this.#byPartition.get(partition) ?? { count: 0, bytes: 0 };
    const l = this.#limits;
    if (mine.count + 1 > l.perPartition || mine.bytes + bytes > l.perPartitionBytes) {
      const retryAfterS = this.#retryAfterS(now, partition);
      throw new DormantError(
        "partition-unavailable",
        `Partition ${partition} has ${mine.count} deliveries (${mine.bytes} bytes) waiting, ` +
          `at its bound of ${l.perPartition} (${l.perPartitionBytes} bytes); ` +
          `nothing more is accepted for it until they drain. Retry in ${retryAfterS} s.`,
        { details: { backlog: "partition", retryAfterS } },
      );
    }
    if (this.#total.count + 1 > l.host || this.#total.bytes + bytes > l.hostBytes) {
      const retryAfterS = this.#retryAfterS(now);
      throw new DormantError(
        "partition-unavailable",
        `The host has ${this.#total.count} deliveries (${this.#total.bytes} bytes) waiting, at its bound of ${l.host} (${l.hostBytes} bytes); ` +
          `it accepts no more background work until they drain. Retry in ${retryAfterS} s.`,
        { details: { backlog: "host", retryAfterS } },
      );
    }
  }

  /** How long the oldest waiting delivery (of `partition`, or of any) has waited, in ms: the delivery lag. */
  lagMs(now: number, partition?: string): number {
    let oldest = now;
    const entries = partition === undefined ? this.#entries.values() : (this.#byPartition.get(partition)?.entries ?? []);
    for (const entry of entries) if (entry.since < oldest) oldest = entry.since;
    return now - oldest;
  }

  /** Try again after about as long as the oldest waiting work has waited (1 s to 60 s). */
  #retryAfterS(now: number, partition?: string): number {
    return Math.min(60, Math.max(1, Math.ceil(this.lagMs(now, partition) / 1000)));
  }
}
