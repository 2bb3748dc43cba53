// Delivery without executors: retries, backoff, dead letters and the constrained budget,
// through a Deliverer that answers as the test scripts it, on a real store and the real
// timer loop driven by a fake clock.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CallOutcome, TaskEvent } from "../../runtime/index.ts";
import { ActivationBudget } from "../../src/budget/budget.ts";
import { RateLimiter } from "../../src/budget/rate-limit.ts";
import type { Delivery } from "../../src/delivery/delivery.ts";
import { DeliveryStore } from "../../src/delivery/delivery-store.ts";
import { Dispatcher, newDeliveryId, type DeliveryEvent } from "../../src/delivery/dispatcher.ts";
import { FakeClock } from "../../src/scheduler/clock.ts";
import { HeapTimerQueue } from "../../src/scheduler/heap-timer-queue.ts";
import { TimerLoop } from "../../src/scheduler/timer-loop.ts";
import { openStore, type Store } from "../../src/store/open.ts";

const T0 = 1_800_000_000_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A partition that fails its first `failures` events, then succeeds. */
function scriptedPartitions(failures: number) {
  const seen: TaskEvent[] = [];
  const partitions = new Set(["p_1"]);
  return {
    seen,
    partitions,
    deliverer: {
      route: async (delivery: Delivery) => delivery.partition,
      deliver: async (_partition: string, event: TaskEvent): Promise<CallOutcome> => {
        seen.push(event);
        return seen.length <= failures ? { ok: false, error: `failure ${seen.length}` } : { ok: true, reply: undefined };
      },
      has: (partition: string) => partitions.has(partition),
    },
  };
}

async function dispatcher(failures: number, dataDir?: string) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "dormant-dispatch-")));
  const store: Store = await openStore({ dataDir: dir });
  const clock = new FakeClock(T0);
  const timers = new TimerLoop(new HeapTimerQueue(), clock);
  const budget = new ActivationBudget();
  const script = scriptedPartitions(failures);
  const events: DeliveryEvent[] = [];
  const d = new Dispatcher({
    deliverer: script.deliverer,
    store: new DeliveryStore(store.deliveries, store.deadLetters),
    budget,
    clock,
    timers,
    quota: new RateLimiter({ perSecond: 1, burst: 2 }, () => clock.now()),
    onEvent: (e) => events.push(e),
  });
  await d.start();
  timers.start();
  /** Stop as a host stops, letting go of the store (and its data directory). */
  const stop = async () => {
    await timers.stop();
    await d.stop();
    await store.close();
  };
  cleanups.push(async () => {
    await stop();
    if (!dataDir) await rm(dir, { recursive: true, force: true });
  });
  const settle = async (at: number) => {
    clock.set(at);
    do {
      await clock.flushed();
      await timers.settled();
      await d.settled();
    } while (clock.pending || timers.busy || d.busy);
  };
  return { d, dir, clock, budget, events, settle, stop, ...script };
}

function delivery(fields: Partial<Delivery> = {}): Delivery {
  return {
    id: newDeliveryId(fields.partition ?? "p_1"),
    kind: "timer",
    taskId: "t_1",
    taskName: "job",
    partition: "p_1",
    entry: "run",
    payload: new TextEncoder().encode("data"),
    priority: 10,
    whenConstrained: "postpone",
    retry: { maxAttempts: 3, initialBackoffMs: 2000, maxBackoffMs: 300_000 },
    scheduledAt: T0,
    occurrences: 1,
    attempts: 0,
    ...fields,
  };
}

describe("dispatcher", () => {
  it("retries a failed event after a doubling backoff, and stops once an attempt succeeds", async () => {
    const h = await dispatcher(2);
    await h.d.enqueue(delivery());
    await h.settle(T0);
    await h.settle(T0 + 2000);
    expect(h.seen.map((e) => e.attempt)).toEqual([1, 2]);
    await h.settle(T0 + 2000 + 3999);
    expect(h.seen).toHaveLength(2);
    await h.settle(T0 + 2000 + 4000);
    expect(h.seen.map((e) => [e.attempt, Number(e.firedAt)])).toEqual([
      [1, T0],
      [2, T0 + 2000],
      [3, T0 + 6000],
    ]);
    expect(h.d.pendingDeliveries()).toEqual([]);
    expect(await h.d.deadLetters()).toEqual([]);
  });

  it("dead-letters an event whose attempts run out, keeping its last error", async () => {
    const h = await dispatcher(10);
    await h.d.enqueue(delivery());
    for (const at of [T0, T0 + 2000, T0 + 6000]) await h.settle(at);
    expect(await h.d.deadLetters()).toMatchObject([{ taskName: "job", attempts: 3, lastError: "failure 3", deadAt: T0 + 6000 }]);
    expect(h.events.filter((e) => e.type === "dead-lettered")).toHaveLength(1);
  });

  it("dead-letters at once an event whose partition was deleted", async () => {
    const h = await dispatcher(10);
    h.partitions.delete("p_1");
    await h.d.enqueue(delivery());
    await h.settle(T0);
    expect(await h.d.deadLetters()).toMatchObject([{ attempts: 1 }]);
  });

  it("stores an accepted event before acknowledging it, and delivers it after a restart", async () => {
    const first = await dispatcher(1);
    await first.d.enqueue(delivery({ kind: "push" }));
    await first.settle(T0);
    expect(first.d.pendingDeliveries()).toMatchObject([{ attempts: 1, nextAttemptAt: T0 + 2000 }]);
    await first.stop();
    const second = await dispatcher(0, first.dir);
    expect(second.d.pendingDeliveries()).toMatchObject([{ attempts: 1, payload: new TextEncoder().encode("data") }]);
    await second.settle(T0 + 2000);
    expect(second.seen.map((e) => e.attempt)).toEqual([2]);
  });

  it("postpones a low-priority retry under a constrained budget and runs it when the constraint lifts", async () => {
    const h = await dispatcher(1);
    await h.d.enqueue(delivery({ priority: 10 }));
    await h.settle(T0);
    h.budget.set({ constrained: true, threshold: 100 });
    await h.settle(T0 + 2000);
    expect(h.seen).toHaveLength(1);
    expect(h.d.stats.postponed).toEqual({ 10: 1 });
    h.budget.set({ constrained: false });
    await h.settle(T0 + 2000);
    expect(h.seen.map((e) => e.attempt)).toEqual([1, 2]);
  });

  it("drops, and counts, a retry whose event asks to be dropped under a constraint", async () => {
    const h = await dispatcher(1);
    await h.d.enqueue(delivery({ priority: 5, whenConstrained: "drop" }));
    await h.settle(T0);
    h.budget.set({ constrained: true, threshold: 100 });
    await h.settle(T0 + 2000);
    expect(h.d.stats.dropped).toEqual({ 5: 1 });
    expect(h.d.pendingDeliveries()).toEqual([]);
  });

  it("puts a dead letter back with a fresh allowance of attempts", async () => {
    const h = await dispatcher(3);
    await h.d.enqueue(delivery({ retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 } }));
    await h.settle(T0);
    const [letter] = await h.d.deadLetters();
    expect(await h.d.retryDeadLetter(letter!.id)).toBe(true);
    await h.settle(T0);
    expect(h.seen.map((e) => e.attempt)).toEqual([1, 2]);
    expect(await h.d.deadLetters()).toMatchObject([{ attempts: 2 }]);
  });
});
