// WebAssembly features that guests need and Node 20's V8 ships behind a flag. QuickJS
// guests (componentize-qjs) use extended constant expressions (`i32.add` in a global's
// initializer), which V8 11.3 refuses unless `--experimental-wasm-extended-const` is
// set. The host sets it for itself, so nobody runs `node` with a V8 flag. A V8 flag is
// process-wide and is read when a module is compiled: set it before the first compile,
// in the main thread before executors start (for in-process compiles) and in each
// executor (harmless twice).
import { setFlagsFromString } from "node:v8";

// (module (global i32 (i32.add (i32.const 1) (i32.const 2))))
const EXTENDED_CONST = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 6, 9, 1, 127, 0, 65, 1, 65, 2, 106, 11]);

/** Make this process's V8 accept every Wasm feature a guest built by `dormant build` uses. */
export function enableWasmFeatures(): void {
  // Newer V8s have the feature on by default, and may no longer know the flag.
  if (WebAssembly.validate(EXTENDED_CONST)) return;
  setFlagsFromString("--experimental-wasm-extended-const");
  if (!WebAssembly.validate(EXTENDED_CONST)) {
    throw new Error(`This Node (${process.version}) cannot enable WebAssembly extended-const, which QuickJS guests need; use Node 20.19 or later.`);
  }
}
