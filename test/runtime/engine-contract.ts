/**
 * Behaviour every engine implementation must share (in the spirit of hono's
 * `runTest({ newRouter })`), for every guest flavour it runs. A harness supplies `open`,
 * which creates the engine as an executor would, and the guests: each with a `step` that
 * sends one event changing the guest's state and reads back the count it reports.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";
import { beforeAll, describe, expect, it } from "vitest";
import type { CompiledComponent, Engine, GuestExports, GuestInstance, StateView } from "../../runtime/engine.ts";
import { applySnapshot, capturePristine, encodeSnapshot, resetToPristine } from "../../runtime/snapshot/image.ts";
import { createHostBinding } from "../../src/tasks/executor/binding.ts";
import { noTasks } from "../support/runtime.ts";

export interface ContractGuest {
  name: string;
  bytes(): Promise<Uint8Array>;
  /** Deliver one event that bumps the guest's count; return the count it replies with. */
  step(exports: GuestExports): number;
}

/** An instance with a host binding attached to one partition, and a way to call it as the executor does. */
function instantiate(compiled: CompiledComponent): GuestInstance & { within<T>(call: () => T): T } {
  const binding = createHostBinding({ log: () => undefined });
  const instance = compiled.instantiate(binding.imports);
  binding.attach("p_contract");
  return {
    ...instance,
    within(call) {
      binding.begin(noTasks(), 0);
      try {
        return call();
      } finally {
        binding.end();
      }
    },
  };
}

function activate(instance: ReturnType<typeof instantiate>, reason: "fresh" | "restored"): void {
  instance.within(() => instance.exports.lifecycle.onActivate(reason));
}

function step(instance: ReturnType<typeof instantiate>, guest: ContractGuest): number {
  return instance.within(() => guest.step(instance.exports));
}

/** Every memory's bytes and every global's value, to compare two instances. */
function stateOf(view: StateView): { memories: Buffer[]; globals: unknown[] } {
  return {
    memories: view.memories.map((memory) => Buffer.from(new Uint8Array(memory.buffer).slice())),
    globals: view.globals.map(({ global, type }) => (type === "v128" ? "v128" : global.value)),
  };
}

/** Byte-compared (a deep equality over megabytes of memory would take minutes). */
function expectSameState(actual: ReturnType<typeof stateOf>, expected: ReturnType<typeof stateOf>): void {
  expect(actual.memories.map((memory) => memory.length)).toEqual(expected.memories.map((memory) => memory.length));
  actual.memories.forEach((memory, m) => expect(memory.equals(expected.memories[m]!), `memory ${m} differs`).toBe(true));
  expect(actual.globals).toEqual(expected.globals);
}

export function engineContract(name: string, open: (cacheDir: string) => Engine | Promise<Engine>, guests: ContractGuest[]): void {
  describe(`engine contract: ${name}`, () => {
    let engine: Engine;
    beforeAll(async () => {
      engine = await open(await mkdtemp(join(tmpdir(), "dormant-engine-contract-")));
    });

    describe.each(guests)("with the $name guest", (guest) => {
      let bytes: Uint8Array;
      let compiled: CompiledComponent;
      beforeAll(async () => {
        bytes = await guest.bytes();
        compiled = await engine.compile(await engine.prepare(bytes));
      });

      it("prepares a component under the sha256 of its bytes, the same again for the same bytes", async () => {
        const first = await engine.prepare(bytes);
        const again = await engine.prepare(new Uint8Array(bytes));
        expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(first.bytes).toBe(bytes.length);
        expect(again).toEqual(first);
      });

      it("starts every instance in the same state, the image snapshots are taken against", () => {
        const a = instantiate(compiled);
        const b = instantiate(compiled);
        expectSameState(stateOf(a.state), stateOf(b.state));
        expect(a.state.memories.length).toBeGreaterThan(0);
      });

      it("calls the guest's exports with the host's imports, keeping its state between calls", () => {
        const instance = instantiate(compiled);
        activate(instance, "fresh");
        expect([step(instance, guest), step(instance, guest), step(instance, guest)]).toEqual([1, 2, 3]);
      });

      it("keeps instances of one component apart", () => {
        const a = instantiate(compiled);
        const b = instantiate(compiled);
        activate(a, "fresh");
        activate(b, "fresh");
        step(a, guest);
        step(a, guest);
        expect(step(b, guest)).toBe(1);
      });

      it("restores a snapshot into a fresh instance exactly: memories, globals and the next reply", () => {
        const first = instantiate(compiled);
        const pristine = capturePristine(compiled.digest, first.state);
        activate(first, "fresh");
        for (let i = 0; i < 3; i++) step(first, guest);
        const { bytes: snapshot } = encodeSnapshot(first.state, pristine);

        const second = instantiate(compiled);
        applySnapshot(second.state, pristine, snapshot);
        expectSameState(stateOf(second.state), stateOf(first.state));
        activate(second, "restored");
        expect(step(second, guest)).toBe(4);
        expect(step(second, guest)).toBe(5);
      });

      it("resets a used instance to the pristine image, so it can serve another partition", () => {
        const instance = instantiate(compiled);
        const pristine = capturePristine(compiled.digest, instance.state);
        const before = stateOf(instance.state);
        activate(instance, "fresh");
        step(instance, guest);
        step(instance, guest);
        expect(resetToPristine(instance.state, pristine)).toBe(true);
        expectSameState(stateOf(instance.state), before);
        activate(instance, "fresh");
        expect(step(instance, guest)).toBe(1);
      });
    });

    describe("refusing what is not a partition component", () => {
      it("refuses bytes that are not WebAssembly, saying how to build one", async () => {
        const refused = engine.prepare(new TextEncoder().encode("#!/bin/sh\necho hi\n"));
        await expect(refused).rejects.toMatchObject({ code: "invalid-component" });
        await expect(refused).rejects.toThrow(/Not a WebAssembly file.*dormant build/s);
      });

      it("refuses a core module, saying a component is needed", async () => {
        await expect(engine.prepare(await parse('(module (func (export "f")))'))).rejects.toThrow(/core WebAssembly module, not a component/);
      });

      it("refuses a damaged component", async () => {
        const bytes = await guests[0]!.bytes();
        await expect(engine.prepare(bytes.slice(0, 200))).rejects.toThrow(/could not be decoded/);
      });

      it("refuses a component for another world, naming what is extra and what is missing", async () => {
        const core = await parse(
          '(module (import "wasi:cli/environment@0.2.0" "get-arguments" (func (param i32))) (memory (export "memory") 1) ' +
            '(func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0) (func (export "run") (result i32) i32.const 0))',
        );
        const witSource = `package other:thing;
          world other { import wasi:cli/environment@0.2.0; export run: func() -> u32; }
          package wasi:cli@0.2.0 { interface environment { get-arguments: func() -> list<string>; } }`;
        const refused = engine.prepare(await componentNew(await componentEmbed({ binary: core, witSource, world: "other" })));
        await expect(refused).rejects.toMatchObject({ code: "invalid-component" });
        await expect(refused).rejects.toThrow(/imports wasi:cli\/environment/);
        await expect(refused).rejects.toThrow(/does not export dormant:host\/handler@0\.1\.0 and dormant:host\/lifecycle@0\.1\.0/);
      });
    });
  });
}
