// A runaway or greedy guest is stopped and contained: the event fails (and retries), only
// its own call is lost, and everyone else keeps their state and their time.
import { describe, expect, it } from "vitest";
import { testHosts } from "../support/host.ts";
import type { HostEvent } from "../../src/host.ts";
import { call, deliverDirect, received, recorder, registerTasks } from "../support/recorder.ts";

type DeliveredEvent = Extract<HostEvent, { type: "delivered" }>;

const hosts = testHosts();
const host = hosts.start;

const FOREVER = "1000000000000";

describe("CPU deadline", () => {
  it("stops a guest in an infinite loop at its deadline, fails the event and schedules a retry", async () => {
    const h = await host({ partitionLimits: { cpuDeadlineMs: 500 } });
    const p = await recorder(h);
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "runaway", after: 1000, entry: "spin", payload: FOREVER });
    await h.partitions.freeze(p);
    await h.tick(t0 + 1000);
    const [attempt] = h.events.filter((e) => e.type === "delivered");
    expect(attempt).toMatchObject({
      name: "runaway",
      outcome: { ok: false, error: expect.stringMatching(/DormantError \[guest-deadline\]: Partition .* ran past its 500 ms deadline in task runaway/) },
    });
    expect(h.events.filter((e) => e.type === "retry-scheduled")).toMatchObject([{ name: "runaway", attempt: 2 }]);
    // The partition comes back, from its last snapshot, for the next event.
    expect((await call(h, p, "list")).status).toBe(200);
    expect(h.events.filter((e) => e.type === "activated" && e.partition === p).at(-1)).toMatchObject({ kind: "rehydrated" });
  });

  it("stops only the runaway call: a neighbour on the same executor keeps its unsaved state and its timer fires on time", async () => {
    const h = await host({ clock: undefined, executors: 1, partitionLimits: { cpuDeadlineMs: 500 } });
    const runaway = await recorder(h);
    const neighbour = await recorder(h);
    await registerTasks(h, neighbour, { name: "beat", every: 1000 });
    await deliverDirect(h, neighbour, "note", "only in memory"); // live, never frozen
    const spinning = deliverDirect(h, runaway, "spin", FOREVER);
    const beats: DeliveredEvent[] = [];
    for (let i = 0; i < 2; i++) {
      const isNewBeat = (e: HostEvent): e is DeliveredEvent => e.type === "delivered" && e.name === "beat" && !beats.includes(e);
      beats.push(await h.waitFor(isNewBeat));
    }
    await expect(spinning).rejects.toThrow(/ran past its 500 ms deadline in task spin; the call was stopped/);
    for (const beat of beats) {
      expect(beat.outcome.ok).toBe(true);
      expect(beat.firedAt - beat.scheduledAt).toBeLessThan(250);
    }
    expect(h.partitions.stateOf(neighbour)).toBe("idle");
    expect((await received(h, neighbour)).map((e) => e.payload)).toEqual(expect.arrayContaining(["only in memory"]));
    expect(h.events.filter((e) => e.type === "activated" && e.partition === neighbour)).toHaveLength(1);
  });

  it("quarantines a partition that ran away twice in a row, refusing its activation with a clear error until the back-off ends", async () => {
    const h = await host({ executors: 1, partitionLimits: { cpuDeadlineMs: 300 } });
    const p = await recorder(h);
    await h.partitions.freeze(p);
    for (let i = 0; i < 2; i++) await expect(deliverDirect(h, p, "spin", FOREVER)).rejects.toThrow(/deadline/);
    await expect(deliverDirect(h, p, "list")).rejects.toMatchObject({
      code: "partition-quarantined",
      message: expect.stringMatching(/ran past its deadline 2 times in a row, so it is not activated until .* raise the partition's cpuDeadlineMs/),
    });
    expect(h.logs).toContainEqual({ partition: p, message: expect.stringMatching(/quarantined until/) });
    await h.tick(h.now.value + 31_000);
    expect((await call(h, p, "list")).status).toBe(200);
  });

  it("keeps another partition's timer on time while a guest loops forever", async () => {
    const h = await host({ clock: undefined, executors: 2, partitionLimits: { cpuDeadlineMs: 4000 } });
    const runaway = await recorder(h);
    const steady = await recorder(h);
    await registerTasks(h, steady, { name: "beat", every: 1000 });
    await h.partitions.freeze(steady);
    const spinning = deliverDirect(h, runaway, "spin", FOREVER);
    const beats: DeliveredEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const isNewBeat = (e: HostEvent): e is DeliveredEvent => e.type === "delivered" && e.name === "beat" && !beats.includes(e);
      beats.push(await h.waitFor(isNewBeat));
    }
    await expect(spinning).rejects.toThrow(/deadline/);
    for (const beat of beats) {
      expect(beat.outcome.ok).toBe(true);
      expect(beat.firedAt - beat.scheduledAt).toBeLessThan(250);
    }
  });
});

describe("memory cap", () => {
  it("fails a guest's allocation past the partition's cap inside the call, saying so, and the partition keeps its state", async () => {
    const h = await host();
    const component = await h.deploy("recorder");
    const p = (await h.partitions.create({ name: "greedy", component, limits: { memoryBytes: 48 * 2 ** 20 } })).id;
    await registerTasks(h, p, { name: "kept", every: 60_000 });
    const outcome = await deliverDirect(h, p, "grow", String(64 * 2 ** 20));
    expect(outcome).toMatchObject({ ok: false, error: expect.stringMatching(/out of memory \(its linear memory holds [\d.]+ MiB of its 48.0 MiB cap; raise/) });
    expect((await call(h, p, "list")).body.tasks).toMatchObject([{ name: "kept" }]);
  });

  it("refuses to freeze a partition whose snapshot is over its cap, keeping it live", async () => {
    const h = await host();
    const component = await h.deploy("recorder");
    const p = (await h.partitions.create({ name: "bulky", component, limits: { snapshotBytes: 4096 } })).id;
    await call(h, p, "list");
    await h.partitions.freezeAll();
    expect(h.partitions.stateOf(p)).toBe("idle");
    expect(h.events.find((e) => e.type === "freeze-failed")).toMatchObject({
      partition: p,
      error: { message: expect.stringMatching(/over its 4096-byte cap. It stays live/) },
    });
    expect(await received(h, p)).toEqual([]);
  });
});
