// The example guests, built on demand and cached by the hash of everything that goes
// into them (sources, WIT, toolchain, lock file and JS engine), so tests, benches and the
// demo build each flavour at most once per change.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildComponent, DEFAULT_JS_ENGINE, PACKAGE_ROOT as root, type JsEngine } from "../runtime/index.ts";

// The guests' sources, also when this module runs compiled from dist/.
const here = join(root, "guests");

export const EXAMPLES = {
  counter: join(here, "counter", "counter.js"),
  "counter-v2": join(here, "counter-v2", "counter-v2.js"),
  "task-recorder": join(here, "task-recorder", "task-recorder.js"),
  "wat-minimal": join(here, "wat-minimal", "wat-minimal.wat"),
  "wat-refuses-upgrade": join(here, "wat-refuses-upgrade", "wat-refuses-upgrade.wat"),
  hostile: join(here, "hostile", "hostile.js"),
  "hello-ts": join(here, "hello-ts", "hello.ts"),
} as const;

export type ExampleName = keyof typeof EXAMPLES;

export interface ExampleOptions {
  /** The JS engine of a JS example; default the build's default. WAT examples have none. */
  engine?: JsEngine;
  cacheDir?: string;
}

/** Path of the built component of an example guest, building it if anything that goes into it changed. */
export async function exampleComponent(name: ExampleName, options: ExampleOptions = {}): Promise<string> {
  const entry = EXAMPLES[name];
  const engine = entry.endsWith(".wat") ? undefined : (options.engine ?? DEFAULT_JS_ENGINE);
  const cacheDir = options.cacheDir ?? join(root, "node_modules", ".cache", "dormant-guests");
  const hash = createHash("sha256").update(engine ?? "wat");
  for (const file of [entry, join(root, "wit", "dormant-host.wit"), join(root, "package-lock.json"), ...(await toolchainFiles())]) {
    hash.update(await readFile(file));
  }
  const out = join(cacheDir, `${name}${engine ? `-${engine}` : ""}-${hash.digest("hex").slice(0, 16)}.wasm`);
  try {
    await readFile(out);
    return out;
  } catch {
    const bytes = await buildComponent(entry, { witDir: join(root, "wit"), engine });
    await mkdir(cacheDir, { recursive: true });
    const staging = `${out}.${process.pid}.tmp`;
    await writeFile(staging, bytes);
    await rename(staging, out);
    return out;
  }
}

async function toolchainFiles(): Promise<string[]> {
  const dir = join(root, "runtime", "toolchain");
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}
