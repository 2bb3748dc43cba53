// When triggers fire next, and how late occurrences are planned (no guest needed).
import { describe, expect, it } from "vitest";
import { planFire } from "../../src/tasks/misfire.ts";
import { firstOccurrence, nextOccurrence } from "../../src/tasks/schedule.ts";
import type { TaskRecord, Trigger } from "../../src/tasks/task.ts";

const cron = (expression: string, timezone?: string): Trigger => ({ tag: "cron", val: { expression, timezone } });
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function runs(trigger: Trigger, from: string, count: number): (string | undefined)[] {
  let at = Date.parse(from);
  const out = [];
  for (let i = 0; i < count; i++) {
    at = nextOccurrence(trigger, at, 0)!;
    out.push(iso(at));
  }
  return out;
}

function task(trigger: Trigger, misfire: TaskRecord["misfire"] = "fire-once"): TaskRecord {
  return {
    id: "t_1",
    partition: "p_1",
    name: "t",
    trigger,
    entry: "e",
    payload: new Uint8Array(),
    priority: 0,
    outlivePartition: false,
    retry: { maxAttempts: 1, initialBackoffMs: 1, maxBackoffMs: 1 },
    misfire,
    whenConstrained: "postpone",
    nextFire: undefined,
    pushToken: undefined,
    registeredAt: 0,
  };
}

describe("cron in a time zone with daylight saving", () => {
  it("fires a wall time skipped by the spring-forward change at the first instant after the gap", () => {
    expect(runs(cron("30 2 * * *", "Europe/Berlin"), "2027-03-27T12:00:00Z", 2)).toEqual(["2027-03-28T01:00:00.000Z", "2027-03-29T00:30:00.000Z"]);
  });

  it("fires a wall time repeated by the autumn change once, at its first occurrence", () => {
    expect(runs(cron("30 2 * * *", "Europe/Berlin"), "2027-10-30T12:00:00Z", 2)).toEqual(["2027-10-31T00:30:00.000Z", "2027-11-01T01:30:00.000Z"]);
  });

  it("keeps an hourly schedule firing every real hour through the repeated hour", () => {
    expect(runs(cron("0 * * * *", "Europe/Berlin"), "2027-10-30T23:30:00Z", 4)).toEqual([
      "2027-10-31T00:00:00.000Z",
      "2027-10-31T01:00:00.000Z",
      "2027-10-31T02:00:00.000Z",
      "2027-10-31T03:00:00.000Z",
    ]);
  });

  it("evaluates a schedule without a zone in UTC", () => {
    expect(runs(cron("0 9 * * *"), "2027-01-01T00:00:00Z", 1)).toEqual(["2027-01-01T09:00:00.000Z"]);
  });
});

describe("first and next occurrences", () => {
  it("starts an interval one period after registration and keeps its phase", () => {
    const every: Trigger = { tag: "every", val: 1000 };
    expect(firstOccurrence(every, 5000)).toBe(6000);
    expect(nextOccurrence(every, 8500, 5000)).toBe(9000);
  });

  it("gives a one-shot no occurrence after it fired", () => {
    expect(nextOccurrence({ tag: "at", val: 100 }, 100, 0)).toBeUndefined();
    expect(nextOccurrence({ tag: "after", val: 100 }, 100, 0)).toBeUndefined();
  });
});

describe("planning a late fire", () => {
  const options = { graceMs: 60_000, fireAllCap: 3 };

  it("plans one event for an occurrence taken on time", () => {
    expect(planFire(task({ tag: "every", val: 1000 }), 1000, 1500, options)).toEqual({
      events: [{ scheduledAt: 1000, occurrences: 1 }],
      next: 2000,
      misfire: undefined,
    });
  });

  it("counts a single occurrence taken past the grace period as a misfire", () => {
    const plan = planFire(task({ tag: "at", val: 1000 }, "skip"), 1000, 1000 + 60_001, options);
    expect(plan).toEqual({ events: [], next: undefined, misfire: { policy: "skip", missed: 1, countCapped: false, since: 1000, delivered: 0 } });
  });

  it("counts missed cron occurrences one by one, and caps `fire-all`", () => {
    const hourly = cron("0 * * * *");
    const due = Date.parse("2027-01-01T00:00:00Z");
    const plan = planFire(task(hourly, "fire-all"), due, due + 5 * 3_600_000 + 10, options);
    expect(plan.misfire).toMatchObject({ missed: 6, delivered: 3 });
    expect(plan.events.map((e) => iso(e.scheduledAt))).toEqual(["2027-01-01T00:00:00.000Z", "2027-01-01T01:00:00.000Z", "2027-01-01T02:00:00.000Z"]);
    expect(iso(plan.next)).toBe("2027-01-01T06:00:00.000Z");
  });

  it("stops counting a year of missed per-second occurrences at a bound, and says so", () => {
    const plan = planFire(task(cron("* * * * * *")), 0, 365 * 86_400_000, options);
    expect(plan.misfire).toMatchObject({ missed: 1000, countCapped: true, delivered: 1 });
    expect(plan.events).toEqual([{ scheduledAt: 0, occurrences: 1000 }]);
    expect(plan.next).toBe(365 * 86_400_000 + 1000);
  });
});
