import { DormantError } from "./errors.ts";

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const BUILD_HINT = "Build one for the dormant:host/partition world with `dormant build <entry.js|.ts|.wat> -o out.wasm`.";

/** Check that bytes look like a WebAssembly component before handing them to an engine. */
export function assertComponentBytes(bytes: Uint8Array): void {
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    const head = Buffer.from(bytes.subarray(0, 8)).toString("hex") || "nothing";
    throw new DormantError("invalid-component", `Not a WebAssembly file: it starts with ${head}, not the \\0asm magic. ${BUILD_HINT}`);
  }
  const version = bytes[4]! | (bytes[5]! << 8);
  const layer = bytes[6]! | (bytes[7]! << 8);
  if (layer === 0 && version === 1) {
    throw new DormantError(
      "invalid-component",
      `This is a core WebAssembly module, not a component: Dormant runs components that target the dormant:host/partition world. ${BUILD_HINT}`,
    );
  }
  if (layer !== 1) {
    throw new DormantError(
      "invalid-component",
      `Unknown WebAssembly binary layer ${layer} (version ${version}); expected a component (layer 1). ${BUILD_HINT}`,
    );
  }
}
