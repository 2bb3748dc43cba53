// Timers in a cluster: three hosts in this process on one PostgreSQL schema, each holding
// its shards' timers in its own loop. Every due occurrence is delivered by exactly one host,
// once; after a host stops without handing over, the others deliver what came due on its
// shards (late, by the misfire policy) and nothing registered is lost.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { HostEvent } from "../../src/events.ts";
import { startHost, type Host } from "../../src/host.ts";
import { guestFile } from "../support/guests.ts";
import { event } from "../support/runtime.ts";

const SHARDS = 12;
const TTL_MS = 3000;
const admin = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres", max: 2 });
const hosts: Host[] = [];
const schemas: string[] = [];

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.close()));
  for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});
afterAll(() => admin.end());

interface Delivered {
  host: number;
  partition: string;
  name: string;
  scheduledAt: number;
  firedAt: number;
  ok: boolean;
}

async function cluster(count: number) {
  const schema = `dormant_timers_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  const url = `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`;
  const delivered: Delivered[] = [];
  const started: Host[] = [];
  for (let i = 0; i < count; i++) {
    const dataDir = await mkdtemp(join(tmpdir(), "dormant-cluster-timers-"));
    const onEvent = (e: HostEvent) => {
      if (e.type === "delivered" && e.kind === "timer")
        delivered.push({ host: i, partition: e.partition, name: e.name, scheduledAt: e.scheduledAt, firedAt: e.firedAt, ok: e.outcome.ok });
    };
    const host = await startHost({ dataDir, executors: 1, cluster: { url, shards: SHARDS, ttlMs: TTL_MS, host: `host-${i}` }, onEvent });
    hosts.push(host);
    started.push(host);
    await host.cluster!.join({ address: `http://host-${i}.invalid`, adminAddress: `http://host-${i}.invalid:1` });
  }
  // Each holds its share before the test goes on.
  const fair = Math.ceil(SHARDS / count);
  await expect
    .poll(() => started.map((host) => host.cluster!.membership.heldShards().length), { timeout: 20_000, interval: 100 })
    .toSatisfy((held: number[]) => held.every((n) => n >= fair - 1) && held.reduce((a, b) => a + b, 0) === SHARDS);
  return { hosts: started, delivered };
}

/** The host holding a partition now. */
const ownerOf = (all: Host[], partition: string) => all.find((host) => host.partitions.has(partition))!;

async function register(all: Host[], partition: string, specs: object[]): Promise<void> {
  const outcome = await ownerOf(all, partition).partitions.deliver(partition, event("register", JSON.stringify(specs)));
  expect(outcome.ok).toBe(true);
}

describe("timers in a cluster", { timeout: 120_000 }, () => {
  it("delivers every due occurrence once, each by the host that holds its partition", async () => {
    const { hosts: all, delivered } = await cluster(3);
    const component = (await all[0]!.components.add(await readFile(guestFile("recorder", { engine: "quickjs" })))).digest;
    const partitions: string[] = [];
    for (let i = 0; i < 24; i++) partitions.push((await all[i % 3]!.partitions.create({ name: `r-${i}`, component })).id);
    for (const partition of partitions)
      await register(all, partition, [
        { name: "soon", after: 1000 },
        { name: "later", after: 2000 },
      ]);
    await expect.poll(() => delivered.filter((d) => d.ok).length, { timeout: 30_000, interval: 100 }).toBe(partitions.length * 2);
    // Once each: no (partition, task, due time) twice, and each by its partition's owner.
    const keys = delivered.map((d) => `${d.partition}/${d.name}/${d.scheduledAt}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const d of delivered) expect(all[d.host]!.partitions.has(d.partition)).toBe(true);
    expect(new Set(delivered.map((d) => d.host)).size).toBe(3);
  });

  it("delivers what came due on a silent host's shards from the hosts that take them over, losing no registration", async () => {
    const { hosts: all, delivered } = await cluster(2);
    const component = (await all[0]!.components.add(await readFile(guestFile("recorder", { engine: "quickjs" })))).digest;
    const partitions: string[] = [];
    for (let i = 0; i < 12; i++) partitions.push((await all[i % 2]!.partitions.create({ name: `r-${i}`, component, durability: "per-activation" })).id);
    // Due after the silent host's lease has lapsed on its own clock (0.8 of the TTL): it may not deliver them itself.
    for (const partition of partitions) await register(all, partition, [{ name: "once", after: TTL_MS + 2000 }]);
    const silent = all[1]!;
    const orphaned = partitions.filter((partition) => silent.partitions.has(partition));
    expect(orphaned.length).toBeGreaterThan(0);
    // Silent, as if paused or cut off: its membership stops renewing and nothing is handed over.
    await silent.cluster!.membership.close();
    const silentAt = Date.now();
    await expect.poll(() => orphaned.every((partition) => all[0]!.partitions.has(partition)), { timeout: TTL_MS + 10_000, interval: 100 }).toBe(true);
    await expect
      .poll(() => partitions.every((p) => delivered.some((d) => d.ok && d.partition === p && d.name === "once")), { timeout: 30_000, interval: 100 })
      .toBe(true);
    // Once each; the silent host delivered only while its lease was still valid on its own clock, the rest came from the taker.
    for (const partition of partitions) expect(delivered.filter((d) => d.ok && d.partition === partition)).toHaveLength(1);
    for (const d of delivered.filter((d) => d.ok && d.host === 1)) expect(d.firedAt).toBeLessThan(silentAt + TTL_MS * 0.8);
    expect(delivered.some((d) => d.ok && d.host === 0 && orphaned.includes(d.partition))).toBe(true);
  });
});
