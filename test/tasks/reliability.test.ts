// What happens when things go wrong: downtime (misfires), failing deliveries (retries
// and dead letters), and host restarts.
import { describe, expect, it } from "vitest";
import { JS_ENGINES } from "../support/guests.ts";
import { testHosts } from "../support/host.ts";
import { received, recorder, registerTasks } from "../support/recorder.ts";

const hosts = testHosts();
const host = hosts.start;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe.each(JS_ENGINES)("on %s", (engine) => {
  /** Register a per-minute task under `misfire`, then stop the host for an hour and restart it. */
  async function minuteTaskAfterAnHourDown(misfire: string, options: Parameters<typeof host>[0] = {}) {
    const before = await host(options);
    const t0 = before.now.value;
    const p = await recorder(before, { engine });
    await registerTasks(before, p, { name: "minutely", every: MINUTE, misfire });
    const after = await hosts.restart(before, { ...options, startAt: t0 + HOUR + 30_000 });
    await after.tick(after.now.value);
    return { h: after, p, t0, misfires: after.events.filter((e) => e.type === "misfire") };
  }

  describe("misfires after downtime", () => {
    it("delivers one event standing for every missed occurrence under `fire-once`", async () => {
      const { h, p, t0, misfires } = await minuteTaskAfterAnHourDown("fire-once");
      expect(await received(h, p)).toMatchObject([{ name: "minutely", scheduledAt: t0 + MINUTE, occurrences: 60, attempt: 1 }]);
      expect(misfires).toMatchObject([{ policy: "fire-once", missed: 60, delivered: 1, since: t0 + MINUTE }]);
      expect(h.registry.tasksOf(p)[0]!.nextFire).toBe(t0 + 61 * MINUTE);
      expect(h.tasks.stats).toMatchObject({ misfires: 1, missedOccurrences: 60 });
    });

    it("delivers nothing for the missed occurrences under `skip`, and records the misfire", async () => {
      const { h, p, t0, misfires } = await minuteTaskAfterAnHourDown("skip");
      expect(await received(h, p)).toEqual([]);
      expect(misfires).toMatchObject([{ policy: "skip", missed: 60, delivered: 0 }]);
      await h.tick(t0 + 61 * MINUTE);
      expect(await received(h, p)).toMatchObject([{ scheduledAt: t0 + 61 * MINUTE, occurrences: 1 }]);
    });

    it("delivers every missed occurrence under `fire-all`, up to the host's cap", async () => {
      const { h, p, t0, misfires } = await minuteTaskAfterAnHourDown("fire-all", { misfire: { graceMs: MINUTE, fireAllCap: 25 } });
      const events = await received(h, p);
      expect(events).toHaveLength(25);
      expect(events.map((e) => e.scheduledAt)).toEqual(Array.from({ length: 25 }, (_, i) => t0 + (i + 1) * MINUTE));
      expect(events.every((e) => e.occurrences === 1)).toBe(true);
      expect(misfires).toMatchObject([{ policy: "fire-all", missed: 60, delivered: 25 }]);
    });
  });

  describe("failing deliveries", () => {
    it("retries a failing delivery with exponential backoff (6 attempts from 2 s by default), then dead-letters it", async () => {
      const h = await host();
      const p = await recorder(h, { engine });
      const t0 = h.now.value;
      await registerTasks(h, p, { name: "flaky", after: 1000, payload: "fail:99" });
      let at = t0 + 1000;
      for (const backoff of [2000, 4000, 8000, 16_000, 32_000, 0]) {
        await h.tick(at);
        at += backoff;
      }
      const events = await received(h, p);
      expect(events.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(events.map((e) => e.firedAt - t0)).toEqual([1000, 3000, 7000, 15_000, 31_000, 63_000]);
      expect(events.every((e) => e.scheduledAt === t0 + 1000)).toBe(true);
      const dead = await h.deliveries.deadLetters();
      expect(dead).toMatchObject([{ taskName: "flaky", attempts: 6, lastError: "attempt 6 of flaky failed on purpose", deadAt: t0 + 63_000 }]);
      expect(h.deliveries.pendingDeliveries()).toEqual([]);
      await h.tick(t0 + HOUR);
      expect(await received(h, p)).toHaveLength(6);
    });

    it("stops retrying once an attempt succeeds", async () => {
      const h = await host();
      const p = await recorder(h, { engine });
      const t0 = h.now.value;
      await registerTasks(h, p, { name: "flaky", after: 1000, payload: "fail:2", retry: { maxAttempts: 5, initialBackoffMs: 500, maxBackoffMs: 600 } });
      for (const at of [1000, 1500, 2100, 2700, 10_000]) await h.tick(t0 + at);
      expect((await received(h, p)).map((e) => [e.attempt, e.firedAt - t0])).toEqual([
        [1, 1000],
        [2, 1500],
        [3, 2100],
      ]);
      expect(await h.deliveries.deadLetters()).toEqual([]);
    });

    it("keeps a scheduled retry across a host restart", async () => {
      const first = await host();
      const p = await recorder(first, { engine });
      const t0 = first.now.value;
      await registerTasks(first, p, { name: "flaky", after: 1000, payload: "fail:1" });
      await first.tick(t0 + 1000);
      const second = await hosts.restart(first, { startAt: t0 + 2000 });
      expect(second.deliveries.pendingDeliveries()).toMatchObject([{ taskName: "flaky", attempts: 1, nextAttemptAt: t0 + 3000 }]);
      await second.tick(t0 + 3000);
      expect((await received(second, p)).map((e) => e.attempt)).toEqual([1, 2]);
      expect(second.deliveries.pendingDeliveries()).toEqual([]);
    });

    it("puts a dead letter back for delivery on request", async () => {
      const h = await host();
      const p = await recorder(h, { engine });
      const t0 = h.now.value;
      await registerTasks(h, p, { name: "once", after: 1000, payload: "fail:1", retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 } });
      await h.tick(t0 + 1000);
      const [letter] = await h.deliveries.deadLetters();
      expect(await h.deliveries.retryDeadLetter(letter!.id)).toBe(true);
      await h.settled();
      expect((await received(h, p)).map((e) => e.attempt)).toEqual([1, 2]);
      expect(await h.deliveries.deadLetters()).toEqual([]);
    });
  });

  describe("where registrations live", () => {
    it("keeps `host`-mode registrations in storage and wakes nothing at restart", async () => {
      const first = await host();
      const p = await recorder(first, { engine });
      const t0 = first.now.value;
      await registerTasks(first, p, { name: "beat", every: MINUTE });
      const second = await hosts.restart(first, { startAt: t0 + 1000 });
      expect(second.events.filter((e) => e.type === "activated")).toEqual([]);
      expect(second.registry.tasksOf(p)).toMatchObject([{ name: "beat", nextFire: t0 + MINUTE }]);
      await second.tick(t0 + MINUTE);
      expect(await received(second, p)).toMatchObject([{ name: "beat", scheduledAt: t0 + MINUTE }]);
    });

    it("keeps `guest`-mode registrations out of storage and has the guest re-register them at restart", async () => {
      const first = await host();
      const p = await recorder(first, { engine, registrations: "guest" });
      const t0 = first.now.value;
      await registerTasks(first, p, { name: "beat", every: MINUTE });
      expect(await first.store.registrations.getKeys()).toEqual([]);
      const second = await hosts.restart(first, { startAt: t0 + 1000 });
      expect(second.events.filter((e) => e.type === "activated" || e.type === "reregistered")).toMatchObject([
        { type: "activated", partition: p, kind: "rehydrated", reason: "restored" },
        { type: "reregistered", partition: p },
      ]);
      expect(second.registry.tasksOf(p)).toMatchObject([{ name: "beat", nextFire: t0 + 1000 + MINUTE }]);
      await second.tick(t0 + 1000 + MINUTE);
      expect(await received(second, p)).toMatchObject([{ name: "beat", scheduledAt: t0 + 1000 + MINUTE }]);
    });
  });

  describe("tasks that outlive their partition", () => {
    it("re-provisions a deleted partition when its outliving task fires, and drops the others", async () => {
      const h = await host();
      const p = await recorder(h, { engine });
      const t0 = h.now.value;
      await registerTasks(h, p, { name: "survivor", after: 5000, outlive: true, payload: "still here" }, { name: "mortal", after: 5000 });
      await h.partitions.delete(p);
      expect(h.registry.all().map((t) => t.name)).toEqual(["survivor"]);
      await h.tick(t0 + 5000);
      const [reprovisioned] = h.events.filter((e) => e.type === "reprovisioned");
      expect(reprovisioned).toMatchObject({ from: p, name: "survivor" });
      const fresh = reprovisioned!.partition;
      expect(h.partitions.get(fresh)).toMatchObject({ name: "recorder", component: expect.stringMatching(/^sha256:/) });
      expect(await received(h, fresh)).toMatchObject([{ name: "survivor", payload: "still here", scheduledAt: t0 + 5000 }]);
      expect(h.events.filter((e) => e.type === "activated" && e.partition === fresh)).toMatchObject([{ kind: "reprovisioned", reason: "reprovisioned" }]);
      expect(h.registry.all()).toEqual([]);
    });

    it("gives a re-provisioned partition the deleted one's limits and durability", async () => {
      const h = await host();
      const limits = { cpuDeadlineMs: 1234, memoryBytes: 64 * 2 ** 20, snapshotBytes: 2 ** 20 };
      const p = await recorder(h, { engine, durability: "per-activation", limits });
      await registerTasks(h, p, { name: "survivor", after: 5000, outlive: true });
      await h.partitions.delete(p);
      await h.tick(h.now.value + 5000);
      const [reprovisioned] = h.events.filter((e) => e.type === "reprovisioned");
      expect(h.partitions.get(reprovisioned!.partition)).toMatchObject({ durability: "per-activation", limits });
      expect(h.partitions.limitsOf(reprovisioned!.partition)).toEqual(limits);
    });

    it("removes a deleted partition's tasks when none is flagged to outlive it", async () => {
      const h = await host();
      const p = await recorder(h, { engine });
      const t0 = h.now.value;
      await registerTasks(h, p, { name: "mortal", every: 1000 });
      await h.partitions.delete(p);
      await h.tick(t0 + 5000);
      expect(h.registry.all()).toEqual([]);
      expect(h.events.filter((e) => e.type === "delivered")).toEqual([]);
    });
  });
});
