// A runaway or greedy guest is stopped and contained: the event fails (and retries), its
// neighbours come back from their snapshots, and everyone else keeps time.
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

  it("brings the other partitions of the stopped executor back from their last snapshots", async () => {
    const h = await host({ executors: 1, partitionLimits: { cpuDeadlineMs: 500 } });
    const runaway = await recorder(h);
    const neighbour = await recorder(h);
    await deliverDirect(h, neighbour, "note", "frozen with me");
    await h.partitions.freeze(neighbour);
    await deliverDirect(h, neighbour, "note", "only in memory"); // live, not yet frozen: lost with the executor
    const t0 = h.now.value;
    await registerTasks(h, runaway, {
      name: "runaway",
      after: 1000,
      entry: "spin",
      payload: FOREVER,
      retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 },
    });
    await h.tick(t0 + 1000);
    expect(h.partitions.stateOf(neighbour)).toBe("frozen");
    expect((await received(h, neighbour)).map((e) => e.payload)).toEqual(["frozen with me"]);
    expect(h.events.filter((e) => e.type === "activated" && e.partition === neighbour).at(-1)).toMatchObject({ kind: "rehydrated" });
    expect(await h.deliveries.deadLetters()).toMatchObject([{ taskName: "runaway", lastError: expect.stringMatching(/deadline/) }]);
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
  it("fails a call that grows linear memory past the partition's cap, with a clear error, and keeps the last snapshot", async () => {
    const h = await host();
    const component = await h.deploy("recorder");
    const p = (await h.partitions.create({ name: "greedy", component, limits: { memoryBytes: 48 * 2 ** 20 } })).id;
    await registerTasks(h, p, { name: "kept", every: 60_000 });
    await h.partitions.freeze(p);
    await expect(deliverDirect(h, p, "grow", String(64 * 2 ** 20))).rejects.toThrow(/grew its linear memory to [\d.]+ MiB in task grow, over its 48.0 MiB cap/);
    expect(h.partitions.stateOf(p)).toBe("frozen");
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
