// A host's place in a cluster: its membership row, kept alive by heartbeats, and the shard
// leases it holds. Leases are rows in PostgreSQL changed only by single atomic statements:
// a claim takes a free or expired shard and increments its epoch, a renewal extends only
// the rows this host still owns, a handover clears them. Every write of a shard's data
// carries the epoch it was claimed with (store/drivers/postgres.ts refuses a stale one), so
// a host that was paused past its TTL can do no harm when it wakes: its first renewal tells
// it which shards it lost, and it drops their partitions without writing.
import type { Pool, PoolClient, QueryResult } from "pg";
import type { Clock, TimerHandle } from "../scheduler/clock.ts";
import type { TimerLoop } from "../scheduler/timer-loop.ts";
import { shardOf } from "./shards.ts";
import { DormantError } from "../../runtime/index.ts";

/** What a host does when shards come and go; host.ts implements it over the lifecycle, registry and delivery. */
export interface ShardOwner {
  /**
   * Load the partitions of these shards, their tasks and pending deliveries; arm their timers.
   * `takenOver` are those whose last owner's lease ran out without a handover.
   */
  adopt(shards: ReadonlySet<number>, takenOver: ReadonlySet<number>): Promise<void>;
  /** Let these shards' partitions go: `handover` saves their state first; `lost` drops it unwritten (another host owns them now). */
  release(shards: ReadonlySet<number>, how: "handover" | "lost"): Promise<void>;
  /** How many live partitions (those a handover must save) each shard has; shards with none may be missing. */
  liveByShard(): Map<number, number>;
}

export interface ClusterSettings {
  /** Shards the partitions are spread over; fixed when the cluster is created. */
  shards: number;
  /** How long a lease outlives its host's last heartbeat. */
  ttlMs: number;
}

export interface MembershipOptions extends ClusterSettings {
  pool: Pool;
  /** The schema holding the cluster's tables, and their quoted, qualified names (store/drivers/postgres.ts). */
  schema: string;
  tables: { shards: string; members: string };
  /** This host's id, unique in the cluster. */
  host: string;
  owner: ShardOwner;
  timers: Pick<TimerLoop, "arm" | "on">;
  clock: Clock;
  onEvent?: (event: ClusterEvent) => void;
}

export type ClusterEvent =
  | { type: "shards-acquired"; shards: number[]; epochs: number[] }
  /** Shards taken from a host whose lease ran out: what was due or pending on them may have been delivered by it already. */
  | { type: "takeover"; shards: number[]; overdueTimers: number; pendingDeliveries: number }
  | { type: "shards-released"; shards: number[]; how: "handover" | "lost" }
  | { type: "error"; error: Error; partition?: string };

/** Where other hosts forward a host's requests: its push listener, and its admin listener. */
export interface Addresses {
  address: string;
  adminAddress: string;
}

export interface Lease {
  shard: number;
  epoch: number;
}

export interface MemberView {
  host: string;
  address: string;
  adminAddress: string;
  heartbeatAt: number;
  expiresAt: number;
  alive: boolean;
  shards: number;
}

export interface ShardView {
  shard: number;
  owner: string | null;
  epoch: number;
  expiresAt: number | null;
}

export const CLUSTER_TIMER = "cluster";
/** How often leases are renewed and the share of shards rebalanced, at most. */
const MAX_TICK_MS = 1000;
/**
 * Shards saved at once in a handover. Each is cleared and announced as soon as its own
 * partitions are saved, so the others take the first ones while the rest are still being
 * frozen; a few at once keep the executors busy while one shard's writes finish.
 */
const HANDOVER_SHARDS_AT_ONCE = 4;
/**
 * Shards claimed in one round. Each claim loads its shards' partitions before they serve,
 * so a host taking many shards (another's handover, or every shard at start) serves the
 * first ones sooner, and renews between batches rather than after loading them all.
 */
const CLAIM_SHARDS_AT_ONCE = 4;

export class Membership {
  readonly #o: MembershipOptions;
  readonly #held = new Map<number, number>();
  /** performance.now() when the last successful renewal began: leases are valid on this host's clock until then + TTL. */
  #renewedAt = -Infinity;
  #ticking: Promise<void> | undefined;
  #again = false;
  /** Shards may be free to claim: a handover was announced, or the last claim took a whole batch. */
  #claimSoon = false;
  #listener: PoolClient | undefined;
  /** The listener's statements, one at a time: a pg client runs one query at once, and queueing more on it is deprecated. */
  #leaseQueue: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #addresses: Addresses = { address: "", adminAddress: "" };

  constructor(options: MembershipOptions) {
    this.#o = options;
    options.timers.on(CLUSTER_TIMER, () => this.tick());
  }

  get host(): string {
    return this.#o.host;
  }

  get settings(): ClusterSettings {
    return { shards: this.#o.shards, ttlMs: this.#o.ttlMs };
  }

  /** Join: heartbeat once, take a share of the shards, and listen for handovers. */
  async start(addresses: Addresses): Promise<void> {
    this.#addresses = addresses;
    const listener = await this.#o.pool.connect();
    this.#listener = listener;
    listener.on("notification", () => {
      this.#claimSoon = true;
      this.#soon();
    });
    listener.on("error", (error) => this.#emit({ type: "error", error }));
    await this.#lease(`LISTEN ${this.#channel()}`);
    await this.tick();
  }

  /** Whether this host's membership and leases are current (its last renewal is within the TTL, with a margin). */
  get member(): boolean {
    return !this.#stopped && this.#valid();
  }

  shardOf(partition: string): number {
    return shardOf(partition, this.#o.shards);
  }

  /** The epoch this host holds a partition's shard with, while its lease is valid on this host's clock. */
  epochOf(partition: string): number | undefined {
    if (!this.#valid()) return undefined;
    return this.#held.get(this.shardOf(partition));
  }

  owns(partition: string): boolean {
    return this.epochOf(partition) !== undefined;
  }

  /** Refuse work for a partition this host does not hold a valid lease on (it may hold it again after the next renewal). */
  check(partition: string): void {
    if (this.owns(partition)) return;
    this.#soon();
    throw new DormantError(
      "partition-unavailable",
      `Partition ${partition} is not held by host ${this.#o.host} right now (its shard ${this.shardOf(partition)} is moving between hosts); retry in a moment.`,
      { details: { partition, shard: this.shardOf(partition) } },
    );
  }

  heldShards(): Lease[] {
    return [...this.#held].map(([shard, epoch]) => ({ shard, epoch }));
  }

  /** Renew, notice what was lost, and move toward this host's fair share. Concurrent calls coalesce into one more round. */
  tick(): Promise<void> {
    if (this.#ticking) {
      this.#again = true;
      return this.#ticking;
    }
    this.#ticking = (async () => {
      try {
        do {
          this.#again = false;
          await this.#round();
        } while (this.#again && !this.#stopped);
      } catch (error) {
        this.#emit({ type: "error", error: error as Error });
      } finally {
        this.#ticking = undefined;
        if (!this.#stopped) await this.#o.timers.arm(CLUSTER_TIMER, "tick", this.#o.clock.now() + this.#tickMs());
      }
    })();
    return this.#ticking;
  }

  /**
   * Graceful leave: hand every shard over (their partitions saved first), clear the leases
   * and the membership row, and tell the others at once rather than after the TTL.
   */
  async leave(): Promise<void> {
    this.#stopped = true;
    await this.#ticking;
    try {
      // Out of the membership first: the others' fair share grows to every shard at once, so each claims what is handed over as it comes.
      await this.#lease(`DELETE FROM ${this.#o.tables.members} WHERE host = $1`, [this.#o.host]);
      await this.#handOver([...this.#held.keys()]);
    } finally {
      this.#held.clear();
      // Whatever a failed save left behind is cleared too: its partitions restart from their last snapshot on the next owner.
      await this.#lease(
        `WITH cleared AS (UPDATE ${this.#o.tables.shards} SET owner = NULL, expires_at = NULL WHERE owner = $1 RETURNING shard)
         SELECT pg_notify($2, '') FROM (SELECT 1 FROM cleared LIMIT 1) AS any_cleared`,
        [this.#o.host, this.#channelName()],
      );
      await this.close();
    }
  }

  /** Stop heartbeating without handing anything over (the leases run out by themselves). */
  async close(): Promise<void> {
    this.#stopped = true;
    if (!this.#listener) return;
    await this.#lease(`UNLISTEN ${this.#channel()}`).catch(() => undefined);
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.release();
  }

  async members(): Promise<MemberView[]> {
    const { rows } = await this.#query<{
      host: string;
      address: string;
      admin_address: string;
      heartbeat_at: Date;
      expires_at: Date;
      alive: boolean;
      shards: string;
    }>(
      `SELECT m.host, m.address, m.admin_address, m.heartbeat_at, m.expires_at, m.expires_at > now() AS alive,
              (SELECT count(*) FROM ${this.#o.tables.shards} s WHERE s.owner = m.host AND s.expires_at > now()) AS shards
         FROM ${this.#o.tables.members} m ORDER BY m.host`,
    );
    return rows.map((r) => ({
      host: r.host,
      address: r.address,
      adminAddress: r.admin_address,
      heartbeatAt: r.heartbeat_at.getTime(),
      expiresAt: r.expires_at.getTime(),
      alive: r.alive,
      shards: Number(r.shards),
    }));
  }

  async shards(): Promise<ShardView[]> {
    const { rows } = await this.#query<{ shard: number; owner: string | null; epoch: string; expires_at: Date | null }>(
      `SELECT shard, owner, epoch, expires_at FROM ${this.#o.tables.shards} ORDER BY shard`,
    );
    return rows.map((r) => ({ shard: r.shard, owner: r.owner, epoch: Number(r.epoch), expiresAt: r.expires_at?.getTime() ?? null }));
  }

  /** The live host that holds a partition's shard, with its addresses; undefined while nobody does. */
  async ownerOf(partition: string): Promise<{ host: string; address: string; adminAddress: string } | undefined> {
    const { rows } = await this.#query<{ host: string; address: string; admin_address: string }>(
      `SELECT m.host, m.address, m.admin_address FROM ${this.#o.tables.shards} s JOIN ${this.#o.tables.members} m ON m.host = s.owner
        WHERE s.shard = $1 AND s.expires_at > now() AND m.expires_at > now()`,
      [this.shardOf(partition)],
    );
    const row = rows[0];
    return row ? { host: row.host, address: row.address, adminAddress: row.admin_address } : undefined;
  }

  async #round(): Promise<void> {
    const { host } = this.#o;
    const interval = `${this.#o.ttlMs} milliseconds`;
    // A round that only follows up a claim (a handover's notification, the next batch) soon after the last renewal goes straight to claiming: the leases are fresh.
    const claimOnly = this.#claimSoon && performance.now() - this.#renewedAt < this.#tickMs();
    this.#claimSoon = false;
    if (!claimOnly) {
      await this.#lease(
        `INSERT INTO ${this.#o.tables.members} (host, address, admin_address, started_at, heartbeat_at, expires_at)
         VALUES ($1, $2, $3, now(), now(), now() + $4::interval)
         ON CONFLICT (host) DO UPDATE SET address = $2, admin_address = $3, heartbeat_at = now(), expires_at = now() + $4::interval`,
        [host, this.#addresses.address, this.#addresses.adminAddress, interval],
      );
      const still = await this.#renew();
      // Rows this host owns but did not know of (a claim whose answer was lost): give them back.
      const unknown = [...still.keys()].filter((shard) => !this.#held.has(shard));
      if (unknown.length > 0)
        await this.#lease(`UPDATE ${this.#o.tables.shards} SET owner = NULL, expires_at = NULL WHERE owner = $1 AND shard = ANY($2)`, [host, unknown]);
    }
    if (this.#stopped) return;

    const { rows } = await this.#lease<{ alive: string }>(`SELECT count(*) AS alive FROM ${this.#o.tables.members} WHERE expires_at > now()`);
    const target = Math.ceil(this.#o.shards / Math.max(1, Number(rows[0]?.alive ?? 1)));
    if (this.#held.size > target) await this.#handOver([...this.#held.keys()].sort((a, b) => b - a).slice(0, this.#held.size - target));
    else if (this.#held.size < target) await this.#claim(Math.min(target - this.#held.size, CLAIM_SHARDS_AT_ONCE), interval);
  }

  /**
   * Extend every lease this host still owns, in one statement; shards it held that are
   * missing from the answer, or held at another epoch, were taken over: their partitions
   * are dropped unwritten. Returns what the database says this host owns.
   */
  async #renew(): Promise<Map<number, number>> {
    const began = performance.now();
    const renewed = await this.#lease<{ shard: number; epoch: string }>(
      `UPDATE ${this.#o.tables.shards} SET expires_at = now() + $2::interval WHERE owner = $1 RETURNING shard, epoch`,
      [this.#o.host, `${this.#o.ttlMs} milliseconds`],
    );
    this.#renewedAt = began;
    const still = new Map(renewed.rows.map((r) => [r.shard, Number(r.epoch)]));
    const lost = new Set([...this.#held].filter(([shard, epoch]) => still.get(shard) !== epoch).map(([shard]) => shard));
    if (lost.size > 0) {
      for (const shard of lost) this.#held.delete(shard);
      await this.#o.owner.release(lost, "lost");
      this.#emit({ type: "shards-released", shards: [...lost], how: "lost" });
    }
    return still;
  }

  async #claim(count: number, interval: string): Promise<void> {
    // Free or expired shards, skipping rows another host is claiming at this moment; random, so hosts starting together spread out.
    // `previous` is the owner whose lease ran out without a handover: work it had under way may be delivered again.
    const { rows } = await this.#lease<{ shard: number; epoch: string; previous: string | null }>(
      `WITH free AS (SELECT shard, owner AS previous FROM ${this.#o.tables.shards}
                      WHERE owner IS NULL OR expires_at IS NULL OR expires_at < now()
                      ORDER BY random() LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE ${this.#o.tables.shards} s SET owner = $1, epoch = s.epoch + 1, expires_at = now() + $2::interval
         FROM free WHERE s.shard = free.shard
       RETURNING s.shard, s.epoch, free.previous`,
      [this.#o.host, interval, count],
    );
    if (rows.length === 0) return;
    // A whole batch: there may be more, claimed in another round right after this one.
    if (rows.length === count) this.#claimSoon = this.#again = true;
    const claimed = new Set<number>();
    const takenOver = new Set<number>();
    for (const row of rows) {
      this.#held.set(row.shard, Number(row.epoch));
      claimed.add(row.shard);
      if (row.previous !== null) takenOver.add(row.shard);
    }
    try {
      await this.#o.owner.adopt(claimed, takenOver);
    } catch (error) {
      // Half-loaded shards are given back whole: another host (or this one, next round) loads them again.
      await this.#o.owner.release(claimed, "lost").catch(() => undefined);
      for (const shard of claimed) this.#held.delete(shard);
      await this.#lease(`UPDATE ${this.#o.tables.shards} SET owner = NULL, expires_at = NULL WHERE owner = $1 AND shard = ANY($2)`, [
        this.#o.host,
        [...claimed],
      ]);
      throw error;
    }
    this.#emit({ type: "shards-acquired", shards: rows.map((r) => r.shard), epochs: rows.map((r) => Number(r.epoch)) });
  }

  /**
   * Save these shards' partitions and give the shards up: those of frozen partitions only
   * together and at once (there is nothing to save), the others a few at a time, each
   * cleared and announced as soon as its own live partitions are saved, fewest first. The
   * leases are renewed all the while, so a handover longer than the TTL still writes under
   * a valid lease.
   */
  async #handOver(shards: number[]): Promise<void> {
    const live = this.#o.owner.liveByShard();
    const idle = shards.filter((shard) => !live.get(shard));
    const busy = shards.filter((shard) => live.get(shard)).sort((a, b) => live.get(a)! - live.get(b)!);
    const worker = async () => {
      for (let shard = busy.shift(); shard !== undefined; shard = busy.shift()) await this.#giveUp([shard]);
    };
    await this.#renewingWhile(
      (async () => {
        if (idle.length > 0) await this.#giveUp(idle);
        await Promise.all(Array.from({ length: Math.min(HANDOVER_SHARDS_AT_ONCE, busy.length) }, worker));
      })(),
    );
  }

  /** Save these shards' partitions, then clear their rows (at the epochs this host holds them) and tell the others, in one statement. */
  async #giveUp(shards: number[]): Promise<void> {
    // A shard lost meanwhile was dropped unwritten by the renewal that noticed.
    const leases = shards.flatMap((shard) => (this.#held.has(shard) ? [{ shard, epoch: this.#held.get(shard)! }] : []));
    if (leases.length === 0) return;
    const given = leases.map(({ shard }) => shard);
    try {
      await this.#o.owner.release(new Set(given), "handover");
    } catch (error) {
      // What could not be saved restarts from its last snapshot on the next owner; the other shards go on.
      this.#emit({ type: "error", error: error as Error });
    } finally {
      for (const shard of given) this.#held.delete(shard);
      await this.#lease(
        `WITH cleared AS (UPDATE ${this.#o.tables.shards} s SET owner = NULL, expires_at = NULL
                            FROM unnest($2::integer[], $3::bigint[]) AS l(shard, epoch)
                           WHERE s.owner = $1 AND s.shard = l.shard AND s.epoch = l.epoch RETURNING s.shard)
         SELECT pg_notify($4, '') FROM (SELECT 1 FROM cleared LIMIT 1) AS any_cleared`,
        [this.#o.host, given, leases.map(({ epoch }) => epoch), this.#channelName()],
      );
    }
    this.#emit({ type: "shards-released", shards: given, how: "handover" });
  }

  /** Renew the leases every tick until `work` is done (the timer loop may be stopped already: a host that leaves stops it first). */
  async #renewingWhile(work: Promise<unknown>): Promise<void> {
    const { clock } = this.#o;
    let done = false;
    let handle: TimerHandle | undefined;
    let renewal: Promise<unknown> = Promise.resolve();
    const next = () => {
      handle = clock.setTimeout(() => {
        renewal = this.#renew()
          .catch((error: Error) => this.#emit({ type: "error", error }))
          .finally(() => done || next());
      }, this.#tickMs());
    };
    next();
    try {
      await work;
    } finally {
      done = true;
      clock.clearTimeout(handle);
      await renewal;
    }
  }

  #valid(): boolean {
    // A margin for the clocks of this host and the database: stop trusting the lease a little before it runs out.
    return performance.now() - this.#renewedAt < this.#o.ttlMs * 0.8;
  }

  #tickMs(): number {
    return Math.min(MAX_TICK_MS, Math.floor(this.#o.ttlMs / 4));
  }

  #soon(): void {
    if (this.#stopped) return;
    if (this.#ticking) this.#again = true;
    else void this.#o.timers.arm(CLUSTER_TIMER, "tick", this.#o.clock.now());
  }

  #channelName(): string {
    return `dormant:${this.#o.schema}`;
  }

  #channel(): string {
    // Schema names are plain identifiers (store/open.ts), so the quoted channel name needs no escaping.
    return `"${this.#channelName()}"`;
  }

  #query<R extends object = Record<string, unknown>>(text: string, values?: unknown[]) {
    return this.#o.pool.query<R>(text, values);
  }

  /** Lease statements go over this host's own connection (the one that listens), never queued behind the store's traffic; one at a time. */
  #lease<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<QueryResult<R>> {
    const run = () => (this.#listener ?? this.#o.pool).query<R>(text, values);
    const result = this.#leaseQueue.then(run, run);
    this.#leaseQueue = result.catch(() => undefined);
    return result;
  }

  #emit(event: ClusterEvent): void {
    this.#o.onEvent?.(event);
  }
}
