// Which modules can write a table after instantiation: a freeze checks the tables of those
// components only, so the scan must never miss a write.
import { parse } from "@bytecodealliance/jco";
import { describe, expect, it } from "vitest";
import { exposeDefinedState } from "../../runtime/snapshot/core-module.ts";

async function writesTables(body: string): Promise<boolean> {
  const bytes = new Uint8Array(await parse(`(module ${body})`));
  // A module the engine would reject is not what this scan is asked about.
  expect(WebAssembly.validate(bytes)).toBe(true);
  return exposeDefinedState(bytes).state.writesTables;
}

const TABLES = `
  (type $unary (func (param i32) (result i32)))
  (table $t 4 10 funcref)
  (table $r 2 externref)
  (memory 1 2)
  (data $d "abc")
  (elem $e func $f $g)
  (func $f (param i32) (result i32) local.get 0)
  (func $g (param i32) (result i32) i32.const 7)`;

describe("the table-write scan", () => {
  it("finds none in code that reads, sizes and calls through its tables among every other kind of instruction", async () => {
    const code = `${TABLES}
      (func (export "run") (param $x i32) (result i32) (local $l i64) (local $v v128)
        (block $out
          (loop $again
            (br_table $out $again $out (local.get $x))))
        (drop (call_indirect $t (type $unary) (if (result i32) (local.get $x) (then (i32.const 1)) (else (i32.const 2))) (i32.const 0)))
        (drop (table.get $t (i32.const 1)))
        (drop (table.size $r))
        (drop (select (result i32) (i32.const 1) (i32.const 2) (i32.const 0)))
        (drop (select (i32.const 1) (i32.const 2) (i32.const 0)))
        (local.set $l (i64.const -9223372036854775808))
        (drop (f32.const 1.5))
        (drop (f64.const -2.25))
        (drop (ref.is_null (ref.null func)))
        (drop (ref.func $g))
        (memory.copy (i32.const 0) (i32.const 8) (i32.const 4))
        (memory.fill (i32.const 0) (i32.const 0) (i32.const 4))
        (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
        (data.drop $d)
        (elem.drop $e)
        (local.set $v (v128.const i32x4 1 2 3 4))
        (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))
        (drop (i32x4.extract_lane 2 (local.get $v)))
        (local.set $v (v128.load32_lane offset=4 1 (i32.const 0) (local.get $v)))
        (v128.store offset=16 (i32.const 0) (local.get $v))
        (drop (i64.load32_u offset=1000000 align=2 (i32.const 0)))
        (drop (memory.grow (i32.const 0)))
        (drop (i32.trunc_sat_f32_s (f32.const 1)))
        (i32.extend8_s (i32.const 1)))`;
    expect(await writesTables(code)).toBe(false);
  });

  it.each([
    ["table.set", "(table.set $t (i32.const 0) (ref.null func))"],
    ["table.grow", "(drop (table.grow $t (ref.null func) (i32.const 1)))"],
    ["table.fill", "(table.fill $t (i32.const 0) (ref.null func) (i32.const 2))"],
    ["table.copy", "(table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 1))"],
    ["table.init", "(table.init $t $e (i32.const 0) (i32.const 0) (i32.const 1))"],
  ])("finds %s", async (_, instruction) => {
    expect(await writesTables(`${TABLES} (func (export "run") ${instruction})`)).toBe(true);
  });

  it("finds a write to a table the module imports", async () => {
    expect(await writesTables(`(import "env" "t" (table 1 funcref)) (func (export "run") (table.set 0 (i32.const 0) (ref.null func)))`)).toBe(true);
  });

  it("counts an instruction it cannot step over as a possible write", async () => {
    // 0xFB is the GC proposal's prefix, which the scan does not decode.
    const bytes = new Uint8Array(await parse(`(module (func (export "run") nop))`));
    const nop = bytes.lastIndexOf(0x01);
    const patched = new Uint8Array([...bytes.subarray(0, nop), 0xfb, ...bytes.subarray(nop + 1)]);
    expect(exposeDefinedState(patched).state.writesTables).toBe(true);
  });

  it("finds none in a module without code", async () => {
    expect(await writesTables(`(table 1 funcref) (memory 1)`)).toBe(false);
  });
});
