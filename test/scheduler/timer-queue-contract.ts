// The contract every TimerQueue implementation passes.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TimerQueue } from "../../src/scheduler/timer-queue.ts";

export function timerQueueContract(name: string, open: () => Promise<TimerQueue>): void {
  describe(`TimerQueue contract: ${name}`, () => {
    let queue: TimerQueue;
    beforeEach(async () => {
      queue = await open();
    });
    afterEach(() => queue.close());

    it("hands out due timers earliest first, and nothing that is not due", async () => {
      await queue.arm("c", 300);
      await queue.arm("a", 100);
      await queue.arm("b", 200);
      expect(await queue.takeDue(250, 10)).toEqual([
        { key: "a", at: 100 },
        { key: "b", at: 200 },
      ]);
      expect(await queue.takeDue(250, 10)).toEqual([]);
      expect(await queue.nextAt()).toBe(300);
    });

    it("hands out timers due at the same instant in the order they were armed", async () => {
      for (const key of ["x", "y", "z"]) await queue.arm(key, 50);
      expect((await queue.takeDue(50, 10)).map((t) => t.key)).toEqual(["x", "y", "z"]);
    });

    it("replaces an earlier arming of the same key", async () => {
      await queue.arm("k", 100);
      await queue.arm("k", 500);
      expect(await queue.takeDue(400, 10)).toEqual([]);
      expect(await queue.size()).toBe(1);
      expect(await queue.takeDue(500, 10)).toEqual([{ key: "k", at: 500 }]);
    });

    it("never hands out a disarmed timer", async () => {
      await queue.arm("gone", 100);
      await queue.arm("kept", 100);
      await queue.disarm("gone");
      expect(await queue.takeDue(100, 10)).toEqual([{ key: "kept", at: 100 }]);
      expect(await queue.nextAt()).toBeUndefined();
    });

    it("hands out at most `limit` timers per call", async () => {
      for (let i = 0; i < 5; i++) await queue.arm(`t${i}`, i);
      expect(await queue.takeDue(10, 2)).toHaveLength(2);
      expect(await queue.size()).toBe(3);
    });

    it("keeps order across many re-armings", async () => {
      const at = new Map<string, number>();
      for (let i = 0; i < 5000; i++) {
        const key = `k${i % 700}`;
        const when = (i * 7919) % 10_007;
        at.set(key, when);
        await queue.arm(key, when);
      }
      const taken = await queue.takeDue(Infinity, 10_000);
      expect(taken).toHaveLength(700);
      expect(taken.map((t) => t.at)).toEqual([...at.values()].sort((a, b) => a - b));
      for (const timer of taken) expect(timer.at).toBe(at.get(timer.key));
    });
  });
}
