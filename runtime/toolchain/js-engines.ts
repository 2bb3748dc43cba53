// The JS engines a guest can be built with: how each componentizes a bundled guest, what
// the guest-side modules add to it, and which APIs its guests cannot use (with what to do
// instead). The lists were found by probing guests built both ways: QuickJS has no Web
// APIs beyond atob/btoa and no clock once WASI is stubbed out; StarlingMonkey has them, but
// timers, fetch and performance.now() trap with WASI disabled. Neither has Intl.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";

export const JS_ENGINES = ["quickjs", "starlingmonkey"] as const;
export type JsEngine = (typeof JS_ENGINES)[number];

/** The engine `dormant build` uses for JS and TS when none is named (see README, "JS engines"). */
export const DEFAULT_JS_ENGINE: JsEngine = "quickjs";

export interface JsEngineProfile {
  readonly label: string;
  /** Globals, and `Global.member`s, a guest cannot use on this engine, each with what to do instead. */
  readonly lacks: Readonly<Record<string, string>>;
  /** Guest-side modules (in `guest/`) whose exports stand in for missing globals. */
  readonly inject: readonly string[];
  componentize(source: string, witDir: string, world: string): Promise<Uint8Array>;
}

const NODE_ONLY = "it is Node's, not the engine's";
const NO_NETWORK = "a guest reaches the outside only through dormant:host";
const NO_TIMERS = "a guest runs only during a call; register a background task (`after` or `every`) instead";
const STARLINGMONKEY = "StarlingMonkey guests have it";

const COMMON_LACKS = {
  process: NODE_ONLY,
  Buffer: `${NODE_ONLY}; use Uint8Array`,
  require: "bundle ES modules",
  __dirname: NODE_ONLY,
  __filename: NODE_ONLY,
  setImmediate: NO_TIMERS,
  Intl: "neither engine ships Intl",
};

const QUICKJS_LACKS = {
  ...COMMON_LACKS,
  fetch: NO_NETWORK,
  Request: NO_NETWORK,
  Response: NO_NETWORK,
  Headers: NO_NETWORK,
  FormData: NO_NETWORK,
  setTimeout: NO_TIMERS,
  setInterval: NO_TIMERS,
  clearTimeout: NO_TIMERS,
  clearInterval: NO_TIMERS,
  "Date.now": "there is no clock; use the task event's firedAt (ms since the epoch)",
  "performance.now": "there is no clock; use the task event's firedAt (ms since the epoch)",
  URL: STARLINGMONKEY,
  URLSearchParams: STARLINGMONKEY,
  crypto: STARLINGMONKEY,
  structuredClone: "copy with JSON.parse(JSON.stringify(value))",
  Blob: STARLINGMONKEY,
  AbortController: STARLINGMONKEY,
  Event: STARLINGMONKEY,
  EventTarget: STARLINGMONKEY,
  ReadableStream: STARLINGMONKEY,
  WritableStream: STARLINGMONKEY,
  TransformStream: STARLINGMONKEY,
  CompressionStream: STARLINGMONKEY,
  DecompressionStream: STARLINGMONKEY,
};

const STARLINGMONKEY_LACKS = {
  ...COMMON_LACKS,
  fetch: NO_NETWORK,
  setTimeout: NO_TIMERS,
  setInterval: NO_TIMERS,
  "performance.now": "there is no monotonic clock; use Date.now() or the task event's firedAt",
};

export const JS_ENGINE_PROFILES: Readonly<Record<JsEngine, JsEngineProfile>> = {
  quickjs: {
    label: "QuickJS",
    lacks: QUICKJS_LACKS,
    inject: ["console.js", "quickjs.js"],
    async componentize(source, witDir, world) {
      const { componentize } = await import("componentize-qjs");
      // Synchronous exports (the async runtime needs JSPI, which Node 20 lacks), every
      // WASI import replaced by a trap stub: the guest's only door is dormant:host.
      const { component } = await componentize({ witPath: witDir, jsSource: source, world, stubWasi: true, sync: true });
      return new Uint8Array(component.buffer, component.byteOffset, component.byteLength);
    },
  },
  starlingmonkey: {
    label: "StarlingMonkey",
    lacks: STARLINGMONKEY_LACKS,
    inject: ["console.js", "starlingmonkey.js"],
    async componentize(source, witDir, world) {
      const { componentize } = await import("@bytecodealliance/componentize-js");
      // componentize-js derives the paths it hands wizer from the working directory, and
      // gets them wrong when that directory is an ancestor of its temp folder (a build
      // run from /tmp or / fails with "Error loading module"). Give it a source file of
      // our own and, as jco does, run it from that file's folder.
      const dir = await mkdtemp(join(tmpdir(), "dormant-build-"));
      const sourcePath = join(dir, "guest.js");
      const callerDir = process.cwd();
      try {
        await writeFile(sourcePath, source);
        if (isMainThread) process.chdir(dir);
        const { component } = await componentize({
          sourcePath,
          witPath: witDir,
          worldName: world,
          disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
        } as never);
        return component;
      } finally {
        if (isMainThread) process.chdir(callerDir);
        await rm(dir, { recursive: true, force: true });
      }
    },
  },
};

const ALIASES: Record<string, JsEngine> = { quickjs: "quickjs", qjs: "quickjs", starlingmonkey: "starlingmonkey", sm: "starlingmonkey" };

/** The engine named on the command line (jco's short names too), or an error that lists the choices. */
export function jsEngine(name: string): JsEngine {
  const found = ALIASES[name.toLowerCase()];
  if (!found) throw new Error(`Unknown JS engine '${name}': use ${JS_ENGINES.join(" or ")}.`);
  return found;
}
