import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PreparedComponent } from "../../runtime/engine.ts";
import type { ExecutorPool } from "../../runtime/executor/pool.ts";
import { KEPT_PER_POOL } from "../../runtime/executor/protocol.ts";
import { buildComponent } from "../../runtime/toolchain/build.ts";
import type { TaskEffects } from "../../src/tasks/executor/background-tasks.ts";
import { guestFile, JS_ENGINES } from "../support/guests.ts";
import { bodyText, event, LIMITS, noTasks, startPool } from "../support/runtime.ts";

const guests = inject("guests");
/** wat-minimal's on-task begins with this. */
const ON_TASK = "(global.set $count (i32.add (global.get $count) (i32.const 1)))";
let pool: ExecutorPool;
let counter: PreparedComponent;
let wat: PreparedComponent;
const logs: { partition: string; message: string }[] = [];

beforeAll(async () => {
  pool = await startPool({ onLog: (partition, _level, message) => logs.push({ partition, message }) });
  counter = await pool.prepare(await readFile(guests.counter));
  wat = await pool.prepare(await readFile(guests.wat));
});
afterAll(() => pool.close());

/** wat-minimal changed by `edit`, built and prepared (its folder removed again). */
async function watVariant(edit: (source: string) => string): Promise<PreparedComponent> {
  const dir = await mkdtemp(join(tmpdir(), "dormant-wat-variant-"));
  try {
    await writeFile(join(dir, "guest.wat"), edit(await readFile(new URL("../../guests/wat-minimal/wat-minimal.wat", import.meta.url), "utf8")));
    return await pool.prepare(await buildComponent(join(dir, "guest.wat"), { witDir: new URL("../../wit", import.meta.url).pathname }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function push(partition: string): Promise<Record<string, unknown>> {
  const { outcome } = await pool.call(partition, event("push"), noTasks(), 0, LIMITS);
  if (!outcome.ok) throw new Error(outcome.error);
  return JSON.parse(bodyText(outcome.reply?.body)) as Record<string, unknown>;
}

describe("partitions in executors", () => {
  it("keeps independent state in two partitions of one component", async () => {
    await pool.activate("indep-a", { component: counter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    await pool.activate("indep-b", { component: counter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    await push("indep-a");
    await push("indep-a");
    expect((await push("indep-a")).count).toBe(3);
    expect((await push("indep-b")).count).toBe(1);
  });

  it("keeps state in a hand-written WAT guest across calls", async () => {
    await pool.activate("wat-a", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    for (const expected of ["1", "2", "3"]) {
      const { outcome } = await pool.call("wat-a", event("tick"), noTasks(), 0, LIMITS);
      expect(outcome.ok && bodyText(outcome.reply?.body)).toBe(expected);
    }
  });

  it("runs guest code off the main thread, which keeps its timers running", async () => {
    await pool.activate("spinner", { component: counter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const call = pool.call("spinner", event("spin", "5000000"), noTasks(), 0, LIMITS);
    const result = await call;
    clearInterval(timer);
    expect(result.outcome.ok).toBe(true);
    // The guest ran for many timer periods; the main thread's interval kept firing.
    expect(result.ms).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThan(result.ms / 5 / 4);
  });

  it("hands a partition's registrations back as effects of the call, tagged with that partition", async () => {
    const { outcome, effects } = await pool.call("indep-a", event("register", JSON.stringify({ name: "later", entry: "tick" })), noTasks(), 1000, LIMITS);
    expect(outcome.ok).toBe(true);
    const { upserts } = effects as TaskEffects;
    expect(upserts.map((task) => [task.partition, task.name, task.nextFire])).toEqual([["indep-a", "later", 2000]]);
  });

  it("shows a partition only the tasks the host passes for it", async () => {
    const state = noTasks();
    const { effects } = await pool.call("indep-a", event("register", JSON.stringify({ name: "mine", entry: "tick" })), state, 0, LIMITS);
    const mine = (effects as TaskEffects).upserts;
    const forB = await pool.call("indep-b", event("register", JSON.stringify({ name: "other", entry: "tick" })), noTasks(), 0, LIMITS);
    expect(JSON.parse(bodyText(forB.outcome.ok ? forB.outcome.reply?.body : undefined)).names).toEqual(["other"]);
    const forA = await pool.call("indep-a", event("register", JSON.stringify({ name: "again", entry: "tick" })), { ...state, tasks: mine }, 0, LIMITS);
    expect(JSON.parse(bodyText(forA.outcome.ok ? forA.outcome.reply?.body : undefined)).names).toEqual(["again", "mine"]);
  });

  it("attributes each log line to the partition that wrote it", async () => {
    logs.length = 0;
    await pool.activate("logger", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    expect(logs).toEqual([{ partition: "logger", message: "wat-minimal activated" }]);
  });

  it("returns a guest's error result as a failed outcome, not a crash", async () => {
    const { outcome } = await pool.call("indep-b", event("fail"), noTasks(), 0, LIMITS);
    expect(outcome).toEqual({ ok: false, error: "asked to fail at count 1" });
    expect((await push("indep-b")).count).toBe(2);
  });
});

describe("the engine seam", () => {
  it("runs guests on the engine module the host names", async () => {
    const named = await startPool({ size: 1, engineModule: new URL("./fixtures/engine-in-subfolder.ts", import.meta.url) });
    try {
      const prepared = await named.prepare(await readFile(guests.wat));
      expect(prepared.location).toMatch(/\/engine-in-subfolder\//);
      await named.activate("seam", { component: prepared, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
      const { outcome } = await named.call("seam", event("tick"), noTasks(), 0, LIMITS);
      expect(outcome.ok && bodyText(outcome.reply?.body)).toBe("1");
    } finally {
      await named.close();
    }
  });
});

describe("bad components", () => {
  // What each refusal says is the engine contract's (engine-contract.ts); here, that it crosses the thread typed.
  it("hands a refused component's typed error across the thread", async () => {
    const empty = new Uint8Array(await readFile(guests.wat)).slice(0, 8); // a component header and nothing else
    await expect(pool.prepare(empty)).rejects.toMatchObject({ code: "invalid-component", message: expect.stringMatching(/world/) });
  });

  it("reports a trap during instantiation and keeps the executor working", async () => {
    const trapping = await watVariant((source) => source.replace(/\)\s*$/, "(func $boom unreachable) (start $boom))"));
    await expect(
      pool.activate("trapper", { component: trapping, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS }),
    ).rejects.toThrow(/trapped while being instantiated: unreachable/);
    expect(pool.isLive("trapper")).toBe(false);
    expect((await push("indep-a")).count).toBeGreaterThan(0);
  });
});

describe("snapshots", () => {
  it("refuses to freeze a guest that rewrote its function table, saying why", async () => {
    const rewriter = await watVariant((source) =>
      source
        .replace(/\)\s*$/, "(table $t 1 funcref) (elem declare func $realloc))")
        .replace(ON_TASK, `(table.set $t (i32.const 0) (ref.func $realloc))\n${ON_TASK}`),
    );
    await pool.activate("rewriter", { component: rewriter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    await pool.call("rewriter", event("tick"), noTasks(), 0, LIMITS);
    await expect(pool.snapshot("rewriter")).rejects.toMatchObject({
      code: "snapshot-format",
      message: expect.stringMatching(/Table \d+ of component .* changed since instantiation; Dormant cannot snapshot rewritten function tables/),
    });
  });
});

describe.each(JS_ENGINES)("a JS guest on %s", (engine) => {
  it("sees an event's times as Numbers and an absent request as undefined", async () => {
    const recorder = await pool.prepare(await readFile(guestFile("recorder", { engine })));
    const partition = `times-${engine}`;
    await pool.activate(partition, { component: recorder, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    await pool.call(partition, event("record", "", { scheduledAt: 1_800_000_000_000n, firedAt: 1_800_000_000_005n }), noTasks(), 0, LIMITS);
    const { outcome } = await pool.call(partition, event("report"), noTasks(), 0, LIMITS);
    const { received } = JSON.parse(bodyText(outcome.ok ? outcome.reply?.body : undefined));
    expect(received).toEqual([
      { name: "record", entry: "record", payload: "", scheduledAt: 1_800_000_000_000, firedAt: 1_800_000_000_005, attempt: 1, occurrences: 1 },
    ]);
  });

  it("fails the call with the message of an Error it throws, and lives on", async () => {
    const recorder = await pool.prepare(await readFile(guestFile("recorder", { engine })));
    const partition = `thrower-${engine}`;
    await pool.activate(partition, { component: recorder, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    const { outcome } = await pool.call(partition, event("throw", "the guest gave up"), noTasks(), 0, LIMITS);
    expect(outcome).toEqual({ ok: false, error: "TypeError: the guest gave up" });
    expect(pool.isLive(partition)).toBe(true);
    const report = await pool.call(partition, event("report"), noTasks(), 0, LIMITS);
    expect(report.outcome.ok).toBe(true);
  });
});

describe("spare instances", () => {
  // 60 QuickJS instances (1.5 MiB each) are more than the 64 MiB of spares an executor keeps however idle.
  const N = 60;
  let spares: ExecutorPool;
  let qjs: PreparedComponent;
  beforeAll(async () => {
    spares = await startPool({ size: 1, maxLive: N, spareTrimMs: 200 });
    qjs = await spares.prepare(await readFile(guests["counter-qjs"]));
  });
  afterAll(() => spares.close());

  const ids = Array.from({ length: N }, (_, i) => `spare-${i}`);
  /** Activate every partition together (the executor never idles, so it makes no spares of its own); how each got its instance. */
  async function activateAll(): Promise<Record<string, number>> {
    const sources = await Promise.all(
      ids.map(
        async (id) => (await spares.activate(id, { component: qjs, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS })).source,
      ),
    );
    return sources.reduce<Record<string, number>>((counts, source) => ({ ...counts, [source]: (counts[source] ?? 0) + 1 }), {});
  }
  const dropAll = () => Promise.all(ids.map((id) => spares.drop(id)));

  it("keeps as many released instances as its share of the live partitions, and lets those beyond its budget go once idle", async () => {
    await activateAll();
    await dropAll();
    expect(await activateAll()).toEqual({ pool: N });
    await dropAll();
    // No event says the executor trimmed: it does so once idle for 200 ms.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const afterIdle = await activateAll();
    expect(afterIdle.instantiated).toBeGreaterThan(0);
    expect(afterIdle.pool).toBeGreaterThan(0);
    await dropAll();
  });
});

describe("the instance a partition froze on", () => {
  // One executor unless a test says otherwise; each test its own spare pools (a pool is per component and memory cap).
  let kept: ExecutorPool;
  let qjs: PreparedComponent;
  let cacheDir: string;
  let caps = 0;
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), "dormant-kept-"));
    kept = await startPool({ size: 1, cacheDir });
    qjs = await kept.prepare(await readFile(guests["counter-qjs"]));
  });
  afterAll(async () => {
    await kept.close();
    await rm(cacheDir, { recursive: true, force: true });
  });

  const limits = () => ({ ...LIMITS, memoryBytes: LIMITS.memoryBytes - ++caps * 2 ** 16 });

  /** Add `by` to the partition's count (nothing when empty) and read the count back. */
  async function count(partition: string, by: string, lim: typeof LIMITS): Promise<number> {
    if (by !== "") await kept.call(partition, event("increment", by), noTasks(), 0, lim);
    const { outcome } = await kept.call(partition, event("get"), noTasks(), 0, lim);
    if (!outcome.ok) throw new Error(outcome.error);
    return (JSON.parse(bodyText(outcome.reply?.body)) as { count: number }).count;
  }

  /** Activate in `pool` (this describe's own unless given); how it got its instance. */
  const activate = async (partition: string, lim: typeof LIMITS, snapshot?: Uint8Array, pool = kept) =>
    (
      await pool.activate(partition, {
        component: qjs,
        reason: snapshot ? "restored" : "fresh",
        host: noTasks(),
        now: 0,
        spareInstances: 1,
        limits: lim,
        ...(snapshot ? { snapshot } : {}),
      })
    ).source;

  it("wakes the partition on it, restoring nothing, with its state exact", async () => {
    const lim = limits();
    await activate("kept-a", lim);
    expect(await count("kept-a", "41", lim)).toBe(41);
    const { image } = await kept.snapshot("kept-a");
    await kept.drop("kept-a");
    expect(await activate("kept-a", lim, image)).toBe("kept");
    expect(await count("kept-a", "1", lim)).toBe(42);
  });

  it("is found by its partition's next wake on a host of several executors, ahead of a less loaded one", async () => {
    const two = await startPool({ size: 2, cacheDir });
    try {
      // Both executors empty: the first takes each tie. The other partition has its own pool (another memory cap), so it leaves the kept instance be.
      const lim = limits();
      await activate("near-x", lim, undefined, two);
      const { image } = await two.snapshot("near-x");
      await two.drop("near-x");
      await activate("near-y", limits(), undefined, two);
      // The first executor now hosts one partition, the second none: the wake still goes where its instance is.
      expect(await activate("near-x", lim, image, two)).toBe("kept");
    } finally {
      await two.close();
    }
  });

  it(`is kept for the last ${KEPT_PER_POOL} partitions to freeze; the oldest is reset when another freezes`, async () => {
    const lim = limits();
    const ids = Array.from({ length: KEPT_PER_POOL + 1 }, (_, i) => `kept-many-${i}`);
    const images = new Map<string, Uint8Array>();
    for (const id of ids) {
      await activate(id, lim);
      await count(id, "3", lim);
    }
    for (const id of ids) {
      images.set(id, (await kept.snapshot(id)).image);
      await kept.drop(id);
    }
    expect(await activate(ids[0]!, lim, images.get(ids[0]!))).not.toBe("kept");
    expect(await count(ids[0]!, "", lim)).toBe(3);
    expect(await activate(ids[KEPT_PER_POOL]!, lim, images.get(ids[KEPT_PER_POOL]!))).toBe("kept");
  });

  it("is not used to restore an older snapshot than the one it was kept for", async () => {
    const lim = limits();
    await activate("kept-b", lim);
    await count("kept-b", "5", lim);
    const older = (await kept.snapshot("kept-b")).image;
    await count("kept-b", "5", lim);
    await kept.snapshot("kept-b");
    await kept.drop("kept-b");
    expect(await activate("kept-b", lim, older)).not.toBe("kept");
    expect(await count("kept-b", "", lim)).toBe(5);
  });

  it("is not kept when the partition ran after its last snapshot", async () => {
    const lim = limits();
    await activate("kept-c", lim);
    await count("kept-c", "7", lim);
    const { image } = await kept.snapshot("kept-c");
    await count("kept-c", "1", lim);
    await kept.drop("kept-c");
    expect(await activate("kept-c", lim, image)).not.toBe("kept");
    expect(await count("kept-c", "", lim)).toBe(7);
  });

  it("goes to another partition only reset to pristine", async () => {
    const lim = limits();
    await activate("kept-d", lim);
    await count("kept-d", "41", lim);
    const { image } = await kept.snapshot("kept-d");
    await kept.drop("kept-d");
    // Two activations in one batch take every spare there is (at most one pristine one besides it).
    await Promise.all([activate("kept-e", lim), activate("kept-f", lim)]);
    expect([await count("kept-e", "", lim), await count("kept-f", "", lim)]).toEqual([0, 0]);
    // Taken by another, it is not there for its partition, which is restored onto another instance.
    expect(await activate("kept-d", lim, image)).not.toBe("kept");
    expect(await count("kept-d", "", lim)).toBe(41);
  });
});
