// Density: many QuickJS counter partitions on the fs store, each woken once and frozen;
// then what they cost at rest (stored bytes each, host RSS with all frozen), how long a host
// takes to start with them in the store, and wakes spread at random over them.
// `npm run bench -- density` (100,000 partitions: minutes; DORMANT_BENCH_DENSITY=<n> for fewer).
// The host runs compiled, as the whole bench does (see bench/run.ts).
// The clock is a fake one that never moves, so the counters' heartbeats do not fire.
import { readdir, readFile, rm, stat, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleComponent } from "../guests/examples.ts";
import { startHost, type Host } from "../src/host.ts";
import { FakeClock } from "../src/scheduler/clock.ts";
import { percentile, round } from "./stats.ts";
import { tick } from "./wake.ts";
import { inParallel } from "../test/support/in-parallel.ts";

const COUNT = Number(process.env.DORMANT_BENCH_DENSITY ?? 100_000);
const WAKES = Math.min(10_000, COUNT);
const IN_FLIGHT = 32;

export async function densityFigures(): Promise<Record<string, number>> {
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-bench-density-"));
  const label = COUNT === 100_000 ? "density.100k" : `density.${COUNT}`;
  const figures: Record<string, number> = {};
  const clock = new FakeClock(Date.now());
  const start = () => startHost({ dataDir, engineCacheDir: join(dataDir, "engine-cache"), executors: 2, clock });
  try {
    const ids = await provision(start, label, figures);
    figures[`${label}.bytes_per_partition`] = round((await storedBytes(dataDir, ["engine-cache", "components"])) / COUNT, 0);
    rssMiB(); // collects the first host: a restart is a new process, whose heap holds none of it

    const started = performance.now();
    const host = await start();
    figures[`${label}.start_ms`] = round(performance.now() - started, 0);
    figures[`${label}.rss_after_start_mb`] = round(rssMiB(), 0);

    const wakes: number[] = [];
    const woke = performance.now();
    await inParallel(Array.from({ length: WAKES }), IN_FLIGHT, async () => {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      const t0 = performance.now();
      await host.partitions.deliver(id, tick);
      wakes.push(performance.now() - t0);
      await freezeQuietly(host, id);
    });
    figures[`${label}.wakes`] = WAKES;
    figures[`${label}.wake_rps`] = round(WAKES / ((performance.now() - woke) / 1000), 0);
    figures[`${label}.wake_p50_ms`] = round(percentile(wakes, 50));
    figures[`${label}.wake_p99_ms`] = round(percentile(wakes, 99));
    await host.close();
    return figures;
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Provision COUNT partitions (each woken once, then frozen) on a host of their own, closed at the end; their ids. */
async function provision(start: () => Promise<Host>, label: string, figures: Record<string, number>): Promise<string[]> {
  const host = await start();
  const { digest } = await host.components.add(await readFile(await exampleComponent("counter", { engine: "quickjs" })));
  const ids: string[] = [];
  const provisioned = performance.now();
  await inParallel(Array.from({ length: COUNT }), IN_FLIGHT, async () => {
    const { id } = await host.partitions.create({ name: "d", component: digest });
    await host.partitions.activate(id);
    await host.partitions.freeze(id);
    ids.push(id);
  });
  figures[`${label}.provision_per_s`] = round(COUNT / ((performance.now() - provisioned) / 1000), 0);
  figures[`${label}.rss_mb`] = round(rssMiB(), 0);
  await host.close();
  return ids;
}

/** A random pick may hit a partition another wake has live; freezing it again is enough. */
async function freezeQuietly(host: Host, id: string): Promise<void> {
  await host.partitions.freeze(id).catch(() => undefined);
}

function rssMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

/** Bytes of the files under `dir`, except in the named top-level folders (shared by every partition). */
async function storedBytes(dir: string, except: string[]): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (except.some((folder) => path.startsWith(join(dir, folder)))) continue;
    total += (await stat(path)).size;
  }
  return total;
}
