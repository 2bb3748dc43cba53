// A cluster of real `dormant serve` processes on the real PostgreSQL: partitions spread
// over the hosts, pushes sent to any host are answered by the owner, a SIGKILLed host's
// partitions resume elsewhere within the TTL, a paused host's writes are refused by epoch
// and its counters never go backwards, a graceful stop hands over at once, and bad
// configuration is refused with its cause. Each test has its own schema, dropped after.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { adminApi, spawnServe, type ServeProcess } from "../support/serve-process.ts";
import { inParallel } from "../support/in-parallel.ts";

const TOKEN = generateToken();
const TTL_MS = 3000;
const SHARDS = 12;
const admin = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres", max: 2 });
const children: ServeProcess[] = [];
const schemas: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.signalCode === "SIGSTOP") child.process.kill("SIGCONT");
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
    await child.exit;
  }
  for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});
afterAll(() => admin.end());

function clusterUrl(): string {
  const schema = `dormant_cluster_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  return `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`;
}

async function startHosts(url: string, count: number, ttlMs = TTL_MS): Promise<ServeProcess[]> {
  const hosts: ServeProcess[] = [];
  for (let i = 0; i < count; i++) {
    const dataDir = await mkdtemp(join(tmpdir(), "dormant-cluster-"));
    const host = await spawnServe(dataDir, TOKEN, ["--cluster", url, "--cluster-ttl", String(ttlMs), "--cluster-shards", String(SHARDS)]);
    children.push(host);
    hosts.push(host);
  }
  // Every host holds its share before the test goes on.
  await expect.poll(async () => shareOf(hosts), { timeout: 20_000, interval: 100 }).toEqual(hosts.map(() => true));
  return hosts;
}

async function shareOf(hosts: ServeProcess[]): Promise<boolean[]> {
  const { cluster } = await api(hosts[0]!, "GET", "/api/cluster");
  const fair = Math.ceil(SHARDS / hosts.length);
  const held = (cluster.members as { alive: boolean; shards: number }[]).filter((m) => m.alive).map((m) => m.shards);
  return hosts.map((_, i) => held.length === hosts.length && (held[i] ?? 0) >= fair - 1 && held.reduce((a, b) => a + b, 0) === SHARDS);
}

const api = (serve: ServeProcess, method: string, path: string, body?: unknown, type?: string) => adminApi(serve, TOKEN, method, path, body, type);

/** Deploy the counter as `count` partitions (per-activation unless told), created over the hosts in turn; returns each one's push path. */
async function counters(hosts: ServeProcess[], count: number, durability = "per-activation"): Promise<{ id: string; path: string }[]> {
  const { digest } = await api(hosts[0]!, "POST", "/api/components", await readFile(inject("guests")["counter-qjs"]), "application/wasm");
  return inParallel(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) => {
      // Whichever host is asked creates the partition, in a shard it holds; the answer lists the tasks its activation registered.
      const { id, tasks } = await api(hosts[i % hosts.length]!, "POST", "/api/partitions", { name: `counter-${i}`, component: digest, durability });
      return { id: id as string, path: tasks.find((t: { name: string }) => t.name === "inbox").pushUrl as string };
    },
  );
}

/** Push once through `via`; the counter's count after it, or the status when refused. */
interface Reply {
  count: number;
  reminder?: string;
}

async function push(via: ServeProcess, path: string, body = "x"): Promise<{ status: number; reply?: Reply }> {
  const response = await fetch(`${via.pushUrl}${path}`, { method: "POST", body });
  if (response.status !== 200) {
    if (process.env.DEBUG_CLUSTER) console.log(response.status, await response.text());
    return { status: response.status };
  }
  return { status: 200, reply: (await response.json()) as Reply };
}

/** Push until the push is answered (while a shard moves the answer is 503 with Retry-After); the counter's count after it. */
async function pushAnswered(via: ServeProcess, path: string, timeoutMs: number): Promise<number> {
  return (await answered(via, path, "x", timeoutMs)).count;
}

async function answered(via: ServeProcess, path: string, body: string, timeoutMs: number): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await push(via, path, body).catch(() => ({ status: 0 }) as { status: number; reply?: Reply });
    if (answer.status === 200) return answer.reply!;
    expect([0, 502, 503]).toContain(answer.status);
    if (Date.now() > deadline) throw new Error(`${path} via ${via.pushUrl} not answered within ${timeoutMs} ms (last ${answer.status})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const events = (serve: ServeProcess) =>
  serve.stdout
    .join("")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { event: string; partition?: string; how?: string; shards?: number[]; task?: string; source?: string; ok?: boolean });

/** Each host's successful timer deliveries, as `<partition>/<task>`, one entry per delivery. */
const timerDeliveries = (hosts: ServeProcess[]) =>
  hosts.flatMap((serve) =>
    events(serve)
      .filter((e) => e.event === "delivery" && e.source === "timer" && e.ok)
      .map((e) => `${e.partition}/${e.task}`),
  );

const random = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

describe("a cluster of dormant serve processes", { timeout: 120_000 }, () => {
  it("spreads 300 counters over three hosts: pushes sent to random hosts are all answered, and every push and every due timer counts exactly once", async () => {
    const hosts = await startHosts(clusterUrl(), 3);
    const made = await counters(hosts, 300, "on-idle");
    const { cluster } = await api(hosts[1]!, "GET", "/api/cluster");
    expect(cluster.members).toHaveLength(3);
    const { partitions } = await api(random(hosts), "GET", "/api/cluster/partitions");
    expect(new Set((partitions as { id: string }[]).map(({ id }) => id))).toEqual(new Set(made.map(({ id }) => id)));
    expect(new Set((partitions as { host: string }[]).map(({ host }) => host)).size).toBe(3);
    // Each counter asks for a one-shot timer, due over the next few seconds, while the pushes below go on.
    const reminders = await inParallel(
      made,
      32,
      async ({ path }, i) => (await answered(random(hosts), `${path}/remind`, String(1000 + (i % 30) * 100), 30_000)).reminder,
    );
    expect(new Set(reminders)).toEqual(new Set(["remind-1"]));
    // A push each, to a random host; a client retries a 503 (a lease renewed late on a busy machine), as Retry-After asks.
    // The timers fire meanwhile: a count is the push, and the timer if it came first (and a heartbeat, on a slow run).
    const first = await inParallel(made, 32, ({ path }) => pushAnswered(random(hosts), path, 30_000));
    expect(first.filter((count) => count < 1 || count > 3)).toEqual([]);
    // Every counter's timer is delivered, once, by one host.
    const expected = made.map(({ id }) => `${id}/remind-1`);
    await expect.poll(() => expected.filter((key) => !timerDeliveries(hosts).includes(key)), { timeout: 30_000, interval: 250 }).toEqual([]);
    const delivered = timerDeliveries(hosts);
    expect(delivered.filter((key) => key.endsWith("/remind-1")).sort()).toEqual([...expected].sort());
    // A second push, again to a random host, sees exactly the first, the timer and itself (and a heartbeat, every 60 s, if one came due on a slow run).
    const last = await inParallel(made, 32, ({ path }) => pushAnswered(random(hosts), path, 30_000));
    const beyond = last.map((count) => count - (1 + 1 + 1));
    expect(beyond.filter((extra) => extra !== 0 && extra !== 1)).toEqual([]);
    const beat = made.filter((_, i) => beyond[i] === 1).map(({ id }) => `${id}/heartbeat`);
    await expect.poll(() => beat.filter((key) => !timerDeliveries(hosts).includes(key)), { timeout: 10_000, interval: 250 }).toEqual([]);
    const heartbeats = timerDeliveries(hosts).filter((key) => key.endsWith("/heartbeat"));
    expect(new Set(heartbeats).size).toBe(heartbeats.length);
  });

  it("resumes a SIGKILLed host's partitions on the others within the TTL plus a second, losing no count", async () => {
    const hosts = await startHosts(clusterUrl(), 3);
    const made = await counters(hosts, 24);
    for (const { path } of made) expect(await pushAnswered(hosts[0]!, path, 30_000)).toBe(1);
    const { cluster } = await api(hosts[0]!, "GET", "/api/cluster");
    const victim = hosts[2]!;
    const victimHost = (cluster.members as { host: string; adminAddress: string }[]).find((m) => m.adminAddress === victim.adminUrl)!.host;
    const owners = await Promise.all(made.map(async ({ id }) => (await api(hosts[0]!, "GET", `/api/cluster/owner/${id}`)).host as string));
    const orphaned = made.filter((_, i) => owners[i] === victimHost);
    expect(orphaned.length).toBeGreaterThan(0);

    victim.process.kill("SIGKILL");
    await victim.exit;
    const killedAt = Date.now();
    const first = await pushAnswered(hosts[0]!, orphaned[0]!.path, TTL_MS + 10_000);
    const failoverMs = Date.now() - killedAt;
    console.log(`cluster failover: first push answered on a new owner ${failoverMs} ms after SIGKILL (TTL ${TTL_MS} ms)`);
    expect(first).toBe(2);
    // Not before the TTL ran out (the host might only have been slow), and within TTL + 1 s with a margin for a busy machine.
    expect(failoverMs).toBeGreaterThanOrEqual(TTL_MS * 0.5);
    expect(failoverMs).toBeLessThan(TTL_MS + 1000 + 4000);
    for (const { path } of orphaned.slice(1)) expect(await pushAnswered(hosts[1]!, path, 5000)).toBe(2);
  });

  it("delivers every async push a host acknowledged before it was SIGKILLed, from the host that takes over", async () => {
    const hosts = await startHosts(clusterUrl(), 2);
    const made = await counters(hosts, 12);
    const victim = hosts[1]!;
    const owners = await Promise.all(made.map(async ({ id }) => (await api(victim, "GET", `/api/cluster/owner/${id}`)).address as string));
    const orphaned = made.filter((_, i) => owners[i] === victim.pushUrl);
    expect(orphaned.length).toBeGreaterThan(0);
    // Async pushes to the victim's own partitions, through the victim, until it is killed in the middle of them.
    const accepted = new Map(orphaned.map(({ path }) => [path, 0]));
    const inFlight: Promise<void>[] = [];
    for (let n = 0; n < 30; n++) {
      for (const { path } of orphaned) {
        inFlight.push(
          fetch(`${victim.pushUrl}${path}`, { method: "POST", headers: { prefer: "respond-async" }, body: `a${n}` })
            .then((response) => void (response.status === 202 && accepted.set(path, accepted.get(path)! + 1)))
            .catch(() => undefined), // cut off by the kill: never acknowledged
        );
      }
      if (n === 20) victim.process.kill("SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(inFlight);
    await victim.exit;
    expect([...accepted.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    for (const { path } of orphaned) {
      // The survivor delivers what was stored (at least once): the count a later push sees includes every acknowledged one.
      await expect
        .poll(async () => pushAnswered(hosts[0]!, path, TTL_MS + 10_000), { timeout: 30_000, interval: 500 })
        .toBeGreaterThanOrEqual(accepted.get(path)! + 1);
    }
  });

  it("refuses a paused host's writes by epoch once its shards were taken, and no counter ever goes backwards", async () => {
    const hosts = await startHosts(clusterUrl(), 2);
    const made = await counters(hosts, 16);
    const counts = new Map(made.map(({ path }) => [path, 0]));
    const pushAll = async (via: ServeProcess) => {
      for (const { path } of made) {
        const count = await pushAnswered(via, path, TTL_MS + 10_000);
        expect(count).toBe(counts.get(path)! + 1);
        counts.set(path, count);
      }
    };
    await pushAll(hosts[0]!);
    const paused = hosts[1]!;
    paused.process.kill("SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, TTL_MS + 1500));
    await pushAll(hosts[0]!); // the other host has taken every shard over
    paused.process.kill("SIGCONT");
    // Through the woken host, too: it must not answer from the state it held before the pause.
    await pushAll(paused);
    await pushAll(hosts[0]!);
    await expect.poll(() => events(paused).some((e) => e.event === "shards-released" && e.how === "lost"), { timeout: 10_000 }).toBe(true);
  });

  it("hands a gracefully stopped host's partitions over at once, without waiting for its lease to run out", async () => {
    // A TTL far longer than the handover may take: answered well before it, the partitions were handed over, not timed out.
    const ttlMs = 30_000;
    const hosts = await startHosts(clusterUrl(), 2, ttlMs);
    const made = await counters(hosts, 16);
    for (const { path } of made) expect(await pushAnswered(hosts[0]!, path, 30_000)).toBe(1);
    const leaving = hosts[1]!;
    leaving.process.kill("SIGTERM");
    expect(await leaving.exit).toBe(0);
    const stoppedAt = Date.now();
    for (const { path } of made) expect(await pushAnswered(hosts[0]!, path, ttlMs)).toBe(2);
    const handoverMs = Date.now() - stoppedAt;
    console.log(`cluster handover: all 16 partitions answered on the remaining host ${handoverMs} ms after the graceful stop`);
    expect(handoverMs).toBeLessThan(ttlMs / 2);
  });
});

describe("the admin API of a cluster", { timeout: 60_000 }, () => {
  it("acts on a partition another host holds when it is named by its name", async () => {
    const hosts = await startHosts(clusterUrl(), 2);
    // Created by the second host, in a shard it holds.
    const [made] = await counters([hosts[1]!], 1);
    expect((await api(hosts[0]!, "GET", "/api/partitions/counter-0")).id).toBe(made!.id);
    const { tasks } = await api(hosts[0]!, "GET", "/api/tasks?partition=counter-0");
    expect(tasks.map((task: { name: string }) => task.name).sort()).toEqual(["heartbeat", "inbox"]);
  });

  it("refuses a name that partitions on several other hosts share, listing their ids", async () => {
    const hosts = await startHosts(clusterUrl(), 3);
    // Names are unique per host: the second and the third may each create a `counter-0`.
    const ids = await Promise.all(hosts.slice(1).map(async (serve) => (await counters([serve], 1))[0]!.id));
    const response = await fetch(`${hosts[0]!.adminUrl}/api/partitions/counter-0`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { message: string } };
    for (const id of ids) expect(error.message).toContain(id);
  });
});

describe("cluster configuration", { timeout: 60_000 }, () => {
  const refused = async (flags: string[]) => {
    const dataDir = await mkdtemp(join(tmpdir(), "dormant-cluster-bad-"));
    const started = spawnServe(dataDir, TOKEN, flags);
    const error = await started.then(
      (child) => {
        children.push(child);
        throw new Error("it started");
      },
      (error: Error) => error,
    );
    return error.message;
  };

  it("refuses an unreachable database, naming where it looked", async () => {
    expect(await refused(["--cluster", "postgres://postgres@127.0.0.1:1/postgres"])).toMatch(/127\.0\.0\.1:1/);
  });

  it("refuses an unknown database, naming it", async () => {
    expect(await refused(["--cluster", "postgres://postgres@127.0.0.1:5432/no_such_db_here"])).toMatch(/no_such_db_here/);
  });

  it("refuses a host whose shard count differs from its cluster's, saying which to use", async () => {
    const url = clusterUrl();
    await startHosts(url, 1);
    const message = await refused(["--cluster", url, "--cluster-ttl", String(TTL_MS), "--cluster-shards", String(SHARDS + 1)]);
    expect(message).toContain(`--cluster-shards ${SHARDS}`);
  });

  it("refuses a store beside the cluster's database", async () => {
    expect(await refused(["--cluster", clusterUrl(), "--store", "redis://127.0.0.1:6379"])).toMatch(/without --store/);
  });
});
