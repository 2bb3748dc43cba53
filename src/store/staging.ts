// Staging folders of component deploys (`<entry>.<pid>.<12 hex>.tmp` in the engine cache)
// are renamed into place when complete; one left by a writer that died or failed (a full
// disk) would keep its space for ever. At start, those of processes no longer running go.
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

/** Remove the staging folders in `dir` whose writer is gone (another live host's are left alone); returns their names. */
export async function cleanStaging(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const stale = entries.filter((name) => {
    const pid = Number(STAGING_RE.exec(name)?.[1] ?? NaN);
    return Number.isInteger(pid) && pid !== process.pid && !running(pid);
  });
  await Promise.all(stale.map((name) => rm(join(dir, name), { recursive: true, force: true })));
  return stale;
}
