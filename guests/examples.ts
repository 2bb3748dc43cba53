// The example guests, built on demand and cached by the hash of everything that goes
// into them, so tests and the demo build each at most once per change.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PACKAGE_ROOT as root } from "../runtime/module-url.ts";
import { buildComponent } from "../runtime/toolchain/build.ts";

// The guests' sources, also when this module runs compiled from dist/.
const here = join(root, "guests");

export const EXAMPLES = {
  counter: join(here, "counter", "counter.js"),
  "task-recorder": join(here, "task-recorder", "task-recorder.js"),
  "wat-minimal": join(here, "wat-minimal", "wat-minimal.wat"),
  hostile: join(here, "hostile", "hostile.js"),
} as const;

export type ExampleName = keyof typeof EXAMPLES;

/** Path of the built component of an example guest, building it if its sources changed. */
export async function exampleComponent(name: ExampleName, cacheDir = join(root, "node_modules", ".cache", "dormant-guests")): Promise<string> {
  const entry = EXAMPLES[name];
  const wit = await readFile(join(root, "wit", "dormant-host.wit"));
  const lock = await readFile(join(root, "package-lock.json"));
  const hash = createHash("sha256").update(await readFile(entry)).update(wit).update(lock).digest("hex").slice(0, 16);
  const out = join(cacheDir, `${name}-${hash}.wasm`);
  try {
    await readFile(out);
    return out;
  } catch {
    const bytes = await buildComponent(entry, { witDir: join(root, "wit") });
    await mkdir(cacheDir, { recursive: true });
    const staging = `${out}.${process.pid}.tmp`;
    await writeFile(staging, bytes);
    await rename(staging, out);
    return out;
  }
}
