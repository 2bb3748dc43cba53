import { readFile, writeFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";
import type { PreparedComponent } from "../../runtime/engine.ts";
import type { ExecutorPool } from "../../runtime/executor/pool.ts";
import { buildComponent } from "../../runtime/toolchain/build.ts";
import type { TaskEffects } from "../../src/tasks/executor/background-tasks.ts";
import { bodyText, event, LIMITS, noTasks, startPool } from "../support/runtime.ts";

const guests = inject("guests");
let pool: ExecutorPool;
let counter: PreparedComponent;
let wat: PreparedComponent;
const logs: { partition: string; message: string }[] = [];

beforeAll(async () => {
  pool = await startPool({ onLog: (partition, _level, message) => logs.push({ partition, message }) });
  counter = await pool.prepare(await readFile(guests.counter));
  wat = await pool.prepare(await readFile(guests.wat));
});
afterAll(() => pool.close());

async function push(partition: string): Promise<Record<string, unknown>> {
  const { outcome } = await pool.call(partition, event("push"), noTasks(), 0, LIMITS);
  if (!outcome.ok) throw new Error(outcome.error);
  return JSON.parse(bodyText(outcome.reply?.body)) as Record<string, unknown>;
}

describe("partitions in executors", () => {
  it("keeps independent state in two partitions of one component", async () => {
    await pool.activate("indep-a", { component: counter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    await pool.activate("indep-b", { component: counter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    await push("indep-a");
    await push("indep-a");
    expect((await push("indep-a")).count).toBe(3);
    expect((await push("indep-b")).count).toBe(1);
  });

  it("keeps state in a hand-written WAT guest across calls", async () => {
    await pool.activate("wat-a", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    for (const expected of ["1", "2", "3"]) {
      const { outcome } = await pool.call("wat-a", event("tick"), noTasks(), 0, LIMITS);
      expect(outcome.ok && bodyText(outcome.reply?.body)).toBe(expected);
    }
  });

  it("runs guest code off the main thread, which keeps its timers running", async () => {
    await pool.activate("spinner", { component: counter, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const call = pool.call("spinner", event("spin", "5000000"), noTasks(), 0, LIMITS);
    const result = await call;
    clearInterval(timer);
    expect(result.outcome.ok).toBe(true);
    // The guest ran for many timer periods; the main thread's interval kept firing.
    expect(result.ms).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThan(result.ms / 5 / 4);
  });

  it("hands a partition's registrations back as effects of the call, tagged with that partition", async () => {
    const { outcome, effects } = await pool.call("indep-a", event("register", JSON.stringify({ name: "later", entry: "tick" })), noTasks(), 1000, LIMITS);
    expect(outcome.ok).toBe(true);
    const { upserts } = effects as TaskEffects;
    expect(upserts.map((task) => [task.partition, task.name, task.nextFire])).toEqual([["indep-a", "later", 2000]]);
  });

  it("shows a partition only the tasks the host passes for it", async () => {
    const state = noTasks();
    const { effects } = await pool.call("indep-a", event("register", JSON.stringify({ name: "mine", entry: "tick" })), state, 0, LIMITS);
    const mine = (effects as TaskEffects).upserts;
    const forB = await pool.call("indep-b", event("register", JSON.stringify({ name: "other", entry: "tick" })), noTasks(), 0, LIMITS);
    expect(JSON.parse(bodyText(forB.outcome.ok ? forB.outcome.reply?.body : undefined)).names).toEqual(["other"]);
    const forA = await pool.call("indep-a", event("register", JSON.stringify({ name: "again", entry: "tick" })), { ...state, tasks: mine }, 0, LIMITS);
    expect(JSON.parse(bodyText(forA.outcome.ok ? forA.outcome.reply?.body : undefined)).names).toEqual(["again", "mine"]);
  });

  it("attributes each log line to the partition that wrote it", async () => {
    logs.length = 0;
    await pool.activate("logger", { component: wat, reason: "fresh", host: noTasks(), now: 0, spareInstances: 1, limits: LIMITS });
    expect(logs).toEqual([{ partition: "logger", message: "wat-minimal activated" }]);
  });

  it("returns a guest's error result as a failed outcome, not a crash", async () => {
    const { outcome } = await pool.call("indep-b", event("fail"), noTasks(), 0, LIMITS);
    expect(outcome).toEqual({ ok: false, error: "asked to fail at count 1" });
    expect((await push("indep-b")).count).toBe(2);
  });
});

describe("bad components", () => {
  it("rejects bytes that are not WebAssembly", async () => {
    await expect(pool.prepare(new TextEncoder().encode("#!/bin/sh\necho hi\n"))).rejects.toThrow(/Not a WebAssembly file.*dormant build/s);
  });

  it("rejects a core module, saying a component is needed", async () => {
    const core = await parse("(module (func (export \"f\")))");
    await expect(pool.prepare(core)).rejects.toThrow(/core WebAssembly module, not a component/);
  });

  it("rejects a damaged component", async () => {
    const bytes = new Uint8Array(await readFile(guests.wat)).slice(0, 200);
    await expect(pool.prepare(bytes)).rejects.toThrow(/could not be decoded/);
  });

  it("rejects a component for another world, naming what is missing and what is extra", async () => {
    const core = await parse('(module (import "wasi:cli/environment@0.2.0" "get-arguments" (func (param i32))) (memory (export "memory") 1) (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0) (func (export "run") (result i32) i32.const 0))');
    const witSource = `package other:thing;
      world other { import wasi:cli/environment@0.2.0; export run: func() -> u32; }
      package wasi:cli@0.2.0 { interface environment { get-arguments: func() -> list<string>; } }`;
    const component = await componentNew(await componentEmbed({ binary: core, witSource, world: "other" }));
    const prepared = pool.prepare(component);
    await expect(prepared).rejects.toThrow(/does not target the dormant:host\/partition@0\.1\.0 world/);
    await expect(prepared).rejects.toThrow(/imports wasi:cli\/environment/);
    await expect(prepared).rejects.toThrow(/does not export dormant:host\/handler@0\.1\.0 and dormant:host\/lifecycle@0\.1\.0/);
  });

  it("reports a trap during instantiation and keeps the executor working", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dormant-trap-"));
    const source = (await readFile(new URL("../../guests/wat-minimal/wat-minimal.wat", import.meta.url), "utf8")).replace(
      /\)\s*$/,
      "(func $boom unreachable) (start $boom))",
    );
    await writeFile(join(dir, "trap.wat"), source);
    const trapping = await pool.prepare(await buildComponent(join(dir, "trap.wat"), { witDir: new URL("../../wit", import.meta.url).pathname }));
    await expect(pool.activate("trapper", { component: trapping, reason: "fresh", host: noTasks(), now: 0, spareInstances: 0, limits: LIMITS })).rejects.toThrow(
      /trapped while being instantiated: unreachable/,
    );
    expect(pool.isLive("trapper")).toBe(false);
    expect((await push("indep-a")).count).toBeGreaterThan(0);
  });
});
