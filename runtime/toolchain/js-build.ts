// JS and TS guests: bundled with esbuild around the guest-side modules in `guest/`,
// checked for APIs the chosen engine lacks, then componentized by that engine.
import { dirname, join, relative } from "node:path";
import { build as bundle, type BuildOptions as BundleOptions, type Plugin } from "esbuild";
import { JS_ENGINE_PROFILES, type JsEngine, type JsEngineProfile } from "./js-engines.ts";
import { DormantError } from "../errors.ts";
import { PACKAGE_ROOT } from "../module-url.ts";

// The guest-side modules are plain JS that tsc does not copy into dist/: they are read
// from the sources, also when this module runs compiled.
const guestModule = (name: string) => join(PACKAGE_ROOT, "runtime", "toolchain", "guest", name);
const EDGE = guestModule("edge.js");
const BACKGROUND_TASKS = guestModule("background-tasks.js");

interface Use {
  api: string;
  file: string;
}

/**
 * Bundle a guest into one ES module for `engine`, and componentize it: for `world`, or for
 * `handoverWorld` when the guest exports `handover` (its state, carried across upgrades).
 */
export async function buildJsGuest(
  entry: string,
  witDir: string,
  worlds: { world: string; handoverWorld: string },
  engine: JsEngine,
  warn: (message: string) => void,
): Promise<Uint8Array> {
  const profile = JS_ENGINE_PROFILES[engine];
  const { uses, exports } = await lackedApis(entry, profile);
  const own = uses.filter((use) => !use.file.includes("node_modules"));
  if (own.length > 0) throw new DormantError("guest-build", lackedMessage(entry, engine, own));
  for (const use of uses) {
    warn(`${use.file} uses ${use.api}, which ${profile.label} guests do not have (${profile.lacks[use.api]}); a call that reaches it fails.`);
  }
  const handover = exports.includes("handover");
  const source = await bundleGuest(entry, profile, handover);
  return profile.componentize(source, witDir, handover ? worlds.handoverWorld : worlds.world);
}

const COMMON = { bundle: true, format: "esm", platform: "neutral", target: "es2022", write: false, logLevel: "silent" } as const satisfies BundleOptions;

// Everything in dormant: is the world's, bound by the componentizer, except that the
// guest's own background-tasks import goes through the edge module.
const worldImports: Plugin = {
  name: "dormant-world",
  setup(build) {
    build.onResolve({ filter: /^dormant:/ }, ({ path, importer }) =>
      /^dormant:host\/background-tasks(@|$)/.test(path) && importer !== BACKGROUND_TASKS ? { path: BACKGROUND_TASKS } : { path, external: true },
    );
  },
};

async function bundleGuest(entry: string, profile: JsEngineProfile, handover: boolean): Promise<string> {
  // The guest's exports, wrapped by the edge module (the entry of the bundle).
  const contents = [
    `import * as guest from ${JSON.stringify(entry)};`,
    `import { wrapHandler, wrapLifecycle, wrapHandover } from ${JSON.stringify(EDGE)};`,
    "export const handler = wrapHandler(guest.handler);",
    "export const lifecycle = wrapLifecycle(guest.lifecycle);",
    ...(handover ? ["export const handover = wrapHandover(guest.handover);"] : []),
  ].join("\n");
  const result = await bundle({
    ...COMMON,
    stdin: { contents, resolveDir: dirname(entry), sourcefile: "dormant-entry.js", loader: "js" },
    inject: profile.inject.map(guestModule),
    define: { __DORMANT_ENGINE__: JSON.stringify(profile.label), __DORMANT_LACKS__: JSON.stringify(profile.lacks) },
    plugins: [worldImports],
  }).catch((error: Error) => {
    throw new DormantError("guest-build", `Bundling ${entry} failed: ${error.message}`);
  });
  return result.outputFiles[0]!.text;
}

/**
 * Where the guest's code (and its dependencies') refers to an API the engine lacks. Each
 * such global is renamed to a marker by esbuild's `define`, which touches only real global
 * references (not local bindings of the same name); the bundle names the file each module
 * came from in a `// path` line. References under `typeof` are feature tests and allowed.
 * Also what the guest's entry exports (from the same bundle's metafile).
 */
async function lackedApis(entry: string, profile: JsEngineProfile): Promise<{ uses: Use[]; exports: string[] }> {
  const apis = Object.keys(profile.lacks);
  const define = Object.fromEntries(apis.map((api, i) => [api, `__dormantLacks${i}`]));
  const result = await bundle({ ...COMMON, entryPoints: [entry], define, plugins: [worldImports], metafile: true, outfile: "guest.js" }).catch(
    (error: Error) => {
      throw new DormantError("guest-build", `Bundling ${entry} failed: ${error.message}`);
    },
  );
  const uses = new Map<string, Use>();
  let file = relative(process.cwd(), entry);
  for (const line of result.outputFiles[0]!.text.split("\n")) {
    const header = /^\/\/ (\S.*)$/.exec(line);
    if (header) {
      file = header[1]!;
      continue;
    }
    for (const match of line.matchAll(/(typeof\s+)?\b__dormantLacks(\d+)\b/g)) {
      if (match[1]) continue;
      const api = apis[Number(match[2])]!;
      uses.set(`${api} ${file}`, { api, file });
    }
  }
  return { uses: [...uses.values()], exports: Object.values(result.metafile.outputs)[0]?.exports ?? [] };
}

function lackedMessage(entry: string, engine: JsEngine, uses: Use[]): string {
  const { label, lacks } = JS_ENGINE_PROFILES[engine];
  const lines = uses.map(({ api, file }) => `  - ${api} (in ${file}): ${lacks[api]}`);
  const other = engine === "quickjs" ? "starlingmonkey" : "quickjs";
  const otherHasAll = uses.every(({ api }) => !(api in JS_ENGINE_PROFILES[other].lacks));
  const instead = otherHasAll ? `, or build with --engine ${other}` : "";
  return `${entry} uses what ${label} guests do not have:\n${lines.join("\n")}\nRemove these uses${instead}.`;
}
