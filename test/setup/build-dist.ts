// Compiles the sources into dist/ before any test runs, so the tests that start
// `bin/dormant.js` as users do (serve child processes, the CLI) run what the sources say
// now, never a stale build. tsc is incremental: a build with nothing changed is quick.
import { execFile } from "node:child_process";
import { cp } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../runtime/module-url.ts";

const TSC = createRequire(import.meta.url).resolve("typescript/bin/tsc");
/** tsc's exit status when it found type errors but still wrote every output. */
const OUTPUTS_GENERATED = 2;

export default async function setup(): Promise<void> {
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, [TSC, "-p", "tsconfig.build.json"], { cwd: PACKAGE_ROOT }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr });
    });
  });
  // Type errors are the typecheck's business (npm run typecheck); the build is fresh either way.
  if (code === OUTPUTS_GENERATED) console.warn(`dist/ was built, with type errors:\n${output}`);
  else if (code !== 0) throw new Error(`Building dist/ failed (tsc -p tsconfig.build.json exited ${code}):\n${output}`);
  // tsc emits no .d.ts it was given: the WIT's types go into dist/ as npm run build puts them (for "dormant" and "dormant/testing").
  await cp(join(PACKAGE_ROOT, "wit", "types"), join(PACKAGE_ROOT, "dist", "wit", "types"), { recursive: true });
}
