// The one timer loop, driven by a fake clock through the same path production takes.
import { afterEach, describe, expect, it } from "vitest";
import { FakeClock } from "../../src/scheduler/clock.ts";
import { HeapTimerQueue } from "../../src/scheduler/heap-timer-queue.ts";
import { MAX_SLEEP_MS, TimerLoop } from "../../src/scheduler/timer-loop.ts";

const T0 = 1_800_000_000_000;
const loops: TimerLoop[] = [];

function loopOn(clock: FakeClock, options: { leaseMs?: number; onError?: (error: Error) => void } = {}) {
  const queue = new HeapTimerQueue();
  const loop = new TimerLoop(queue, clock, options);
  loops.push(loop);
  const fired: { id: string; due: number; now: number }[] = [];
  loop.on("t", async (id, due, now) => void fired.push({ id, due, now }));
  loop.start();
  return { loop, queue, fired };
}

async function moveTo(clock: FakeClock, loop: TimerLoop, at: number) {
  clock.set(at);
  do {
    await clock.flushed();
    await loop.settled();
  } while (clock.pending);
}

afterEach(async () => {
  await Promise.all(loops.splice(0).map((loop) => loop.stop()));
});

describe("timer loop", () => {
  it("hands each due timer to the handler of its kind once, with the time it was armed for", async () => {
    const clock = new FakeClock(T0);
    const { loop, fired } = loopOn(clock);
    await loop.arm("t", "a", T0 + 1000);
    await loop.arm("t", "b", T0 + 500);
    await moveTo(clock, loop, T0 + 999);
    expect(fired.map((f) => f.id)).toEqual(["b"]);
    await moveTo(clock, loop, T0 + 5000);
    expect(fired).toEqual([
      { id: "b", due: T0 + 500, now: T0 + 999 },
      { id: "a", due: T0 + 1000, now: T0 + 5000 },
    ]);
  });

  it("fires a timer armed for now without waiting for the clock to move", async () => {
    const clock = new FakeClock(T0);
    const { loop, fired } = loopOn(clock);
    await loop.arm("t", "now", T0);
    await moveTo(clock, loop, T0);
    expect(fired.map((f) => f.id)).toEqual(["now"]);
  });

  it("never fires a disarmed timer", async () => {
    const clock = new FakeClock(T0);
    const { loop, fired } = loopOn(clock);
    await loop.arm("t", "gone", T0 + 100);
    await loop.disarm("t", "gone");
    await moveTo(clock, loop, T0 + 1000);
    expect(fired).toEqual([]);
  });

  it("looks at the clock again within 30 s, so a timer overdue after a machine suspend fires promptly", async () => {
    const clock = new FakeClock(T0);
    const { loop, fired } = loopOn(clock);
    await loop.arm("t", "later", T0 + 3_600_000);
    await moveTo(clock, loop, T0);
    // Suspended for two hours: wall time moves on while no timer advances.
    clock.suspend(2 * 3_600_000);
    await moveTo(clock, loop, clock.now() + MAX_SLEEP_MS);
    expect(fired).toMatchObject([{ id: "later", due: T0 + 3_600_000 }]);
  });

  it("reports a failing handler and goes on with the other timers", async () => {
    const clock = new FakeClock(T0);
    const errors: Error[] = [];
    const { loop, fired } = loopOn(clock, { onError: (error) => errors.push(error) });
    loop.on("bad", async () => {
      throw new Error("handler broke");
    });
    await loop.arm("bad", "x", T0 + 10);
    await loop.arm("t", "ok", T0 + 20);
    await moveTo(clock, loop, T0 + 100);
    expect(errors.map((e) => e.message)).toEqual(["handler broke"]);
    expect(fired.map((f) => f.id)).toEqual(["ok"]);
  });

  it("keeps the claim of a handler that runs longer than the lease, so its timer is not handed out twice", async () => {
    const clock = new FakeClock(T0);
    const { loop, queue } = loopOn(clock, { leaseMs: 1000 });
    let runs = 0;
    let finish!: () => void;
    loop.on("slow", () => {
      runs++;
      return new Promise<void>((resolve) => (finish = resolve));
    });
    await loop.arm("slow", "s", T0 + 10);
    clock.set(T0 + 10);
    await clock.flushed();
    for (let t = 1; t <= 10; t++) {
      clock.set(T0 + 10 + t * 500);
      await clock.flushed();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(runs).toBe(1);
    finish();
    await loop.settled();
    expect(await queue.size()).toBe(0);
  });
});
