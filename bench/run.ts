// `npm run bench [-- --json]`: Dormant's figures, each beside a baseline measured in the
// same run. Not a test: it asserts nothing and prints what it measured. It runs compiled by
// tsc (dist-bench/, built by the npm script), as `dormant serve` runs dist/: from the
// sources, tsx's transform keeps every function's name with a call each time a closure is
// made, 60 µs of a WAT wake's 0.95 ms, and its loader thread costs RSS.
import { clusterFigures } from "./cluster.ts";
import { densityFigures } from "./density.ts";
import { growthFigures } from "./growth.ts";
import { handoverFigures } from "./handover.ts";
import { pushFigures } from "./push.ts";
import { insertFigures, latenessFigures } from "./tasks.ts";
import { wakeFigures } from "./wake.ts";

const json = process.argv.includes("--json");
const cycles = Number(process.env.DORMANT_BENCH_CYCLES ?? 200);

// `npm run bench -- wake` (or `growth`, `tasks`, `lateness`, `push`, `density`, `cluster`, `handover`) runs one group.
const groups = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
const wanted = (group: string) => groups.length === 0 || groups.includes(group);

const figures: Record<string, number> = {
  ...(wanted("wake") ? await wakeFigures("wat", "wat-minimal", cycles) : {}),
  ...(wanted("wake") ? await wakeFigures("js", "counter", cycles, "starlingmonkey") : {}),
  ...(wanted("wake") ? await wakeFigures("qjs", "counter", cycles, "quickjs") : {}),
  ...(wanted("growth") ? await growthFigures("qjs", "quickjs") : {}),
  ...(wanted("tasks") ? await insertFigures() : {}),
  ...(wanted("tasks") ? await latenessFigures() : {}),
  // Only the timers due together, beside Miniflare (`npm run bench -- lateness`).
  ...(groups.includes("lateness") && !groups.includes("tasks") ? await latenessFigures({ spread: false }) : {}),
  ...(wanted("push") ? await pushFigures() : {}),
  // Minutes long: only when named (`npm run bench -- density`).
  ...(groups.includes("density") ? await densityFigures() : {}),
  // Minutes long, with PostgreSQL and real `dormant serve` processes on dist/: only when named (`npm run bench -- cluster`).
  ...(groups.includes("cluster") ? await clusterFigures() : {}),
  // Minutes long, the graceful handover of bench/cluster.ts step by step: only when named (`npm run bench -- handover`).
  ...(groups.includes("handover") ? await handoverFigures() : {}),
};

if (json) {
  console.log(JSON.stringify(figures, null, 2));
} else {
  const width = Math.max(...Object.keys(figures).map((key) => key.length));
  for (const [key, value] of Object.entries(figures)) console.log(`${key.padEnd(width)}  ${value}`);
}
