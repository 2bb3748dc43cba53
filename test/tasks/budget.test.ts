// The activation budget: under a constraint only important tasks run; the rest wait
// (or are dropped if their spec says so), and every such decision is counted.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { JS_ENGINES } from "../support/guests.ts";
import { ActivationBudget } from "../../src/budget/budget.ts";
import { PowerFile } from "../../src/budget/power-file.ts";
import { testHosts } from "../support/host.ts";
import { received, recorder, registerTasks } from "../support/recorder.ts";

const hosts = testHosts();

describe.each(JS_ENGINES)("constrained mode on %s", (engine) => {
  it("postpones low-priority tasks while constrained and runs them when the constraint lifts", async () => {
    const h = await hosts.start({ budget: { constrained: true, threshold: 100 } });
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(
      h,
      p,
      { name: "low", after: 1000, priority: 10 },
      { name: "high", after: 1000, priority: 200 },
      { name: "edge", after: 1000, priority: 100 },
    );
    await h.tick(t0 + 1000);
    expect((await received(h, p)).map((e) => e.name).sort()).toEqual(["edge", "high"]);
    expect(h.deliveries.stats.postponed).toEqual({ 10: 1 });
    expect(h.events.filter((e) => e.type === "postponed")).toMatchObject([{ name: "low", priority: 10, scheduledAt: t0 + 1000 }]);
    h.now.value = t0 + 5000;
    h.budget.set({ constrained: false });
    await h.settled();
    expect((await received(h, p)).filter((e) => e.name === "low")).toMatchObject([{ scheduledAt: t0 + 1000, firedAt: t0 + 5000 }]);
    expect(h.registry.tasksOf(p)).toEqual([]);
  });

  it("drops a low-priority occurrence whose spec says `drop`, counting it, and keeps the schedule", async () => {
    const h = await hosts.start({ budget: { constrained: true, threshold: 100 } });
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "sample", every: 1000, priority: 5, whenConstrained: "drop" });
    await h.tick(t0 + 1000);
    await h.tick(t0 + 2000);
    expect(await received(h, p)).toEqual([]);
    expect(h.deliveries.stats.dropped).toEqual({ 5: 2 });
    h.budget.set({ constrained: false });
    await h.tick(t0 + 3000);
    expect((await received(h, p)).map((e) => e.scheduledAt - t0)).toEqual([3000]);
  });

  it("takes a low-priority retry back when a constraint starts, and retries it when it lifts", async () => {
    const h = await hosts.start();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "flaky", after: 1000, payload: "fail:1", priority: 1 });
    await h.tick(t0 + 1000);
    h.budget.set({ constrained: true, threshold: 50 });
    await h.tick(t0 + 3000);
    expect((await received(h, p)).map((e) => e.attempt)).toEqual([1]);
    h.budget.set({ constrained: false });
    await h.settled();
    expect((await received(h, p)).map((e) => e.attempt)).toEqual([1, 2]);
  });

  it("switches with a power-state file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dormant-power-"));
    const path = join(dir, "power");
    const budget = new ActivationBudget();
    const errors: Error[] = [];
    const power = new PowerFile(path, budget, (error) => errors.push(error));
    await power.check();
    expect(budget.state.constrained).toBe(false);
    await writeFile(path, "constrained 40\n");
    await power.check();
    expect(budget.state).toMatchObject({ constrained: true, threshold: 40 });
    await writeFile(path, "on battery, please");
    await power.check();
    expect(budget.state.constrained).toBe(true);
    expect(errors[0]?.message).toMatch(/write "normal", "constrained" or "constrained <priority 0-255>"/);
    await writeFile(path, "normal");
    await power.check();
    expect(budget.state.constrained).toBe(false);
  });
});

describe("activation budget", () => {
  it("runs waiting work highest priority first when slots free up", async () => {
    const budget = new ActivationBudget({ maxConcurrent: 1 });
    const order: number[] = [];
    let release!: () => void;
    const first = budget.run(0, () => new Promise<void>((resolve) => (release = resolve)));
    const waiting = [3, 200, 50, 200].map((priority) => budget.run(priority, async () => void order.push(priority)));
    expect(budget.waiting).toBe(4);
    release();
    await Promise.all([first, ...waiting]);
    expect(order).toEqual([200, 200, 50, 3]);
    expect(budget.running).toBe(0);
  });

  it("never runs more than maxConcurrent at once", async () => {
    const budget = new ActivationBudget({ maxConcurrent: 3 });
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        budget.run(i % 7, async () => {
          most = Math.max(most, ++running);
          await new Promise((resolve) => setImmediate(resolve));
          running--;
        }),
      ),
    );
    expect(most).toBe(3);
  });

  it("refuses a budget that makes no sense, naming the field", () => {
    const budget = new ActivationBudget();
    expect(() => budget.set({ maxConcurrent: 0 })).toThrow(/maxConcurrent must be a whole number/);
    expect(() => budget.set({ threshold: 256 })).toThrow(/threshold must be a priority from 0 to 255/);
    expect(budget.state.maxConcurrent).toBe(64);
  });
});

describe("events waiting for a budget slot", () => {
  it("keeps their partition from freezing for idleness while they wait", async () => {
    const h = await hosts.start({ budget: { maxConcurrent: 1 }, idleTimeoutMs: 10_000, prewarmMs: 0 });
    const slow = await recorder(h);
    const waiting = await recorder(h);
    const t0 = h.now.value;
    await registerTasks(h, slow, { name: "slow", after: 5000, entry: "spin", payload: "5000000" });
    await registerTasks(h, waiting, { name: "quick", after: 5001 });
    const ticking = h.tick(t0 + 5001);
    await vi.waitUntil(() => h.partitions.stateOf(slow) === "active", { interval: 1, timeout: 10_000 });
    // The idle check of the waiting partition comes due while its event waits behind the slow one.
    h.now.value = t0 + 20_000;
    await ticking;
    await h.tick(t0 + 20_000);
    expect(h.events.filter((e) => e.type === "delivered").map((e) => e.type === "delivered" && e.name)).toEqual(["slow", "quick"]);
    expect(h.events.filter((e) => e.type === "activated" && e.partition === waiting)).toHaveLength(1);
    expect(h.events.filter((e) => e.type === "frozen" && e.partition === waiting)).toEqual([]);
  });
});
