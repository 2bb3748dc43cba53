// Shard leases on the real PostgreSQL: hosts split the shards, a silent host's shards are
// taken over after its TTL with a higher epoch, a graceful leave hands them over at once,
// and a write under a lost lease is refused by the database. Each test has its own schema.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Membership, type ShardOwner } from "../../src/cluster/membership.ts";
import { ensureClusterSchema } from "../../src/cluster/schema.ts";
import { partitionOfKey, shardOf } from "../../src/cluster/shards.ts";
import { systemClock } from "../../src/scheduler/clock.ts";
import { HeapTimerQueue } from "../../src/scheduler/heap-timer-queue.ts";
import { TimerLoop } from "../../src/scheduler/timer-loop.ts";
import { openStore, type Store } from "../../src/store/open.ts";
import { isDormantError } from "../../runtime/index.ts";

const SHARDS = 8;
const TTL = 1000;
const opened: { store: Store; timers: TimerLoop; membership: Membership }[] = [];
const schemas: string[] = [];

afterEach(async () => {
  for (const { timers, membership } of opened) {
    await membership.close();
    await timers.stop();
  }
  const first = opened[0]?.store;
  for (const schema of schemas.splice(0)) await first?.postgres?.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  for (const { store } of opened.splice(0).reverse()) await store.close();
});

/** A fake owner is the real lifecycle's stand-in here: what matters is which shards it was told it has. */
function recordingOwner(saving?: (shard: number) => Promise<void>) {
  const held = new Set<number>();
  const log: string[] = [];
  const owner: ShardOwner = {
    async adopt(shards, takenOver) {
      for (const shard of shards) held.add(shard);
      log.push(`adopt ${[...shards].join(",")}${takenOver.size > 0 ? ` taken over ${[...takenOver].join(",")}` : ""}`);
    },
    async release(shards, how) {
      if (how === "handover" && saving) for (const shard of shards) await saving(shard);
      for (const shard of shards) held.delete(shard);
      log.push(`${how} ${[...shards].join(",")}`);
    },
    // With something to save, each shard has one live partition.
    liveByShard: () => new Map(saving ? [...held].map((shard) => [shard, 1]) : []),
  };
  return { owner, held, log };
}

async function host(schema: string, name: string, fenced = false, ttl = TTL, saving?: (shard: number) => Promise<void>) {
  let membership: Membership | undefined;
  const store = await openStore({
    url: `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`,
    timeoutMs: 5000,
    ...(fenced
      ? {
          fence: (key: string) => {
            const partition = partitionOfKey(key);
            return partition === undefined ? undefined : { shard: membership!.shardOf(partition), owner: name, epoch: membership!.epochOf(partition) ?? -1 };
          },
        }
      : {}),
  });
  await ensureClusterSchema(store.postgres!.pool, schema, store.postgres!.tables, { shards: SHARDS, ttlMs: ttl });
  const timers = new TimerLoop(new HeapTimerQueue(), systemClock);
  timers.start();
  const recorded = recordingOwner(saving);
  membership = new Membership({
    pool: store.postgres!.pool,
    schema,
    tables: store.postgres!.tables,
    host: name,
    shards: SHARDS,
    ttlMs: ttl,
    owner: recorded.owner,
    timers,
    clock: systemClock,
  });
  opened.push({ store, timers, membership });
  return { store, timers, membership, ...recorded };
}

function newSchema(): string {
  const schema = `dormant_test_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  return schema;
}

async function until(what: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const addresses = (name: string) => ({ address: `http://${name}.invalid`, adminAddress: `http://${name}.invalid:1` });

describe("cluster membership", () => {
  it("a lone host takes every shard, each with a first epoch", async () => {
    const schema = newSchema();
    const a = await host(schema, "a");
    await a.membership.start(addresses("a"));
    expect(a.held.size).toBe(SHARDS);
    expect(a.membership.heldShards().every((lease) => lease.epoch === 1)).toBe(true);
  });

  it("two hosts end up with half of the shards each, and no shard is held twice", async () => {
    const schema = newSchema();
    const a = await host(schema, "a");
    const b = await host(schema, "b");
    await a.membership.start(addresses("a"));
    await b.membership.start(addresses("b"));
    await until(() => a.held.size === SHARDS / 2 && b.held.size === SHARDS / 2);
    expect([...a.held].filter((shard) => b.held.has(shard))).toEqual([]);
    const views = await a.membership.shards();
    expect(views.filter((view) => view.owner === "a").length + views.filter((view) => view.owner === "b").length).toBe(SHARDS);
  });

  it("a host that stops renewing loses its shards to the other after its TTL, at a higher epoch", async () => {
    const schema = newSchema();
    const a = await host(schema, "a");
    const b = await host(schema, "b");
    await a.membership.start(addresses("a"));
    await b.membership.start(addresses("b"));
    await until(() => a.held.size === SHARDS / 2 && b.held.size === SHARDS / 2);
    const before = new Map(b.membership.heldShards().map((lease) => [lease.shard, lease.epoch]));
    await b.membership.close(); // silent, as after a SIGKILL: no handover
    await b.timers.stop();
    const started = Date.now();
    await until(() => a.held.size === SHARDS);
    expect(Date.now() - started).toBeGreaterThanOrEqual(TTL / 2);
    for (const lease of a.membership.heldShards()) if (before.has(lease.shard)) expect(lease.epoch).toBe(before.get(lease.shard)! + 1);
    // Taken over, not handed over: a says so, because what b had under way may come again.
    expect(a.log.some((line) => line.includes("taken over"))).toBe(true);
  });

  it("a graceful leave hands every shard over at once, saving first", async () => {
    // A TTL far beyond what a handover takes, even on a busy machine: taken well before it, the shards were handed over, not timed out.
    const ttl = 30_000;
    const schema = newSchema();
    const a = await host(schema, "a", false, ttl);
    const b = await host(schema, "b", false, ttl);
    await a.membership.start(addresses("a"));
    await b.membership.start(addresses("b"));
    await until(() => a.held.size === SHARDS / 2 && b.held.size === SHARDS / 2);
    const started = Date.now();
    await b.membership.leave();
    expect(b.log.at(-1)).toMatch(/^handover /);
    await until(() => a.held.size === SHARDS);
    expect(Date.now() - started).toBeLessThan(ttl / 2);
    expect(a.log.filter((line) => line.includes("taken over"))).toEqual([]);
  });

  it("a handover that takes longer than the TTL still saves every shard under its lease", async () => {
    const schema = newSchema();
    // One partition per shard, each taking a TTL to save: the handover outlasts the TTL however many shards go at once.
    const ids = new Map<number, string>();
    for (let n = 0; ids.size < SHARDS; n++) if (!ids.has(shardOf(`p_slow-${n}`, SHARDS))) ids.set(shardOf(`p_slow-${n}`, SHARDS), `p_slow-${n}`);
    const saved: string[] = [];
    const a = await host(schema, "a", true, TTL, async (shard) => {
      await new Promise((resolve) => setTimeout(resolve, TTL));
      await a.store.partitions.setItem(ids.get(shard)!, { saved: true });
      saved.push(ids.get(shard)!);
    });
    await a.membership.start(addresses("a"));
    expect(a.held.size).toBe(SHARDS);
    const started = Date.now();
    await a.membership.leave();
    expect(Date.now() - started).toBeGreaterThan(TTL);
    expect(saved.sort()).toEqual([...ids.values()].sort());
    expect(a.log.filter((line) => line.startsWith("handover"))).toHaveLength(SHARDS);
    const views = await a.membership.shards();
    expect(views.every((view) => view.owner === null)).toBe(true);
  });

  it("a write under a lease another host has taken is refused by the database, and the value stays", async () => {
    const schema = newSchema();
    const a = await host(schema, "a", true);
    await a.membership.start(addresses("a"));
    const partition = "p_cluster-test";
    await a.store.partitions.setItem(partition, { version: 1 });
    // Another host takes the shard behind a's back (a's lease is still valid on a's own clock).
    const shard = shardOf(partition, SHARDS);
    await a.store.postgres!.pool.query(
      `UPDATE "${schema}".shards SET owner = 'z', epoch = epoch + 1, expires_at = now() + interval '1 hour' WHERE shard = $1`,
      [shard],
    );
    const refused = await a.store.partitions.setItem(partition, { version: 2 }).catch((error: unknown) => error);
    expect(isDormantError(refused, "lease-lost")).toBe(true);
    expect(await a.store.partitions.getItem(partition)).toEqual({ version: 1 });
    // Its next renewal tells a which shard it lost, and it lets the shard's partitions go unwritten.
    await a.membership.tick();
    expect(a.log).toContain(`lost ${shard}`);
    expect(a.membership.owns(partition)).toBe(false);
  });

  it("a host started with another shard count than its cluster's is refused, naming both", async () => {
    const schema = newSchema();
    await host(schema, "a");
    const store = await openStore({ url: `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`, timeoutMs: 5000 });
    try {
      const refused = await ensureClusterSchema(store.postgres!.pool, schema, store.postgres!.tables, { shards: SHARDS * 2, ttlMs: TTL }).catch(
        (error: unknown) => error,
      );
      expect(isDormantError(refused, "cluster-config")).toBe(true);
      expect((refused as Error).message).toContain(`${SHARDS} shards`);
      expect((refused as Error).message).toContain(`--cluster-shards ${SHARDS}`);
    } finally {
      await store.close();
    }
  });
});
