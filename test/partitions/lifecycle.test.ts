import { afterEach, describe, expect, it, vi } from "vitest";
import type { CallOutcome } from "../../runtime/executor/protocol.ts";
import { bodyText, event } from "../support/runtime.ts";
import { JS_ENGINES } from "../support/guests.ts";
import { crash as crashHost, startTestHost, type TestHost } from "../support/host.ts";

// The suite runs 100 freeze cycles per guest; `npm run soak` (DORMANT_SOAK=1) runs 1,000.
const CYCLES = process.env.DORMANT_SOAK ? 1_000 : 100;

const hosts: TestHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.close()));
});

async function host(options: Parameters<typeof startTestHost>[0] = {}): Promise<TestHost> {
  const started = await startTestHost(options);
  hosts.push(started);
  return started;
}

async function crash(h: TestHost): Promise<void> {
  hosts.splice(hosts.indexOf(h), 1);
  await crashHost(h);
}

function reply(outcome: CallOutcome): string {
  if (!outcome.ok) throw new Error(outcome.error);
  return bodyText(outcome.reply?.body);
}

async function countOf(h: TestHost, id: string): Promise<number> {
  return (JSON.parse(reply(await h.partitions.deliver(id, event("get")))) as { count: number }).count;
}

describe("freeze and rehydrate", () => {
  // QuickJS only: the default JS engine, and fast enough for 1,000 cycles in the suite; both
  // engines run the shorter cycle test in the matrix below.
  it("keeps a QuickJS counter exact across 1,000 freeze/rehydrate cycles", async () => {
    const h = await host();
    const { id } = await h.partitions.create({ name: "c", component: await h.deploy("counter", { engine: "quickjs" }) });
    for (let i = 1; i <= 1000; i++) {
      await h.partitions.deliver(id, event("increment", String(i)));
      await h.partitions.freeze(id);
      expect(h.partitions.stateOf(id)).toBe("frozen");
    }
    expect(await countOf(h, id)).toBe((1000 * 1001) / 2);
    expect(h.events.filter((e) => e.type === "activated" && e.kind === "rehydrated")).toHaveLength(1000);
  }, 120_000);

  it(`keeps a WAT guest's global and memory exact across ${CYCLES} cycles`, { timeout: CYCLES * 240 }, async () => {
    const h = await host();
    const { id } = await h.partitions.create({ name: "w", component: await h.deploy("wat") });
    for (let i = 1; i <= CYCLES; i++) {
      expect(reply(await h.partitions.deliver(id, event("tick")))).toBe(String(i));
      await h.partitions.freeze(id);
    }
  });
});

describe.each(JS_ENGINES)("a JS guest on %s", (engine) => {
  const deploy = (h: TestHost) => h.deploy("counter", { engine });
  /** A live counter partition whose step is under way: it runs a long event (`busy`). */
  const busyPartition = async (h: TestHost) => {
    const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
    await h.partitions.activate(id);
    const busy = h.partitions.deliver(id, event("spin", "1000000"));
    await vi.waitUntil(() => h.partitions.stateOf(id) === "active", { interval: 1, timeout: 10_000 });
    return { id, busy };
  };

  describe("freeze and rehydrate", () => {
    it("keeps a counter exact across 50 freeze/rehydrate cycles", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      for (let i = 1; i <= 50; i++) {
        await h.partitions.deliver(id, event("increment", String(i)));
        await h.partitions.freeze(id);
      }
      expect(await countOf(h, id)).toBe((50 * 51) / 2);
      expect(h.events.filter((e) => e.type === "activated" && e.kind === "rehydrated")).toHaveLength(50);
    });

    it("lets a guest log before and after a freeze", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      await h.partitions.deliver(id, event("increment"));
      await h.partitions.freeze(id);
      await h.partitions.deliver(id, event("increment"));
      await h.partitions.freeze(id);
      await h.partitions.deliver(id, event("increment"));
      expect(h.logs.filter((l) => l.partition === id).map((l) => l.message)).toEqual([
        "counter activated (fresh), count=0",
        "counter activated (restored), count=1",
        "counter activated (restored), count=2",
      ]);
    });

    it("never lets two partitions of one component see each other's state, across freezes", async () => {
      const h = await host();
      const component = await deploy(h);
      const a = (await h.partitions.create({ name: "a", component })).id;
      const b = (await h.partitions.create({ name: "b", component })).id;
      for (let i = 0; i < 5; i++) {
        await h.partitions.deliver(a, event("increment", "10"));
        await h.partitions.deliver(b, event("increment", "1"));
        await h.partitions.freeze(i % 2 ? a : b);
      }
      expect(await countOf(h, a)).toBe(50);
      expect(await countOf(h, b)).toBe(5);
    });

    it("stores a counter's snapshot as a compressed delta under 200 KB", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      await h.partitions.deliver(id, event("increment"));
      await h.partitions.freeze(id);
      const frozen = h.events.find((e) => e.type === "frozen");
      expect(frozen?.type === "frozen" && frozen.bytes).toBeLessThan(200_000);
    });
  });

  describe("lifecycle", () => {
    it("coalesces concurrent activations of one partition", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      const kinds = await Promise.all([1, 2, 3, 4, 5].map(() => h.partitions.activate(id)));
      expect(kinds.sort()).toEqual(["fresh", "warm", "warm", "warm", "warm"]);
      expect(h.events.filter((e) => e.type === "activated")).toHaveLength(1);
    });

    it("runs one event at a time per partition", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      const results = await Promise.all(Array.from({ length: 20 }, () => h.partitions.deliver(id, event("push"))));
      const counts = results.map((r) => (JSON.parse(reply(r)) as { count: number }).count);
      expect(counts).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it("hands events queued behind a busy partition over together, each seeing the tasks the ones before it registered", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      await h.partitions.activate(id);
      const outcomes = await Promise.all(["a", "b", "c"].map((name) => h.partitions.deliver(id, event("register", JSON.stringify({ name, entry: "tick" })))));
      const seen = outcomes.map((outcome) => (JSON.parse(reply(outcome)) as { names: string[] }).names.sort());
      expect(seen).toEqual([
        ["a", "heartbeat", "inbox"],
        ["a", "b", "heartbeat", "inbox"],
        ["a", "b", "c", "heartbeat", "inbox"],
      ]);
      expect(h.registry.tasksOf(id).map((task) => task.name)).toEqual(expect.arrayContaining(["a", "b", "c"]));
    });

    it("answers an event's caller once the events that arrived behind it are on their way to the executor", async () => {
      const h = await host();
      const { id, busy: first } = await busyPartition(h);
      const second = h.partitions.deliver(id, event("push"));
      await first;
      // The executor already has the second event: the partition is busy with it, not idle.
      expect(h.partitions.stateOf(id)).toBe("active");
      expect(JSON.parse(reply(await second))).toMatchObject({ count: 1 });
      expect(h.partitions.stateOf(id)).toBe("idle");
    });

    it("keeps an event that came after a freeze was asked for behind that freeze, and behind the events before it", async () => {
      const h = await host();
      const { id, busy } = await busyPartition(h);
      const before = h.partitions.deliver(id, event("push"));
      const frozen = h.partitions.freeze(id);
      const after = h.partitions.deliver(id, event("push"));
      await Promise.all([busy, frozen]);
      expect(JSON.parse(reply(await before))).toMatchObject({ count: 1 });
      expect(JSON.parse(reply(await after))).toMatchObject({ count: 2 });
      // The second push woke the partition the freeze had put to rest.
      expect(h.events.filter((e) => e.type === "activated").map((e) => e.type === "activated" && e.kind)).toEqual(["fresh", "rehydrated"]);
    });

    it("fails only the runaway event of those queued together, and delivers the others again from the last snapshot", async () => {
      const h = await host({ partitionLimits: { cpuDeadlineMs: 500 } });
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      await h.partitions.deliver(id, event("increment"));
      await h.partitions.freeze(id);
      await h.partitions.activate(id);
      const [before, runaway, after] = await Promise.allSettled([
        h.partitions.deliver(id, event("increment")),
        h.partitions.deliver(id, event("spin", "1000000000000")),
        h.partitions.deliver(id, event("increment")),
      ]);
      expect(runaway).toMatchObject({ status: "rejected", reason: { code: "guest-deadline", message: expect.stringMatching(/deadline in task spin/) } });
      expect(before).toMatchObject({ status: "fulfilled", value: { ok: true } });
      expect(after).toMatchObject({ status: "fulfilled", value: { ok: true } });
      expect(await countOf(h, id)).toBe(3);
    });

    it("commits a per-activation partition's snapshot with every event, so a host crash loses nothing", async () => {
      const first = await host();
      const { id } = await first.partitions.create({ name: "c", component: await deploy(first), durability: "per-activation" });
      for (let i = 0; i < 3; i++) await first.partitions.deliver(id, event("increment"));
      await crash(first);
      const second = await host({ dataDir: first.dataDir });
      expect(await countOf(second, id)).toBe(3);
    });

    it("loses an on-idle partition's unfrozen events in a crash but keeps its last freeze", async () => {
      const first = await host();
      const { id } = await first.partitions.create({ name: "c", component: await deploy(first) });
      await first.partitions.deliver(id, event("increment"));
      await first.partitions.freeze(id);
      await first.partitions.deliver(id, event("increment"));
      await crash(first);
      const second = await host({ dataDir: first.dataDir });
      expect(await countOf(second, id)).toBe(1);
    });

    it("discards the registrations of a call that fails", async () => {
      const h = await host();
      const { id } = await h.partitions.create({ name: "c", component: await deploy(h) });
      await h.partitions.deliver(id, event("register", JSON.stringify({ name: "kept", entry: "tick" })));
      const names = () =>
        h.registry
          .tasksOf(id)
          .map((task) => task.name)
          .sort();
      expect(names()).toEqual(["heartbeat", "inbox", "kept"]);
      const failed = await h.partitions.deliver(id, event("fail"));
      expect(failed.ok).toBe(false);
      expect(names()).toEqual(["heartbeat", "inbox", "kept"]);
    });
  });
});

describe("lifecycle", () => {
  it("freezes a partition once it has been idle for the idle timeout", async () => {
    const h = await host({ idleTimeoutMs: 10_000 });
    const { id } = await h.partitions.create({ name: "w", component: await h.deploy("wat") });
    await h.partitions.deliver(id, event("tick"));
    const t0 = h.now.value;
    await h.tick(t0 + 9_999);
    expect(h.partitions.stateOf(id)).toBe("idle");
    await h.tick(t0 + 10_000);
    expect(h.partitions.stateOf(id)).toBe("frozen");
  });

  it("freezes the least recently used partitions when more than the cap are live", async () => {
    const h = await host({ maxLive: 2 });
    const component = await h.deploy("wat");
    const ids: string[] = [];
    for (const name of ["one", "two", "three"]) {
      const { id } = await h.partitions.create({ name, component });
      ids.push(id);
      await h.partitions.deliver(id, event("tick"));
      h.now.value += 1000;
    }
    await expect.poll(() => h.partitions.stateOf(ids[0]!)).toBe("frozen");
    expect(h.partitions.liveCount()).toBe(2);
    expect(reply(await h.partitions.deliver(ids[0]!, event("tick")))).toBe("2");
  });

  it("hands the instance a frozen partition gave up to another partition with none of its state", async () => {
    // One executor: a released instance goes back on top of its pool, and the next activation takes it.
    const h = await host({ executors: 1, spareInstances: 1 });
    // The QuickJS counter keeps its count in linear memory.
    const component = await h.deploy("counter", { engine: "quickjs" });
    const { id: first } = await h.partitions.create({ name: "first", component });
    await h.partitions.deliver(first, event("increment", "41"));
    await h.partitions.freeze(first);
    const { id: second } = await h.partitions.create({ name: "second", component });
    expect(await countOf(h, second)).toBe(0);
    expect(await countOf(h, first)).toBe(41);
  });

  it("wakes as many partitions as were live, after they all froze, on the instances they gave back", async () => {
    // 60 QuickJS instances (1.5 MiB each) are more than the 64 MiB of spares an executor keeps regardless of the live cap.
    const h = await host({ executors: 1, spareInstances: 1, maxLive: 60 });
    const component = await h.deploy("counter", { engine: "quickjs" });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await h.partitions.create({ name: `c${i}`, component })).id);
    await Promise.all(ids.map((id) => h.partitions.deliver(id, event("increment", "1"))));
    await h.partitions.freezeAll();
    const before = h.events.filter((e) => e.type === "activated").length;
    // Together, so the executor is never idle long enough to make spares of its own.
    await Promise.all(ids.map((id) => h.partitions.deliver(id, event("increment", "1"))));
    const wakes = h.events.filter((e) => e.type === "activated").slice(before);
    expect(wakes).toHaveLength(60);
    expect(wakes.filter((e) => e.type === "activated" && !e.pooled)).toEqual([]);
    expect(await countOf(h, ids[59]!)).toBe(2);
  });
});

// A running host keeps what it froze last in memory; damage on disk is found by the
// host that next reads the store, here a restarted one.
describe("damaged snapshots", () => {
  async function restarted(h: TestHost): Promise<TestHost> {
    await crash(h);
    return host({ dataDir: h.dataDir });
  }

  async function frozenTwice(h: TestHost): Promise<string> {
    const { id } = await h.partitions.create({ name: "w", component: await h.deploy("wat") });
    await h.partitions.deliver(id, event("tick"));
    await h.partitions.freeze(id); // seq 1: count 1
    await h.partitions.deliver(id, event("tick"));
    await h.partitions.freeze(id); // seq 2: count 2
    return id;
  }

  async function damage(h: TestHost, id: string, how: (bytes: Buffer) => Buffer): Promise<void> {
    const head = await h.snapshots.head(id);
    const key = `${id}:blob-${head!.latest.seq % 3}`;
    const bytes = Buffer.from((await h.store.snapshots.getItemRaw<Uint8Array>(key))!);
    await h.store.snapshots.setItemRaw(key, how(bytes));
  }

  it("falls back to the previous snapshot when the latest is corrupted, naming the partition", async () => {
    const first = await host();
    const id = await frozenTwice(first);
    await damage(first, id, (bytes) => {
      bytes[bytes.length >> 1]! ^= 0xff;
      return bytes;
    });
    const h = await restarted(first);
    expect(reply(await h.partitions.deliver(id, event("tick")))).toBe("2");
    const problem = h.events.find((e) => e.type === "snapshot-problem");
    expect(problem?.type === "snapshot-problem" && problem.error.message).toContain(id);
  });

  it("falls back to the previous snapshot when the latest is truncated", async () => {
    const first = await host();
    const id = await frozenTwice(first);
    await damage(first, id, (bytes) => bytes.subarray(0, bytes.length - 7));
    const h = await restarted(first);
    expect(reply(await h.partitions.deliver(id, event("tick")))).toBe("2");
    expect(h.events.some((e) => e.type === "snapshot-problem")).toBe(true);
  });

  it("starts fresh, with an error, when no snapshot of the partition verifies", async () => {
    const first = await host();
    const id = await frozenTwice(first);
    const head = (await first.snapshots.head(id))!;
    for (const ref of [head.latest, head.previous!]) await first.store.snapshots.setItemRaw(`${id}:blob-${ref.seq % 3}`, Buffer.from("garbage"));
    const h = await restarted(first);
    expect(reply(await h.partitions.deliver(id, event("tick")))).toBe("1");
    const problem = h.events.find((e) => e.type === "snapshot-problem");
    expect(problem?.type === "snapshot-problem" && problem.error.message).toMatch(new RegExp(id));
  });

  it("wakes a recently frozen partition from the host's own copy, reading nothing from the store", async () => {
    const h = await host();
    const id = await frozenTwice(h);
    await damage(h, id, (bytes) => bytes.subarray(0, 3));
    expect(reply(await h.partitions.deliver(id, event("tick")))).toBe("3");
    expect(h.snapshots.cacheStats).toMatchObject({ hits: 2, misses: 1, entries: 1 });
    expect(h.events.some((e) => e.type === "snapshot-problem")).toBe(false);
  });

  it("reads every wake from the store when the snapshot cache is off", async () => {
    const h = await host({ snapshotCacheBytes: 0 });
    const id = await frozenTwice(h);
    await damage(h, id, (bytes) => bytes.subarray(0, 3));
    expect(reply(await h.partitions.deliver(id, event("tick")))).toBe("2");
    expect(h.snapshots.cacheStats).toMatchObject({ hits: 0, misses: 3, entries: 0 });
  });
});
