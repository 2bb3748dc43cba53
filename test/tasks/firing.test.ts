// Timers fire when they come due, with the fake clock moved by `tick(now)`.
import { describe, expect, it } from "vitest";
import { JS_ENGINES } from "../support/guests.ts";
import { testHosts } from "../support/host.ts";
import { call, deliverDirect, received, recorder, registerTasks } from "../support/recorder.ts";

const hosts = testHosts();
const host = hosts.start;

describe.each(JS_ENGINES)("firing timers on %s", (engine) => {
  it("fires an `after` one-shot once, when it comes due, and then retires it", async () => {
    const h = await host();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "once", after: 5000, payload: "hello" });
    await h.tick(t0 + 4999);
    expect(await received(h, p)).toEqual([]);
    await h.tick(t0 + 5000);
    await h.tick(t0 + 60_000);
    const events = await received(h, p);
    expect(events).toMatchObject([{ name: "once", entry: "record", payload: "hello", scheduledAt: t0 + 5000, firedAt: t0 + 5000, attempt: 1, occurrences: 1 }]);
    expect(h.registry.tasksOf(p)).toEqual([]);
  });

  it("fires an `at` one-shot at its instant, and one set in the past at once", async () => {
    const h = await host();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "later", at: t0 + 2500 }, { name: "past", at: t0 - 10_000 });
    await h.tick(t0);
    await h.tick(t0 + 2500);
    expect((await received(h, p)).map((e) => [e.name, e.scheduledAt])).toEqual([
      ["past", t0],
      ["later", t0 + 2500],
    ]);
  });

  it("fires an interval every period, keeping its phase when a tick comes late", async () => {
    const h = await host();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "beat", every: 1000 });
    for (const at of [1000, 2000, 3400, 4000]) await h.tick(t0 + at);
    expect((await received(h, p)).map((e) => e.scheduledAt - t0)).toEqual([1000, 2000, 3000, 4000]);
    expect(h.registry.tasksOf(p)[0]!.nextFire).toBe(t0 + 5000);
  });

  it("fires a cron schedule in its time zone across a spring-forward change", async () => {
    const h = await host();
    h.now.value = Date.parse("2027-03-26T12:00:00Z");
    const p = await recorder(h, { engine });
    await registerTasks(h, p, { name: "nightly", cron: "30 2 * * *", timezone: "Europe/Berlin" });
    // 02:30 does not exist in Berlin on 28 March 2027: that night it fires at 03:00 CEST.
    const expected = ["2027-03-27T01:30:00.000Z", "2027-03-28T01:00:00.000Z", "2027-03-29T00:30:00.000Z"];
    for (const at of expected) await h.tick(Date.parse(at));
    expect((await received(h, p)).map((e) => new Date(e.scheduledAt).toISOString())).toEqual(expected);
  });

  it("replaces a task registered again under the same name, dropping its old next fire", async () => {
    const h = await host();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    const [first] = await registerTasks(h, p, { name: "job", every: 1000 });
    const [second] = await registerTasks(h, p, { name: "job", every: 5000, payload: "v2" });
    expect(second!.id).toBe(first!.id);
    expect(h.registry.tasksOf(p)).toHaveLength(1);
    await h.tick(t0 + 1000);
    expect(await received(h, p)).toEqual([]);
    await h.tick(t0 + 5000);
    expect(await received(h, p)).toMatchObject([{ name: "job", payload: "v2", scheduledAt: t0 + 5000 }]);
  });

  it("never fires a cancelled task", async () => {
    const h = await host();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "job", after: 1000 });
    expect((await call(h, p, "cancel", "job")).body).toEqual({ cancelled: true });
    expect((await call(h, p, "cancel", "job")).body).toEqual({ cancelled: false });
    await h.tick(t0 + 1000);
    expect(await received(h, p)).toEqual([]);
    expect((await call(h, p, "list")).body.tasks).toEqual([]);
  });

  it("lists a partition's tasks with their next fire time, and only its own", async () => {
    const h = await host();
    const a = await recorder(h, { engine });
    const b = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, a, { name: "a-job", every: 2000 });
    await registerTasks(h, b, { name: "b-job", after: 3000 });
    expect((await call(h, a, "list")).body.tasks).toMatchObject([{ name: "a-job", nextFire: t0 + 2000 }]);
    expect((await call(h, b, "list")).body.tasks).toMatchObject([{ name: "b-job", nextFire: t0 + 3000 }]);
    expect((await call(h, b, "cancel", "a-job")).body).toEqual({ cancelled: false });
  });

  it("discards registrations made by a call that fails, so they never fire", async () => {
    const h = await host();
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    const outcome = await deliverDirect(h, p, "register-then-fail", [{ name: "ghost", after: 1000 }]);
    expect(outcome).toMatchObject({ ok: false });
    await h.tick(t0 + 1000);
    expect(await received(h, p)).toEqual([]);
    expect(h.registry.tasksOf(p)).toEqual([]);
  });

  it("wakes a frozen partition to deliver, and freezes it again when idle", async () => {
    const h = await host({ idleTimeoutMs: 1000 });
    const p = await recorder(h, { engine });
    const t0 = h.now.value;
    await registerTasks(h, p, { name: "beat", every: 60_000 });
    await h.partitions.freeze(p);
    expect(h.partitions.stateOf(p)).toBe("frozen");
    await h.tick(t0 + 60_000);
    await h.tick(t0 + 61_000);
    expect(h.partitions.stateOf(p)).toBe("frozen");
    expect(h.events.filter((e) => e.type === "activated").map((e) => e.type === "activated" && e.kind)).toContain("rehydrated");
    expect(await received(h, p)).toMatchObject([{ name: "beat", scheduledAt: t0 + 60_000 }]);
  });

  it("fires on the real clock when no clock is injected", async () => {
    const h = await host({ clock: undefined });
    const p = await recorder(h, { engine });
    await registerTasks(h, p, { name: "soon", after: 30 });
    expect(await h.waitFor((e) => e.type === "delivered")).toMatchObject({ type: "delivered", name: "soon", outcome: { ok: true } });
  });
});
