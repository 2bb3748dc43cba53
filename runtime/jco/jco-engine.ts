// The engine port implemented with jco: components are transpiled to JS glue plus core
// modules (cached on disk by content hash), and run on the V8 engine of the process.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { transpile } from "@bytecodealliance/jco";
import { assertComponentBytes } from "../component-bytes.ts";
import type { CompileOptions, CompiledComponent, Engine, EngineOptions, GuestImports, GuestInstance, PreparedComponent } from "../engine.ts";
import { exposeDefinedState, type DefinedState } from "../snapshot/core-module.ts";
import { enableWasmFeatures } from "../wasm-features.ts";
import { assertPartitionWorld, unversioned } from "../world.ts";
import type { PartitionWithHandover as Partition } from "../../wit/types/partition.d.ts";
import { quietGlue } from "./glue.ts";
import { stateViewOf } from "./state-view.ts";
import { DormantError } from "../errors.ts";

const GLUE = "component.js";
// Saved as .mjs so the glue loads as an ES module wherever the cache folder lives: jco's
// own output, and the quiet glue (see `quietGlue`) the engine runs.
export const JCO_GLUE_FILE = "component.mjs";
export const GLUE_FILE = "component.quiet.mjs";
const MANIFEST = "manifest.json";
/**
 * What the cached glue is. An entry of an older revision gets the current glue written
 * beside jco's (nothing in an entry is ever removed or moved, so a host or executor
 * reading it meanwhile, or one of an older version sharing the cache, is never left without it).
 */
const GLUE_REVISION = 11;

interface Manifest {
  digest: string;
  glue?: number;
  bytes: number;
  coreModules: string[];
  imports: string[];
  exports: string[];
}

interface Glue {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: GuestImports,
    instantiateCore: (module: WebAssembly.Module, imports: WebAssembly.Imports) => WebAssembly.Instance,
  ): Partition;
}

/** The engine module's face (see `EngineModule`): executors load this file by URL. */
export function createEngine(options: EngineOptions): Engine {
  return new JcoEngine(options);
}

export class JcoEngine implements Engine {
  readonly name = "jco";
  readonly #cacheDir: string;
  readonly #compiled = new Map<string, Promise<CompiledComponent>>();

  constructor(options: EngineOptions) {
    this.#cacheDir = options.cacheDir;
    enableWasmFeatures();
  }

  async prepare(bytes: Uint8Array): Promise<PreparedComponent> {
    assertComponentBytes(bytes);
    const hex = createHash("sha256").update(bytes).digest("hex");
    const location = join(this.#cacheDir, hex);
    const cached = await readManifest(location);
    if (cached && cached.glue !== GLUE_REVISION) await reviseGlue(location, cached);
    if (cached) return { digest: cached.digest, location, bytes: cached.bytes };

    let output: Awaited<ReturnType<typeof transpile>>;
    try {
      output = await transpile(bytes, {
        name: "component",
        instantiation: "sync",
        noTypescript: true,
        quiet: true,
      });
    } catch (error) {
      throw new DormantError(
        "invalid-component",
        `The component could not be decoded: ${firstLine(error)}. Rebuild it with \`dormant build\`; if it came from elsewhere, check it with \`jco print\`.`,
        { cause: error },
      );
    }
    const exportNames = output.exports.map(([name]) => name);
    assertPartitionWorld(output.imports, exportNames);

    const manifest: Manifest = {
      digest: `sha256:${hex}`,
      glue: GLUE_REVISION,
      bytes: bytes.length,
      coreModules: Object.keys(output.files).filter((name) => name.endsWith(".wasm")),
      imports: output.imports,
      exports: exportNames,
    };
    // Write into a private folder and rename it into place, so a concurrent or killed
    // writer never leaves a half-written cache entry behind.
    const staging = `${location}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      await mkdir(staging, { recursive: true, mode: 0o700 });
      for (const [name, data] of Object.entries(output.files)) {
        const file = join(staging, name === GLUE ? JCO_GLUE_FILE : name);
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        await writeFile(file, data, { mode: 0o600 });
        if (name === GLUE) await writeFile(join(staging, GLUE_FILE), quietGlue(data), { mode: 0o600 });
      }
      await writeFile(join(staging, MANIFEST), JSON.stringify(manifest), { mode: 0o600 });
    } catch (error) {
      // A failed write (a full disk) leaves no half-written folder to keep the space.
      await rm(staging, { recursive: true, force: true });
      throw new DormantError(
        "engine-cache-write",
        `The transpiled component could not be written to the engine cache ${this.#cacheDir}: ${(error as Error).message}. ` +
          "Nothing was deployed; free space there (or lower --engine-cache) and deploy again.",
        { cause: error, details: { cacheDir: this.#cacheDir, errno: (error as NodeJS.ErrnoException).code } },
      );
    }
    await rename(staging, location).catch(async (error: NodeJS.ErrnoException) => {
      await rm(staging, { recursive: true, force: true });
      // Another writer got there first with the same content.
      if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
    });
    return { digest: manifest.digest, location, bytes: manifest.bytes };
  }

  compile(prepared: PreparedComponent, options: CompileOptions = {}): Promise<CompiledComponent> {
    const maxMemoryPages = options.maxMemoryBytes === undefined ? undefined : Math.floor(options.maxMemoryBytes / WASM_PAGE);
    const key = maxMemoryPages === undefined ? prepared.digest : `${prepared.digest}@${maxMemoryPages}`;
    let compiled = this.#compiled.get(key);
    if (!compiled) {
      compiled = compileCached(prepared, key, maxMemoryPages);
      this.#compiled.set(key, compiled);
      compiled.catch(() => this.#compiled.delete(key));
    }
    return compiled;
  }
}

const WASM_PAGE = 65536;

async function compileCached(prepared: PreparedComponent, key: string, maxMemoryPages: number | undefined): Promise<CompiledComponent> {
  const manifest = await readManifest(prepared.location);
  if (!manifest || manifest.digest !== prepared.digest) {
    throw new DormantError("invalid-component", `Component ${prepared.digest} is not prepared at ${prepared.location}; prepare (deploy) it again.`);
  }
  const modules = new Map<string, WebAssembly.Module>();
  const layouts = new WeakMap<WebAssembly.Module, DefinedState>();
  await Promise.all(
    manifest.coreModules.map(async (name) => {
      const exposed = exposeDefinedState(await readFile(join(prepared.location, name)), maxMemoryPages === undefined ? {} : { maxMemoryPages });
      const module = await WebAssembly.compile(exposed.bytes as Uint8Array<ArrayBuffer>);
      modules.set(name, module);
      layouts.set(module, exposed.state);
    }),
  );
  const glue = (await import(pathToFileURL(join(prepared.location, glueFileOf(manifest))).href)) as Glue;
  // A table any module can write (its own, or one it imports) must be checked on every freeze.
  const tablesMayChange = [...modules.values()].some((module) => layouts.get(module)!.writesTables);

  return {
    digest: prepared.digest,
    key,
    instantiate(imports: GuestImports): GuestInstance {
      const cores: { instance: WebAssembly.Instance; layout: DefinedState }[] = [];
      let exports: Partition;
      try {
        exports = glue.instantiate(
          (name) => {
            const module = modules.get(name);
            if (!module) throw new DormantError("invalid-component", `The glue asked for core module ${name}, which the component lacks.`);
            return module;
          },
          glueImports(imports),
          (module, coreImports) => {
            const instance = new WebAssembly.Instance(module, coreImports);
            const layout = layouts.get(module);
            if (layout) cores.push({ instance, layout });
            return instance;
          },
        );
      } catch (error) {
        throw new DormantError(
          "guest-trap",
          `The component trapped while being instantiated: ${firstLine(error)}. Its start-up code failed; fix the guest and deploy it again.`,
          { details: { phase: "instantiate" }, cause: error },
        );
      }
      const { handler, lifecycle, handover } = exports as Partial<Partition> & Pick<Partition, "handler" | "lifecycle">;
      return { exports: { handler, lifecycle, ...(handover ? { handover } : {}) }, state: stateViewOf(cores, tablesMayChange) };
    },
  };
}

/** The glue looks imports up by unversioned interface name (its typings say versioned). */
export function glueImports(imports: GuestImports): GuestImports {
  return Object.fromEntries(Object.entries(imports).map(([name, value]) => [unversioned(name), value])) as unknown as GuestImports;
}

/** The glue file of a cache entry: the quiet glue once the entry has it. */
export function glueFileOf(manifest: Manifest): string {
  return manifest.glue === GLUE_REVISION ? GLUE_FILE : JCO_GLUE_FILE;
}

/** Give an entry of an older revision the current glue, then say so in its manifest (each file replaced whole, by rename). */
async function reviseGlue(location: string, manifest: Manifest): Promise<void> {
  const replace = async (name: string, data: string | Uint8Array) => {
    const temporary = join(location, `${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    await writeFile(temporary, data, { mode: 0o600 });
    await rename(temporary, join(location, name));
  };
  await replace(GLUE_FILE, quietGlue(await readFile(join(location, JCO_GLUE_FILE))));
  await replace(MANIFEST, JSON.stringify({ ...manifest, glue: GLUE_REVISION }));
}

export async function readManifest(location: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(join(location, MANIFEST), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split("\n")[0] ?? message).replace(/\.$/, "");
}
