// `npm run bench [-- --json]`: Dormant's figures, each beside a baseline measured in the
// same run. Not a test: it asserts nothing and prints what it measured.
import { wakeFigures } from "./wake.ts";

const json = process.argv.includes("--json");
const cycles = Number(process.env.DORMANT_BENCH_CYCLES ?? 200);

const figures: Record<string, number> = {
  ...(await wakeFigures("wat", "wat-minimal", cycles)),
  ...(await wakeFigures("js", "counter", cycles)),
};

if (json) {
  console.log(JSON.stringify(figures, null, 2));
} else {
  const width = Math.max(...Object.keys(figures).map((key) => key.length));
  for (const [key, value] of Object.entries(figures)) console.log(`${key.padEnd(width)}  ${value}`);
}
