// The guard every store driver is wrapped in: each call is bounded by the store timeout,
// counted from its own start, and a backend error becomes a `store-unavailable` naming the store.
import type { Driver } from "unstorage";
import { describe, expect, it } from "vitest";
import { guardedDriver } from "../../src/store/drivers/guarded.ts";

/** A driver whose `getItem` answers at once, except for keys starting with `hang`, which never answer. */
function driver(): Driver {
  return {
    name: "test",
    hasItem: async () => true,
    getItem: (key: string) => (key.startsWith("hang") ? new Promise(() => undefined) : Promise.resolve(`value of ${key}`)),
    getKeys: async () => [],
    removeItem: async () => {
      throw new Error("disk on fire");
    },
  };
}

describe("a guarded store driver", () => {
  it("answers what the store answers", async () => {
    const guarded = guardedDriver(driver(), "the test store", 300);
    expect(await guarded.getItem("a", {})).toBe("value of a");
  });

  it("fails a call the store never answers after the timeout, counted from that call's own start, naming the store and the call", async () => {
    const guarded = guardedDriver(driver(), "the test store", 300);
    // Quick calls from 250 ms before the hung one: their timeouts were due before its own.
    for (let i = 0; i < 5; i++) {
      await guarded.getItem(`quick-${i}`, {});
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const started = performance.now();
    await expect(guarded.getItem("hang-1", {})).rejects.toMatchObject({
      code: "store-unavailable",
      message: expect.stringMatching(/^The store the test store did not answer \(getItem hang-1\) within 300 ms; nothing was acknowledged/),
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(299); // a timer may fire up to a millisecond early
    // Still guarding: the next call answers, another hung one fails.
    expect(await guarded.getItem("b", {})).toBe("value of b");
    await expect(guarded.getItem("hang-2", {})).rejects.toMatchObject({ code: "store-unavailable" });
  });

  it("turns a backend error into store-unavailable, with the error as its cause", async () => {
    const guarded = guardedDriver(driver(), "the test store", 300);
    const failed = guarded.removeItem!("k", {});
    await expect(failed).rejects.toMatchObject({
      code: "store-unavailable",
      message: expect.stringContaining("The store the test store failed (removeItem k): disk on fire."),
    });
    await expect(failed).rejects.toHaveProperty("cause.message", "disk on fire");
  });
});
