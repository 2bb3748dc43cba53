// Staging folders of component deploys (`<entry>.<pid>.<12 hex>.tmp` in the engine cache)
// are renamed into place when complete, and so are the fs store's temp files
// (`.<name>.<pid>.<12 hex>.tmp` beside their target); one left by a writer that died would
// keep its space for ever. Those of processes no longer running go: staging folders at
// start, the store's temp files at each retention sweep.
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";

const STAGING_RE = /\.(\d+)\.[0-9a-f]{12}\.tmp$/;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether a staging or temp name belongs to a writer that is gone (never this process's own). */
function abandoned(name: string): boolean {
  const pid = Number(STAGING_RE.exec(name)?.[1] ?? NaN);
  return Number.isInteger(pid) && pid !== process.pid && !running(pid);
}

/** Remove the staging folders in `dir` whose writer is gone (another live host's are left alone); returns their names. */
export async function cleanStaging(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const stale = entries.filter(abandoned);
  await Promise.all(stale.map((name) => rm(join(dir, name), { recursive: true, force: true })));
  return stale;
}

/** Remove the fs store's temp files under `dir` (at any depth) whose writer is gone; returns their paths. */
export async function cleanTempFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  const stale = entries.filter((e) => e.isFile() && e.name.startsWith(".") && abandoned(e.name)).map((e) => join(e.parentPath, e.name));
  await Promise.all(stale.map((path) => rm(path, { force: true })));
  return stale;
}
