// `dormant build`: turn guest sources into a component for the `partition` world, offline.
// JS/TS are bundled and componentized by a JS engine (QuickJS or StarlingMonkey, see
// js-engines.ts) with WASI stubbed out or disabled, so the guest reaches the host only
// through dormant:host. WAT is assembled, given the world's metadata and wrapped.
import "./preopens.ts";
import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";
import { buildJsGuest } from "./js-build.ts";
import { DEFAULT_JS_ENGINE, JS_ENGINE_PROFILES, type JsEngine } from "./js-engines.ts";
import { DormantError, isDormantError } from "../errors.ts";

export const WORLD = "partition";
/** The world of a guest that exports `handover` (its state, carried across upgrades). */
export const HANDOVER_WORLD = "partition-with-handover";

export interface BuildOptions {
  /** The WIT folder holding the dormant:host package. */
  witDir: string;
  /** The engine for a JS or TS guest; default `DEFAULT_JS_ENGINE`. */
  engine?: JsEngine;
  /** Told about what may fail later but does not stop the build (e.g. a dependency using an API the engine lacks). */
  onWarning?: (message: string) => void;
}

/** Build a component from an entry file (.js, .mjs, .ts, .mts or .wat). */
export async function buildComponent(entry: string, options: BuildOptions): Promise<Uint8Array> {
  const path = resolve(entry);
  const witDir = resolve(options.witDir);
  const kind = extname(path).toLowerCase();
  const engine = options.engine ?? DEFAULT_JS_ENGINE;
  try {
    if (kind === ".wat") return await buildWat(await readFile(path, "utf8"), witDir);
    if ([".js", ".mjs", ".ts", ".mts"].includes(kind))
      return await buildJsGuest(path, witDir, { world: WORLD, handoverWorld: HANDOVER_WORLD }, engine, options.onWarning ?? (() => {}));
  } catch (error) {
    if (isDormantError(error, "guest-build")) throw error;
    const what = kind === ".wat" ? "" : ` with ${JS_ENGINE_PROFILES[engine].label}`;
    throw new DormantError("guest-build", `Building ${entry}${what} failed: ${(error as Error).message}`, { cause: error });
  }
  throw new DormantError("guest-build", `Cannot build ${entry}: use a .js, .mjs, .ts, .mts or .wat entry file.`);
}

async function buildWat(text: string, witDir: string): Promise<Uint8Array> {
  const core = await parse(text);
  // A module that exports the handover functions targets the world that has them.
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(core as Uint8Array<ArrayBuffer>));
  const world = exports.some(({ name }) => name.startsWith("dormant:host/handover@")) ? HANDOVER_WORLD : WORLD;
  const embedded = await componentEmbed({ binary: core, witPath: witDir, world });
  return componentNew(embedded);
}
