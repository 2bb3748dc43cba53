// One executor, guests that misbehave: a runaway call is stopped without touching its
// neighbours, a deadline counts only the guest's own run time, and a memory cap stops a
// grab inside the call. The guests are wat-minimal with one function changed.
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PreparedComponent } from "../../runtime/engine.ts";
import type { ExecutorPool } from "../../runtime/executor/pool.ts";
import { buildComponent } from "../../runtime/toolchain/build.ts";
import { bodyText, event, noTasks, startPool } from "../support/runtime.ts";

const SOURCE = new URL("../../guests/wat-minimal/wat-minimal.wat", import.meta.url);
/** on-activate's first instruction. */
const ON_ACTIVATE = "(i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))";
/** on-task's first instruction, after its locals. */
const ON_TASK = "(global.set $count (i32.add (global.get $count) (i32.const 1)))";

/** wat-minimal with `extra` inserted before `anchor`. */
async function watGuest(pool: ExecutorPool, anchor: string, extra: string): Promise<PreparedComponent> {
  const source = (await readFile(SOURCE, "utf8")).replace(anchor, `${extra}\n${anchor}`);
  const dir = await mkdtemp(join(tmpdir(), "dormant-deadline-guest-"));
  await writeFile(join(dir, "guest.wat"), source);
  return pool.prepare(await buildComponent(join(dir, "guest.wat"), { witDir: new URL("../../wit", import.meta.url).pathname }));
}

/** Loops forever in on-task. */
const FOREVER = "(loop $forever (br $forever))";
/** ~150 ms of work in on-activate (150 million loop rounds; 50-500 ms by machine and load). */
const SLOW_ACTIVATE = `(global.set $heap (i32.const 0))
  (loop $work (global.set $heap (i32.add (global.get $heap) (i32.const 1))) (br_if $work (i32.lt_u (global.get $heap) (i32.const 150000000))))
  (global.set $heap (i32.const 4096))`;
/** Grows memory by 1 GiB and touches every byte of it; answers an error if the grow is refused. */
const GRAB = `(if (i32.eq (memory.grow (i32.const 16384)) (i32.const -1))
    (then
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.store (i32.const 20) (i32.const 128))
      (i32.store (i32.const 24) (i32.const 11))
      (return (i32.const 16))))
  (memory.fill (i32.const 65536) (i32.const 1) (i32.const 1073741824))`;

const MiB = 2 ** 20;
const LIMITS = { deadlineMs: 2000, memoryBytes: 64 * MiB };

let pool: ExecutorPool;
let wat: PreparedComponent;
beforeAll(async () => {
  pool = await startPool({ size: 1 });
  wat = await pool.prepare(await readFile(inject("guests").wat));
});
afterAll(() => pool.close());

async function tick(partition: string): Promise<string> {
  const { outcome } = await pool.call(partition, event("tick"), noTasks(), 0, LIMITS);
  if (!outcome.ok) throw new Error(outcome.error);
  return bodyText(outcome.reply?.body);
}

describe("one executor", () => {
  it("stops a runaway call at its deadline while a neighbour keeps its live, unsaved state", async () => {
    const runaway = await watGuest(pool, ON_TASK, FOREVER);
    await pool.activate("healthy", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    expect([await tick("healthy"), await tick("healthy")]).toEqual(["1", "2"]);
    await pool.activate("runaway", { component: runaway, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    const stopped = pool.call("runaway", event("tick"), noTasks(), 0, { ...LIMITS, deadlineMs: 300 });
    const queued = tick("healthy"); // waits behind the runaway, and runs once it is stopped
    await expect(stopped).rejects.toMatchObject({
      code: "guest-deadline",
      message: expect.stringMatching(/ran past its 300 ms deadline in task tick; the call was stopped/),
    });
    expect(await queued).toBe("3");
    expect(pool.isLive("runaway")).toBe(false);
    expect(pool.isLive("healthy")).toBe(true);
    expect(pool.runaways.runaways).toBe(1);
  });

  it("gives a runaway sent after quick calls its whole deadline, counted from its own start, and then stops it", async () => {
    const runaway = await watGuest(pool, ON_TASK, FOREVER);
    await pool.activate("quick", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    // Quick calls with a short deadline, the first one 250 ms before the runaway's start: the
    // executor's deadline checks are then due before the runaway's own deadline is.
    const short = { ...LIMITS, deadlineMs: 400 };
    for (let i = 0; i < 5; i++) {
      await pool.call("quick", event("tick"), noTasks(), 0, short);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await pool.activate("late-runaway", { component: runaway, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    const sent = performance.now();
    const stopped = pool.call("late-runaway", event("tick"), noTasks(), 0, short);
    await expect(stopped).rejects.toMatchObject({ code: "guest-deadline" });
    // Not before its own 400 ms (a millisecond spared for the two threads' clock origins).
    expect(performance.now() - sent).toBeGreaterThanOrEqual(399);
    expect(pool.isLive("quick")).toBe(true);
  });

  it("counts a deadline from when the executor starts the request: 120 queued activations of ~150 ms each all succeed", async () => {
    const slow = await watGuest(pool, ON_ACTIVATE, SLOW_ACTIVATE);
    const activations = Array.from({ length: 120 }, (_, i) =>
      pool.activate(`slow-${i}`, { component: slow, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS }),
    );
    const results = await Promise.allSettled(activations);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
  }, 120_000);

  it("fails a 1 GiB grab inside the call at the partition's memory cap, the host's memory staying far below it", async () => {
    const grab = await watGuest(pool, ON_TASK, GRAB);
    await pool.activate("grabber", { component: grab, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    const { outcome } = await pool.call("grabber", event("tick"), noTasks(), 0, LIMITS);
    expect(outcome).toEqual({ ok: false, error: "wat-minimal" }); // the guest's own answer to a refused memory.grow
    expect(pool.isLive("grabber")).toBe(true);
    expect(process.resourceUsage().maxRSS * 1024).toBeLessThan(512 * MiB);
  });

  it("stops an activation's carried event at the deadline as the event's failure, not the activation's", async () => {
    const runaway = await watGuest(pool, ON_TASK, FOREVER);
    const waking = pool.activate("wakes-into-a-loop", {
      component: runaway,
      reason: "fresh",
      host: noTasks(),
      now: 0,
      spareInstances: 0,
      limits: { ...LIMITS, deadlineMs: 300 },
      event: event("tick"),
    });
    await expect(waking).rejects.toMatchObject({
      code: "guest-deadline",
      message: expect.stringMatching(/ran past its 300 ms deadline in task tick/),
      details: { phase: "call" },
    });
    expect(pool.isLive("wakes-into-a-loop")).toBe(false);
  });

  it("answers an activation whose carried event trapped with the trap, leaving the partition not live", async () => {
    const trapping = await watGuest(pool, ON_TASK, "unreachable");
    const activated = await pool.activate("wakes-into-a-trap", {
      component: trapping,
      reason: "fresh",
      host: noTasks(),
      now: 0,
      spareInstances: 0,
      limits: LIMITS,
      event: event("tick"),
    });
    expect(activated.first).toMatchObject({ ok: false, error: { code: "guest-trap", message: expect.stringMatching(/trapped handling task tick/) } });
    expect(pool.isLive("wakes-into-a-trap")).toBe(false);
    // The executor lives on.
    await pool.activate("after-the-trap", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    expect(await tick("after-the-trap")).toBe("1");
  });
});
