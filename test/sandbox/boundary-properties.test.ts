// Property: whatever a guest passes to `background-tasks.register` — hostile names,
// absurd times, broken cron and zones, giant payloads — the host answers with a task or
// a typed task-error carrying a message, and nothing else.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHostBinding } from "../../src/tasks/executor/binding.ts";
import { DEFAULT_TASK_LIMITS } from "../../src/tasks/limits.ts";
import type { TaskInfo, TaskSpec } from "../../wit/index.ts";
import { TaskSpecError } from "../../src/tasks/validate.ts";
import { startTestHost, type TestHost } from "../support/host.ts";
import { deliverDirect, recorder } from "../support/recorder.ts";

const TAGS = [
  "invalid-name",
  "invalid-entry",
  "invalid-trigger",
  "invalid-cron",
  "invalid-timezone",
  "interval-too-short",
  "invalid-retry",
  "payload-too-large",
  "quota-exceeded",
];
const MAX_TIME = 253_402_300_799_999;
const NOW = 1_800_000_000_000;
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });

const text = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,70}$/),
  fc.constant("a".repeat(100_000)),
  fc.constantFrom("", " ", "\u0000", "name\nwith\nnewlines", "../../etc/passwd", "<script>", "💥"),
);

const validName = fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/);
/** Mostly well-formed names, so the other fields get exercised too. */
const name = fc.oneof({ arbitrary: validName, weight: 6 }, { arbitrary: text, weight: 1 });

const cronExpression = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    "* * * * *",
    "*/5 * * * *",
    "0 9 * * MON-FRI",
    "30 2 * * *",
    "0 0 30 2 *",
    "* * * * * *",
    "61 * * * *",
    "@hourly",
    "0 0 1 1 *",
    "1-5/0 * * * *",
  ),
  fc.array(fc.constantFrom("*", "0", "*/2", "1-5", "L", "?", "MON", "99", "-1", ","), { minLength: 1, maxLength: 7 }).map((fields) => fields.join(" ")),
);

const timezone = fc.option(
  fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("UTC", "Europe/Berlin", "America/New_York", "Mars/Olympus_Mons", "Etc/GMT+14", "", "x".repeat(500))),
  { nil: undefined },
);

const trigger = fc.oneof(
  u64.map((val) => ({ tag: "at" as const, val })),
  u64.map((val) => ({ tag: "after" as const, val })),
  u64.map((val) => ({ tag: "every" as const, val })),
  fc.record({ expression: cronExpression, timezone }).map((val) => ({ tag: "cron" as const, val })),
  fc.constant({ tag: "push" as const }),
);

const spec: fc.Arbitrary<TaskSpec> = fc.record({
  name,
  trigger,
  entry: name,
  payload: fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 64 }), weight: 6 },
    { arbitrary: fc.integer({ min: 64 * 1024 - 2, max: 300_000 }).map((n) => new Uint8Array(n)), weight: 1 },
  ),
  priority: fc.integer({ min: 0, max: 255 }),
  outlivePartition: fc.boolean(),
  retry: fc.option(fc.record({ maxAttempts: u32, initialBackoffMs: u64, maxBackoffMs: u64 }), { nil: undefined }),
  misfire: fc.option(fc.constantFrom("fire-once" as const, "skip" as const, "fire-all" as const), { nil: undefined }),
  whenConstrained: fc.option(fc.constantFrom("postpone" as const, "drop" as const), { nil: undefined }),
});

describe("the background-tasks boundary under hostile specs", () => {
  it("answers every spec with a task or a typed task-error and a message (3,000 random specs)", () => {
    const binding = createHostBinding({ log: () => undefined });
    binding.attach("p_property");
    const register = (binding.imports["dormant:host/background-tasks@0.1.0"] as { register(spec: TaskSpec): TaskInfo }).register;
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(spec, (candidate) => {
        binding.begin({ tasks: [], limits: DEFAULT_TASK_LIMITS, registrations: { left: Infinity, perSecond: 10 } }, NOW);
        try {
          const info = register(candidate);
          seen.set("registered", (seen.get("registered") ?? 0) + 1);
          expect(info.name).toBe(candidate.name);
          if (info.nextFire !== undefined) {
            expect(info.nextFire).toBeGreaterThanOrEqual(BigInt(NOW));
            expect(info.nextFire).toBeLessThanOrEqual(BigInt(MAX_TIME));
          }
        } catch (error) {
          expect(error).toBeInstanceOf(TaskSpecError);
          const { tag, val } = (error as TaskSpecError).payload;
          seen.set(tag, (seen.get(tag) ?? 0) + 1);
          expect(TAGS).toContain(tag);
          expect(val.length).toBeGreaterThan(20);
          expect(val.length).toBeLessThan(400);
        } finally {
          binding.end();
        }
      }),
      { numRuns: 3000 },
    );
    // The specs reach every check, not just the first.
    // Every refusal but the quota (3,000 specs stay far below it).
    for (const outcome of ["registered", ...TAGS.filter((tag) => tag !== "quota-exceeded")]) {
      expect(seen.get(outcome) ?? 0, outcome).toBeGreaterThan(5);
    }
  });
});

describe("the same boundary through a real guest", () => {
  let h: TestHost;
  let p: string;
  beforeAll(async () => {
    h = await startTestHost();
    p = await recorder(h);
  });
  afterAll(() => h.close());

  const json = fc.record(
    {
      name,
      entry: name,
      at: fc.maxSafeNat(),
      after: fc.maxSafeNat(),
      every: fc.maxSafeNat(),
      cron: cronExpression,
      timezone: fc.string({ maxLength: 40 }),
      payload: fc.oneof(fc.string({ maxLength: 40 }), fc.constant("p".repeat(70_000))),
      priority: fc.integer({ min: 0, max: 255 }),
      retry: fc.record({ maxAttempts: u32, initialBackoffMs: fc.maxSafeNat(), maxBackoffMs: fc.maxSafeNat() }),
    },
    { requiredKeys: ["name"] },
  );

  it("keeps the guest and the host running and answers each with a typed result (150 random specs)", async () => {
    await fc.assert(
      fc.asyncProperty(json, async (candidate) => {
        const outcome = await deliverDirect(h, p, "register", [candidate]);
        expect(outcome.ok).toBe(true);
        const body = JSON.parse(new TextDecoder().decode(outcome.ok ? outcome.reply!.body : new Uint8Array()));
        if (body.error) expect(TAGS).toContain(body.error.tag);
        await deliverDirect(h, p, "cancel", candidate.name);
      }),
      { numRuns: 150 },
    );
    expect(h.events.filter((e) => e.type === "trap")).toEqual([]);
  });
});
