// Activation quotas against a hostile guest: a partition's own timers and retries, and
// its registrations, are held to its quota however it registers them. A push to
// `<door>/renew` (or `/renew-at`) makes the guest's `renew` task re-register itself
// `after(1)` (or `at(0)`) each time it runs; `/renewals` counts the runs.
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/scheduler/clock.ts";
import { startTestHost, type TestHost } from "../support/host.ts";
import { call, recorder } from "../support/recorder.ts";
import { startHostile, type HostileServer } from "./hostile.ts";

const QUOTA = { perSecond: 10, burst: 20 };
let open: (HostileServer | TestHost)[] = [];
afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});

async function renewalsOver(path: string, ms: number): Promise<{ renewals: number; elapsed: number; s: HostileServer }> {
  const s = await startHostile({ clock: systemClock, activationQuota: QUOTA });
  open.push(s);
  const started = performance.now();
  expect((await fetch(`${s.door}${path}`, { method: "POST" })).status).toBe(200);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const { renewals } = (await (await fetch(`${s.door}/renewals`)).json()) as { renewals: number };
  return { renewals, elapsed: (performance.now() - started) / 1000, s };
}

describe("activation quotas", () => {
  it("hold a task that renews itself every 1 ms to the partition's activation rate", async () => {
    const { renewals, elapsed, s } = await renewalsOver("/renew", 1500);
    expect(renewals).toBeGreaterThan(QUOTA.burst / 2);
    expect(renewals).toBeLessThanOrEqual(QUOTA.burst + Math.ceil(elapsed * QUOTA.perSecond) + 1);
    expect(s.events.some((e) => e.type === "throttled")).toBe(true);
  });

  it("hold a task that renews itself at(0) to the partition's activation rate", async () => {
    const { renewals, elapsed } = await renewalsOver("/renew-at", 1500);
    expect(renewals).toBeGreaterThan(QUOTA.burst / 2);
    expect(renewals).toBeLessThanOrEqual(QUOTA.burst + Math.ceil(elapsed * QUOTA.perSecond) + 1);
  });

  it("refuse registrations beyond the partition's registration quota with a typed task-error", async () => {
    const h = await startTestHost({ registrationQuota: { perSecond: 1, burst: 3 } });
    open.push(h);
    const p = await recorder(h);
    const specs = ["a", "b", "c", "d"].map((name) => ({ name, every: 60_000 }));
    const { status, body } = await call(h, p, "register", specs);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ tag: "quota-exceeded", val: expect.stringMatching(/faster than its quota of 1 a second/) });
  });
});
