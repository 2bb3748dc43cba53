// The first-run replay (scripts/first-run-replay.sh) in the suite: issue #14's first run as a
// new user makes it, with the built CLI against a `dormant serve` child on a fresh data
// directory. The script prints each step and what it saw; a failed check names itself.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { expect, it } from "vitest";

const SCRIPT = join(import.meta.dirname, "..", "..", "scripts", "first-run-replay.sh");

it("replays a new user's first run: serve, new, build, deploy, push, a cron task, a broken guest's errors, dead letters, a crash, stop", async () => {
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile("bash", [SCRIPT], { maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}\n${stderr}` }),
    );
  });
  expect(code, output).toBe(0);
  expect(output).toMatch(/first-run replay: every step passed in \d+ s/);
}, 300_000);
