// A frozen partition is woken `prewarmMs` before its timer is due, so the event finds it
// live; the fake clock is moved by `tick(now)`.
import { describe, expect, it } from "vitest";
import { testHosts, type TestHost } from "../support/host.ts";
import { deliverDirect, registerTasks, recorder } from "../support/recorder.ts";

const hosts = testHosts();
const host = hosts.start;

/** A frozen recorder partition with a one-shot timer `later` due 5 s from `t0`. */
async function frozenWithTimer(h: TestHost) {
  const p = await recorder(h);
  const t0 = h.now.value;
  await registerTasks(h, p, { name: "later", after: 5000 });
  await h.partitions.freeze(p);
  return { p, t0 };
}

describe("waking partitions ahead of their timers", () => {
  it("wakes a frozen partition ahead of its timer, so the event finds it live", async () => {
    const h = await host({ prewarmMs: 1000 });
    const { p, t0 } = await frozenWithTimer(h);
    await h.tick(t0 + 3999);
    expect(h.partitions.stateOf(p)).toBe("frozen");
    await h.tick(t0 + 4000);
    expect(h.partitions.stateOf(p)).toBe("idle");
    const wakes = h.events.filter((e) => e.type === "activated").length;
    await h.tick(t0 + 5000);
    expect(h.events.filter((e) => e.type === "activated")).toHaveLength(wakes);
    expect(h.events.filter((e) => e.type === "delivered")).toMatchObject([
      { name: "later", scheduledAt: t0 + 5000, firedAt: t0 + 5000, outcome: { ok: true } },
    ]);
    expect(h.tasks.stats.prewarmed).toBe(1);
  });

  it("keeps a woken partition live until its timer, however short its idle timeout, then lets it freeze", async () => {
    const h = await host({ prewarmMs: 1000, idleTimeoutMs: 100 });
    const { p, t0 } = await frozenWithTimer(h);
    await h.tick(t0 + 4000);
    await h.tick(t0 + 4999);
    expect(h.partitions.stateOf(p)).toBe("idle");
    await h.tick(t0 + 5000);
    expect(h.events.filter((e) => e.type === "delivered")).toHaveLength(1);
    await h.tick(t0 + 5100);
    expect(h.partitions.stateOf(p)).toBe("frozen");
  });

  it("keeps a live partition whose idle check comes due as it is woken ahead of its timer", async () => {
    const h = await host({ prewarmMs: 1000, idleTimeoutMs: 4000 });
    const p = await recorder(h);
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "later", after: 5000 });
    await h.tick(t0 + 4000);
    expect(h.partitions.stateOf(p)).toBe("idle");
    await h.tick(t0 + 5000);
    expect(h.events.filter((e) => e.type === "frozen" || e.type === "activated").map((e) => e.type)).toEqual(["activated"]);
    expect(h.events.filter((e) => e.type === "delivered")).toMatchObject([{ name: "later", outcome: { ok: true } }]);
  });

  it("wakes no partition ahead of its timer when max-live has no room, and the event wakes it", async () => {
    const h = await host({ prewarmMs: 1000, maxLive: 1 });
    const p = await recorder(h);
    const other = await recorder(h);
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "later", after: 5000 });
    await deliverDirect(h, other, "report");
    await h.partitions.freeze(p); // evicted already, or being evicted
    await h.tick(t0 + 4000);
    expect([h.partitions.stateOf(p), h.partitions.stateOf(other)]).toEqual(["frozen", "idle"]);
    await h.tick(t0 + 5000);
    expect(h.events.filter((e) => e.type === "delivered")).toMatchObject([{ name: "later", outcome: { ok: true } }]);
    expect(h.tasks.stats.prewarmed).toBe(0);
  });

  it("wakes no partition ahead of a task that a constrained budget holds back", async () => {
    const h = await host({ prewarmMs: 1000, budget: { constrained: true, threshold: 200 } });
    const p = await recorder(h);
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "later", after: 5000, priority: 10 });
    await h.partitions.freeze(p);
    await h.tick(t0 + 4000);
    expect(h.partitions.stateOf(p)).toBe("frozen");
    expect(h.tasks.stats.prewarmed).toBe(0);
  });

  it("wakes a partition only when its timer is due when prewarm is 0", async () => {
    const h = await host({ prewarmMs: 0 });
    const { p, t0 } = await frozenWithTimer(h);
    await h.tick(t0 + 4999);
    expect(h.partitions.stateOf(p)).toBe("frozen");
    await h.tick(t0 + 5000);
    expect(h.events.filter((e) => e.type === "activated").at(-1)).toMatchObject({ kind: "rehydrated" });
    expect(h.events.filter((e) => e.type === "delivered")).toMatchObject([{ name: "later", outcome: { ok: true } }]);
  });
});
