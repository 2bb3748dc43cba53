// Every bad field of a task spec is refused at the boundary with its typed WIT error
// and a message that says what to do; the partition and the host carry on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JS_ENGINES } from "../support/guests.ts";
import { startTestHost, type TestHost } from "../support/host.ts";
import { call, recorder, registerTasks } from "../support/recorder.ts";

describe.each(JS_ENGINES)("on %s", (engine) => {
  let h: TestHost;
  let p: string;
  beforeAll(async () => {
    h = await startTestHost({ taskLimits: { maxTasks: 3, minIntervalMs: 5000, maxPayloadBytes: 1024, maxAttempts: 10 } });
    p = await recorder(h, { engine });
  });
  afterAll(() => h.close());

  async function refusal(spec: object): Promise<{ tag: string; val: string }> {
    const { status, body } = await call(h, p, "register", [spec]);
    expect(status).toBe(400);
    return body.error;
  }

  describe("task spec validation", () => {
    it.each([
      ["an empty name", { name: "", every: 60_000 }, "invalid-name", /1 to 64 characters/],
      ["a name of 65 characters", { name: "n".repeat(65), every: 60_000 }, "invalid-name", /65 characters/],
      ["a name with a control character", { name: "bad\u0000name", every: 60_000 }, "invalid-name", /a-z A-Z 0-9/],
      ["an entry with a space", { name: "ok", entry: "two words", every: 60_000 }, "invalid-entry", /Entry "two words"/],
      ["an instant after the year 9999", { name: "ok", at: 253_402_300_800_000 }, "invalid-trigger", /year 9999/],
      ["a delay past the year 9999", { name: "ok", after: 2 ** 60 }, "invalid-trigger", /delay/],
      ["a cron expression that does not parse", { name: "ok", cron: "61 * * * *" }, "invalid-cron", /does not parse/],
      ["a cron expression that never fires", { name: "ok", cron: "0 0 30 2 *" }, "invalid-cron", /./],
      ["an unknown time zone", { name: "ok", cron: "0 9 * * *", timezone: "Mars/Olympus_Mons" }, "invalid-timezone", /IANA/],
      ["an interval under the minimum", { name: "ok", every: 4999 }, "interval-too-short", /minimum is 5000 ms/],
      ["a cron schedule firing every 2 s", { name: "ok", cron: "*/2 * * * * *" }, "interval-too-short", /more often than every 5000 ms/],
      ["zero retry attempts", { name: "ok", every: 60_000, retry: { maxAttempts: 0, initialBackoffMs: 1, maxBackoffMs: 1 } }, "invalid-retry", /1 to 10/],
      [
        "a backoff cap under the initial backoff",
        { name: "ok", every: 60_000, retry: { maxAttempts: 3, initialBackoffMs: 5000, maxBackoffMs: 10 } },
        "invalid-retry",
        /at least the initial/,
      ],
      ["a payload over the limit", { name: "ok", every: 60_000, payload: "x".repeat(1025) }, "payload-too-large", /1025 bytes; the limit is 1024/],
    ])("refuses %s", async (_what, spec, tag, message) => {
      const error = await refusal(spec);
      expect(error.tag).toBe(tag);
      expect(error.val).toMatch(message);
      expect(h.registry.tasksOf(p)).toEqual([]);
    });

    it("refuses a registration past the partition's quota, but allows replacing an existing task", async () => {
      await registerTasks(h, p, { name: "a", every: 60_000 }, { name: "b", every: 60_000 }, { name: "c", every: 60_000 });
      const error = await refusal({ name: "d", every: 60_000 });
      expect(error).toMatchObject({ tag: "quota-exceeded", val: expect.stringMatching(/cancel one before registering d/) });
      await registerTasks(h, p, { name: "c", every: 120_000 });
      expect(
        h.registry
          .tasksOf(p)
          .map((t) => t.name)
          .sort(),
      ).toEqual(["a", "b", "c"]);
      for (const name of ["a", "b", "c"]) await call(h, p, "cancel", name);
    });

    it("accepts a 0 ms delay and a past instant, firing them at once", async () => {
      const [info] = await registerTasks(h, p, { name: "now", after: 0 }, { name: "past", at: 0 });
      expect(info!.nextFire).toBe(h.now.value);
      for (const name of ["now", "past"]) await call(h, p, "cancel", name);
    });
  });
});
