// The task-recorder example guest, tested as its author would test it: through the test
// kit ("dormant/testing"), registering tasks by calling its `register` entry, moving the
// kit's fake clock and reading back what the guest recorded.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestHost, type TestHost } from "dormant/testing";
import { guestFile } from "../support/guests.ts";

const decoder = new TextDecoder();

describe("the task-recorder guest", () => {
  let t: TestHost;
  beforeEach(async () => {
    t = await createTestHost({ guest: guestFile("recorder"), start: "2030-01-01T00:00:00Z" });
  });
  afterEach(() => t.close());

  /** Call an entry that answers JSON, and read the answer. */
  async function call(entry: string, payload: unknown = ""): Promise<any> {
    const result = await t.call(entry, typeof payload === "string" ? payload : JSON.stringify(payload));
    if (!result.ok) throw new Error(result.error);
    return JSON.parse(decoder.decode(result.reply!.body));
  }

  it("fires a cron task at 09:00 in its time zone, once a day as days pass", async () => {
    await call("register", [{ name: "daily", cron: "0 9 * * *", timezone: "Europe/Berlin" }]);
    expect(t.tasks()).toMatchObject([{ name: "daily", trigger: { tag: "cron" }, nextFire: new Date("2030-01-01T08:00:00Z") }]);
    await t.advance("2d");
    const { received } = await call("report");
    expect(received.map((r: { firedAt: number }) => new Date(r.firedAt).toISOString())).toEqual(["2030-01-01T08:00:00.000Z", "2030-01-02T08:00:00.000Z"]);
    expect(t.tasks()[0]!.nextFire).toEqual(new Date("2030-01-03T08:00:00Z"));
  });

  it("retries a failing event with backoff and dead-letters it when its attempts run out", async () => {
    const retry = { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 1000 };
    await call("register", [{ name: "flaky", after: 1000, payload: "fail:9", retry }]);
    await t.advance("1m");
    expect(await t.deadLetters()).toMatchObject([{ task: "flaky", attempts: 3, error: expect.stringContaining("attempt 3 of flaky failed on purpose") }]);
    expect(
      t
        .activity()
        .filter((a) => !a.ok)
        .map((a) => a.what),
    ).toContain("flaky dead-lettered after 3 attempts: attempt 3 of flaky failed on purpose");
  });

  it("records a push sent with respond-async once it is delivered", async () => {
    await call("register", [{ name: "hook", push: true }]);
    expect(await t.pushAsync("hook", { body: "queued" })).toMatch(/./);
    const { received } = await call("report");
    expect(received).toMatchObject([{ name: "hook", body: "queued" }]);
  });

  it("keeps the tasks it wants and what it received across a freeze", async () => {
    await call("register", [{ name: "minutely", every: 60_000 }]);
    await t.advance("1m");
    await t.freeze();
    await t.advance("2m");
    const { received, activations } = await call("report");
    expect(received.map((r: { name: string }) => r.name)).toEqual(["minutely", "minutely", "minutely"]);
    // Frozen on demand, and again by the host whenever it sat idle between two minutes: each wake restores it.
    expect(activations[0]).toBe("fresh");
    expect(new Set(activations.slice(1))).toEqual(new Set(["restored"]));
  });

  it("returns a thrown error as the call's error, and stays up", async () => {
    expect(await t.call("throw", "no such thing")).toEqual({ ok: false, error: expect.stringContaining("TypeError: no such thing") });
    expect(await call("report")).toEqual({ received: [], activations: ["fresh"] });
  });
});
