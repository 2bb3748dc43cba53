// `dormant build`: turn guest sources into a component for the `partition` world, offline.
// JS/TS go through componentize-js (StarlingMonkey) with every WASI feature disabled, so
// the guest reaches the host only through dormant:host. WAT is assembled, given the
// world's metadata and wrapped into a component.
import "./preopens.ts";
import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { componentize } from "@bytecodealliance/componentize-js";
import { componentEmbed, componentNew, parse } from "@bytecodealliance/jco";
import { build as bundle } from "esbuild";

export const WORLD = "partition";

export class GuestBuildError extends Error {
  override name = "GuestBuildError";
}

export interface BuildOptions {
  /** The WIT folder holding the dormant:host package. */
  witDir: string;
}

/** Build a component from an entry file (.js, .mjs, .ts, .mts or .wat). */
export async function buildComponent(entry: string, options: BuildOptions): Promise<Uint8Array> {
  const path = resolve(entry);
  const witDir = resolve(options.witDir);
  const kind = extname(path).toLowerCase();
  try {
    if (kind === ".wat") return await buildWat(await readFile(path, "utf8"), witDir);
    if ([".js", ".mjs", ".ts", ".mts"].includes(kind)) return await buildJs(path, witDir);
  } catch (error) {
    if (error instanceof GuestBuildError) throw error;
    throw new GuestBuildError(`Building ${entry} failed: ${(error as Error).message}`, { cause: error });
  }
  throw new GuestBuildError(`Cannot build ${entry}: use a .js, .mjs, .ts, .mts or .wat entry file.`);
}

async function buildJs(path: string, witDir: string): Promise<Uint8Array> {
  // Bundle the guest's own modules (and strip TypeScript) into one ES module; the
  // world's interfaces stay imports for the componentizer to bind.
  const bundled = await bundle({
    entryPoints: [path],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    write: false,
    external: ["dormant:*"],
    logLevel: "silent",
  }).catch((error: Error) => {
    throw new GuestBuildError(`Bundling ${path} failed: ${error.message}`);
  });
  const source = bundled.outputFiles[0]!.text;
  const { component } = await componentize(source, {
    sourceName: "guest.js",
    witPath: witDir,
    worldName: WORLD,
    disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
  } as never);
  return component;
}

async function buildWat(text: string, witDir: string): Promise<Uint8Array> {
  const core = await parse(text);
  const embedded = await componentEmbed({ binary: core, witPath: witDir, world: WORLD });
  return componentNew(embedded);
}
