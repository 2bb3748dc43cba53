// The contract every TimerQueue implementation passes.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TimerQueue } from "../../src/scheduler/timer-queue.ts";

const LEASE = 1000;

export function timerQueueContract(name: string, open: () => Promise<TimerQueue>): void {
  describe(`TimerQueue contract: ${name}`, () => {
    let queue: TimerQueue;
    beforeEach(async () => {
      queue = await open();
    });
    afterEach(() => queue.close());

    const keysAt = async (now: number, limit = 10) => (await queue.claimDue(now, limit, LEASE)).map(({ key, at }) => ({ key, at }));

    it("hands out due timers earliest first, and nothing that is not due", async () => {
      await queue.arm("c", 300);
      await queue.arm("a", 100);
      await queue.arm("b", 200);
      expect(await keysAt(250)).toEqual([
        { key: "a", at: 100 },
        { key: "b", at: 200 },
      ]);
      expect(await keysAt(250)).toEqual([]);
      expect(await queue.nextAt()).toBe(300);
    });

    it("hands out timers due at the same instant in the order they were armed", async () => {
      for (const key of ["x", "y", "z"]) await queue.arm(key, 50);
      expect((await keysAt(50)).map((t) => t.key)).toEqual(["x", "y", "z"]);
    });

    it("replaces an earlier arming of the same key", async () => {
      await queue.arm("k", 100);
      await queue.arm("k", 500);
      expect(await keysAt(400)).toEqual([]);
      expect(await queue.size()).toBe(1);
      expect(await keysAt(500)).toEqual([{ key: "k", at: 500 }]);
    });

    it("never hands out a disarmed timer", async () => {
      await queue.arm("gone", 100);
      await queue.arm("kept", 100);
      await queue.disarm("gone");
      expect(await keysAt(100)).toEqual([{ key: "kept", at: 100 }]);
    });

    it("hands out at most `limit` timers per call", async () => {
      for (let i = 0; i < 5; i++) await queue.arm(`t${i}`, i);
      expect(await keysAt(10, 2)).toHaveLength(2);
      expect(await keysAt(10)).toHaveLength(3);
    });

    it("forgets an acked timer", async () => {
      await queue.arm("done", 100);
      const [claim] = await queue.claimDue(100, 10, LEASE);
      await queue.ack(claim!);
      expect(await queue.size()).toBe(0);
      expect(await keysAt(100 + 10 * LEASE)).toEqual([]);
    });

    it("hands a claimed timer to no one else while its lease holds", async () => {
      await queue.arm("held", 100);
      await queue.claimDue(100, 10, LEASE);
      expect(await keysAt(100 + LEASE - 1)).toEqual([]);
    });

    it("hands an unacked timer out again, with its original time, once its lease runs out", async () => {
      await queue.arm("lost", 100);
      await queue.claimDue(100, 10, LEASE);
      expect(await queue.nextAt()).toBe(100 + LEASE);
      expect(await keysAt(100 + LEASE)).toEqual([{ key: "lost", at: 100 }]);
    });

    it("keeps a claim past its first lease when it is extended", async () => {
      await queue.arm("long", 100);
      const [claim] = await queue.claimDue(100, 10, LEASE);
      expect(await queue.extend(claim!, 100 + 3 * LEASE)).toBe(true);
      expect(await keysAt(100 + 2 * LEASE)).toEqual([]);
      expect(await keysAt(100 + 3 * LEASE)).toEqual([{ key: "long", at: 100 }]);
    });

    it("keeps a timer armed again during its claim, whatever the old claim's ack", async () => {
      await queue.arm("again", 100);
      const [claim] = await queue.claimDue(100, 10, LEASE);
      await queue.arm("again", 5000);
      expect(await queue.extend(claim!, 100 + 3 * LEASE)).toBe(false);
      await queue.ack(claim!);
      expect(await queue.size()).toBe(1);
      expect(await keysAt(5000)).toEqual([{ key: "again", at: 5000 }]);
    });

    it("keeps order across many re-armings", async () => {
      const at = new Map<string, number>();
      for (let i = 0; i < 5000; i++) {
        const key = `k${i % 700}`;
        const when = (i * 7919) % 10_007;
        at.set(key, when);
        await queue.arm(key, when);
      }
      const taken = await queue.claimDue(Number.MAX_SAFE_INTEGER / 2, 10_000, LEASE);
      expect(taken).toHaveLength(700);
      expect(taken.map((t) => t.at)).toEqual([...at.values()].sort((a, b) => a - b));
      for (const timer of taken) expect(timer.at).toBe(at.get(timer.key));
    });
  });
}
