import { parse, print } from "@bytecodealliance/jco";
import { describe, expect, it } from "vitest";
import { DormantError } from "../../runtime/errors.ts";
import { exposeDefinedState } from "../../runtime/snapshot/core-module.ts";
import { enableWasmFeatures } from "../../runtime/wasm-features.ts";

/** Assemble WAT; copied so the buffer is a plain ArrayBuffer that WebAssembly accepts. */
async function wat(text: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await parse(text));
}

function instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports = {}): WebAssembly.Exports {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports;
}

/** Disassembly with the added exports removed: equal to the original's iff nothing else changed. */
async function printWithoutReservedExports(bytes: Uint8Array): Promise<string> {
  const text = await print(bytes);
  return text
    .split("\n")
    .filter((line) => !line.includes('(export "$dormant:'))
    .join("\n");
}

function formatErrorOf(action: () => unknown): DormantError {
  try {
    action();
  } catch (e) {
    expect(e).toMatchObject({ code: "invalid-component" });
    return e as DormantError;
  }
  throw new Error("expected an invalid-component error, but nothing was thrown");
}

// Node 20's V8 lacks these proposals; engine-level checks run only where supported.
const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const supportsMultiMemory = WebAssembly.validate(new Uint8Array([...HEADER, 5, 5, 2, 0, 0, 0, 0]));
// The host enables extended-const itself (QuickJS guests use it); so does this test.
enableWasmFeatures();

const IMPORTS_AND_GLOBALS = `
  (module
    (import "env" "mem" (memory 1))
    (import "env" "g" (global $imported (mut i32)))
    (global $sp (mut i32) (i32.const 1024))
    (global $counter (mut i64) (i64.const 9))
    (func (export "sp") (result i32) global.get $sp)
    (func (export "counter") (result i64) global.get $counter))
`;

function envImports(): WebAssembly.Imports {
  return {
    env: {
      mem: new WebAssembly.Memory({ initial: 1 }),
      g: new WebAssembly.Global({ value: "i32", mutable: true }, 5),
    },
  };
}

describe("exposeDefinedState", () => {
  it("exports defined mutable i32 and i64 globals so they can be read and set, i64 as BigInt", async () => {
    const { bytes, state } = exposeDefinedState(await wat(IMPORTS_AND_GLOBALS));
    const exports = instantiate(bytes, envImports());
    const sp = exports[state.globals[0]!.exportName] as WebAssembly.Global;
    const counter = exports[state.globals[1]!.exportName] as WebAssembly.Global;

    expect(sp.value).toBe(1024);
    expect(counter.value).toBe(9n);
    sp.value = 2048;
    counter.value = 1n << 40n;
    expect((exports.sp as () => number)()).toBe(2048);
    expect((exports.counter as () => bigint)()).toBe(1n << 40n);
  });

  it("numbers defined globals after imported ones and does not export imported memories or globals", async () => {
    const { bytes, state } = exposeDefinedState(await wat(IMPORTS_AND_GLOBALS));
    const names = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => `${e.kind} ${e.name}`);

    expect(state).toEqual({
      memories: [],
      tables: [],
      writesTables: false,
      globals: [
        { index: 1, type: "i32", mutable: true, exportName: "$dormant:global:1" },
        { index: 2, type: "i64", mutable: true, exportName: "$dormant:global:2" },
      ],
    });
    expect(names.filter((n) => n.includes("$dormant:"))).toEqual(["global $dormant:global:1", "global $dormant:global:2"]);
  });

  it("numbers a defined memory after an imported one and exports only the defined one", async () => {
    const original = await wat(`(module (import "env" "mem" (memory 1)) (memory 2))`);
    const { bytes, state } = exposeDefinedState(original);

    expect(state.memories).toEqual([{ index: 1, exportName: "$dormant:memory:1" }]);
    const text = await print(bytes);
    expect(text).toContain('(export "$dormant:memory:1" (memory 1))');
    expect(text).not.toContain("$dormant:memory:0");
  });

  it.runIf(supportsMultiMemory)("exposes the defined memory of a module that also imports one when instantiated", async () => {
    const { bytes } = exposeDefinedState(await wat(`(module (import "env" "mem" (memory 1)) (memory 2))`));
    const exports = instantiate(bytes, { env: { mem: new WebAssembly.Memory({ initial: 1 }) } });

    expect((exports["$dormant:memory:1"] as WebAssembly.Memory).buffer.byteLength).toBe(2 * 65536);
  });

  it("adds an export section to a module with no exports, and its start function still runs", async () => {
    const original = await wat(`
      (module
        (memory 1)
        (global $g (mut i32) (i32.const 0))
        (func $start
          (global.set $g (i32.const 42))
          (i32.store8 (i32.const 3) (i32.const 7)))
        (start $start))
    `);
    expect(WebAssembly.Module.exports(new WebAssembly.Module(original))).toEqual([]);

    const { bytes } = exposeDefinedState(original);
    const exports = instantiate(bytes);

    expect((exports["$dormant:global:0"] as WebAssembly.Global).value).toBe(42);
    expect(new Uint8Array((exports["$dormant:memory:0"] as WebAssembly.Memory).buffer)[3]).toBe(7);
  });

  it("keeps a module's existing exports working alongside the added ones", async () => {
    const { bytes } = exposeDefinedState(
      await wat(`
        (module
          (memory (export "memory") 1)
          (global $g (mut i32) (i32.const 1))
          (func (export "double") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))
      `),
    );
    const exports = instantiate(bytes);

    expect((exports.double as (x: number) => number)(21)).toBe(42);
    expect(exports.memory).toBe(exports["$dormant:memory:0"]);
    expect(Object.keys(exports)).toEqual(["memory", "double", "$dormant:memory:0", "$dormant:global:0"]);
  });

  const BUMP = `
    (module
      (memory 1)
      (global $n (mut i32) (i32.const 10))
      (func (export "bump") (result i32)
        (global.set $n (i32.add (global.get $n) (i32.const 1)))
        (i32.store (i32.const 0) (global.get $n))
        (global.get $n))
      (func (export "peek") (result i32) (i32.load (i32.const 0))))
  `;

  it("preserves behaviour: a function bumping a private global and writing memory gives the same results", async () => {
    const original = await wat(BUMP);
    const run = (bytes: Uint8Array<ArrayBuffer>): number[] => {
      const exports = instantiate(bytes);
      const bump = exports.bump as () => number;
      const peek = exports.peek as () => number;
      return [bump(), peek(), bump(), bump(), peek()];
    };

    expect(run(exposeDefinedState(original).bytes)).toEqual(run(original));
  });

  it("makes a write to a private global through its reserved export visible to the module's functions", async () => {
    const { bytes, state } = exposeDefinedState(await wat(BUMP));
    const exports = instantiate(bytes);

    (exports[state.globals[0]!.exportName] as WebAssembly.Global).value = 100;

    expect((exports.bump as () => number)()).toBe(101);
    expect((exports.peek as () => number)()).toBe(101);
  });

  const EXTENDED_CONST = `
    (module
      (import "env" "base" (global $base i32))
      (global $a (mut i32) (i32.add (global.get $base) (i32.const 16)))
      (global $b (mut i64) (i64.mul (i64.const 6) (i64.sub (i64.const 9) (i64.const 2)))))
  `;

  it("parses globals whose initializers use extended-const arithmetic", async () => {
    const original = await wat(EXTENDED_CONST);
    const { bytes, state } = exposeDefinedState(original);

    expect(state.globals.map((g) => [g.index, g.type, g.mutable])).toEqual([
      [1, "i32", true],
      [2, "i64", true],
    ]);
    expect(await printWithoutReservedExports(bytes)).toBe(await print(original));
  });

  it("keeps extended-const initial values when instantiated", async () => {
    const { bytes } = exposeDefinedState(await wat(EXTENDED_CONST));
    const exports = instantiate(bytes, { env: { base: new WebAssembly.Global({ value: "i32" }, 100) } });

    expect((exports["$dormant:global:1"] as WebAssembly.Global).value).toBe(116);
    expect((exports["$dormant:global:2"] as WebAssembly.Global).value).toBe(42n);
  });

  it("reports f32, f64, v128 and reference-typed globals, including immutable ones", async () => {
    const { bytes, state } = exposeDefinedState(
      await wat(`
        (module
          (func $f)
          (elem declare func $f)
          (global (mut f32) (f32.const 1.5))
          (global f64 (f64.const -2.25))
          (global (mut v128) (v128.const i32x4 1 2 3 4))
          (global funcref (ref.func $f))
          (global (mut externref) (ref.null extern)))
      `),
    );
    const exports = instantiate(bytes);

    expect(state.globals.map((g) => [g.type, g.mutable])).toEqual([
      ["f32", true],
      ["f64", false],
      ["v128", true],
      ["funcref", false],
      ["externref", true],
    ]);
    expect((exports["$dormant:global:0"] as WebAssembly.Global).value).toBe(1.5);
    expect((exports["$dormant:global:1"] as WebAssembly.Global).value).toBe(-2.25);
    expect((exports["$dormant:global:3"] as WebAssembly.Global).value).toBeTypeOf("function");
  });

  it("exports a defined funcref table holding the module's elements", async () => {
    const { bytes, state } = exposeDefinedState(
      await wat(`
        (module
          (table 2 funcref)
          (func $seven (result i32) (i32.const 7))
          (func $eight (result i32) (i32.const 8))
          (elem (i32.const 0) func $seven $eight))
      `),
    );
    const table = instantiate(bytes)[state.tables[0]!.exportName] as WebAssembly.Table;

    expect(state.tables).toEqual([{ index: 0, exportName: "$dormant:table:0" }]);
    expect(table.length).toBe(2);
    expect((table.get(1) as () => number)()).toBe(8);
  });

  it("numbers a defined table after an imported one", async () => {
    const { bytes, state } = exposeDefinedState(await wat(`(module (import "env" "t" (table 1 funcref)) (table 3 externref))`));
    const exports = instantiate(bytes, { env: { t: new WebAssembly.Table({ element: "anyfunc", initial: 1 }) } });

    expect(state.tables).toEqual([{ index: 1, exportName: "$dormant:table:1" }]);
    expect((exports["$dormant:table:1"] as WebAssembly.Table).length).toBe(3);
  });

  it("parses tables declared with an initializer expression", async () => {
    const original = await wat(`(module (table 2 funcref (ref.null func)) (global (mut i32) (i32.const 1)))`);
    const { bytes, state } = exposeDefinedState(original);

    expect(state.tables).toEqual([{ index: 0, exportName: "$dormant:table:0" }]);
    expect(state.globals.map((g) => g.index)).toEqual([0]);
    expect(await printWithoutReservedExports(bytes)).toBe(await print(original));
  });

  it("parses shared and 64-bit memory limits in imports and definitions", async () => {
    const original = await wat(`
      (module
        (import "env" "shared" (memory 1 2 shared))
        (import "env" "wide" (memory i64 1))
        (memory i64 1 4)
        (global (mut i32) (i32.const 0)))
    `);
    const { bytes, state } = exposeDefinedState(original);

    expect(state.memories).toEqual([{ index: 2, exportName: "$dormant:memory:2" }]);
    expect(state.globals).toEqual([{ index: 0, type: "i32", mutable: true, exportName: "$dormant:global:0" }]);
    expect(await printWithoutReservedExports(bytes)).toBe(await print(original));
  });

  it("round-trips custom sections placed before and after the other sections", async () => {
    const original = await wat(`
      (module
        (@custom "first" (before first) "aaa")
        (@custom "middle" (after type) "bbb")
        (@custom "last" (after data) "ccc")
        (type (func (result i32)))
        (memory 1)
        (global $g (mut i32) (i32.const 5))
        (func (type 0) (global.get $g))
        (data (i32.const 0) "hi"))
    `);
    const { bytes } = exposeDefinedState(original);
    const module = new WebAssembly.Module(bytes);
    const custom = (name: string): string =>
      WebAssembly.Module.customSections(module, name)
        .map((b) => new TextDecoder().decode(b))
        .join();

    expect([custom("first"), custom("middle"), custom("last")]).toEqual(["aaa", "bbb", "ccc"]);
    expect(await printWithoutReservedExports(bytes)).toBe(await print(original));
  });

  it("re-encodes an export section whose count and size need multi-byte LEB128s", async () => {
    const globals = Array.from({ length: 200 }, (_, i) => `(global (mut i32) (i32.const ${i}))`).join("\n");
    const { bytes, state } = exposeDefinedState(await wat(`(module ${globals} (func (export "f")))`));
    const exports = instantiate(bytes);

    expect(state.globals).toHaveLength(200);
    expect((exports["$dormant:global:199"] as WebAssembly.Global).value).toBe(199);
    expect(exports.f).toBeTypeOf("function");
  });

  it("returns a byte-identical copy of a module that defines no state", async () => {
    const original = await wat(`(module (import "env" "m" (memory 1)) (func (export "f")))`);
    const { bytes, state } = exposeDefinedState(original);

    expect(state).toEqual({ memories: [], globals: [], tables: [], writesTables: false });
    expect(bytes).toEqual(original);
    expect(bytes.buffer).not.toBe(original.buffer);
  });

  it("rejects bytes that are not WebAssembly, pointing at the missing magic", () => {
    const error = formatErrorOf(() => exposeDefinedState(new TextEncoder().encode("hello world")));

    expect(error.message).toMatch(/not a core WebAssembly module/);
    expect(error.message).toMatch(/magic/);
    expect(error.message).toMatch(/byte offset 0/);
  });

  it("rejects a component, saying it is a component and not a core module", async () => {
    const component = await wat(`(component)`);

    const error = formatErrorOf(() => exposeDefinedState(component));

    expect(error.message).toMatch(/this is a component, not a core module/);
    expect(error.details.offset).toBe(4);
  });

  it("rejects a module cut off inside a section, naming the section and offset", async () => {
    // No symbolic names, so the code section is last (no trailing "name" section).
    const original = await wat(`(module (memory 1) (func (export "f") (result i32) (i32.add (i32.const 1) (i32.const 2))))`);
    const error = formatErrorOf(() => exposeDefinedState(original.subarray(0, original.length - 3)));

    expect(error.message).toMatch(/truncated code section/);
    expect(error.message).toMatch(/byte offset \d+/);
  });

  it("rejects a section whose declared size ends before its contents do", async () => {
    // Only section: global, "06 06 01 7f 01 41 05 0b"; shrink its size by one byte.
    const original = await wat(`(module (global (mut i32) (i32.const 5)))`);
    const bytes = original.slice();
    expect(bytes[8]).toBe(6);
    bytes[9] = bytes[9]! - 1;

    const error = formatErrorOf(() => exposeDefinedState(bytes.subarray(0, bytes.length - 1)));

    expect(error.message).toMatch(/truncated: expected constant expression opcode/);
    expect(error.message).toMatch(/global section, global 0/);
  });

  it("rejects an unknown value type, naming the byte and its offset", async () => {
    const bytes = (await wat(`(module (global (mut i32) (i32.const 5)))`)).slice();
    const typeOffset = 11; // header 8 + section id + size + count
    expect(bytes[typeOffset]).toBe(0x7f);
    bytes[typeOffset] = 0x7a;

    const error = formatErrorOf(() => exposeDefinedState(bytes));

    expect(error.message).toBe("unknown value type 0x7a at byte offset 11 (in global section, global 0)");
    expect(error.details.offset).toBe(11);
  });

  it("rejects an unknown opcode in a global's initializer", async () => {
    const bytes = (await wat(`(module (global (mut i32) (i32.const 5)))`)).slice();
    bytes[13] = 0x20; // i32.const -> local.get, not a constant instruction

    expect(() => exposeDefinedState(bytes)).toThrow(/unknown opcode 0x20 in constant expression at byte offset 13/);
  });

  it("rejects a module that already exports one of the reserved names", async () => {
    const original = await wat(`(module (global $g (export "$dormant:global:0") (mut i32) (i32.const 0)))`);

    const error = formatErrorOf(() => exposeDefinedState(original));

    expect(error.message).toMatch(/already exports "\$dormant:global:0"/);
  });
});

describe("memory caps", () => {
  it("lowers each defined memory's maximum to the cap, so memory.grow past it fails inside the guest", async () => {
    const bytes = await wat(`(module (memory 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
    const capped = exposeDefinedState(bytes, { maxMemoryPages: 4 });
    const { grow } = instantiate(capped.bytes) as { grow: (pages: number) => number };
    expect(grow(3)).toBe(1);
    expect(grow(1)).toBe(-1);
  });

  it("keeps a lower maximum the module declares, and never sets one below the initial size", async () => {
    const bytes = await wat(`(module (memory 8 10) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
    const { grow: lowCap } = instantiate(exposeDefinedState(bytes, { maxMemoryPages: 2 }).bytes) as { grow: (pages: number) => number };
    expect(lowCap(1)).toBe(-1); // at its initial 8 pages, the most a cap below it can allow
    const { grow: highCap } = instantiate(exposeDefinedState(bytes, { maxMemoryPages: 64 }).bytes) as { grow: (pages: number) => number };
    expect(highCap(2)).toBe(8);
    expect(highCap(1)).toBe(-1);
  });
});
