// `dormant upgrade` against a `dormant serve` child: a component file or a digest, by
// partition name; it says whether the state was handed over, and a refused upgrade exits 1
// with the guest's message.
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { guestFile } from "../support/guests.ts";
import { BIN, spawnServe, type ServeProcess } from "../support/serve-process.ts";

const TOKEN = generateToken();
let serve: ServeProcess;

function dormant(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, DORMANT_URL: serve.adminUrl, DORMANT_ADMIN_TOKEN: TOKEN };
  return new Promise((resolve) => {
    execFile("node", [BIN, ...args], { env }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

beforeAll(async () => {
  serve = await spawnServe(join(await mkdtemp(join(tmpdir(), "dormant-upgrade-cli-")), "data"), TOKEN);
});

afterAll(() => {
  if (serve.process.exitCode === null) serve.process.kill("SIGKILL");
});

it("upgrades a partition by name to a component file, handing its state over, and refuses a broken version with its cause", async () => {
  const deployed = await dormant("deploy", guestFile("counter", { engine: "quickjs" }), "--name", "counter");
  expect(deployed.code, deployed.stderr).toBe(0);
  const upgraded = await dormant("upgrade", "counter", guestFile("counter-v2", { engine: "quickjs" }));
  expect(upgraded.code, upgraded.stderr).toBe(0);
  expect(upgraded.stdout).toMatch(/^counter \(p_\S+\) runs sha256:[0-9a-f]{64} \(was sha256:[0-9a-f]{64}\), its state handed over \(\d+ B\)\n/);
  expect(upgraded.stdout).toMatch(/^ {2}inbox {2}push {2}http:\/\/\S+\/push\/\S+$/m);
  expect(upgraded.stdout).toMatch(/^ {2}nightly {2}cron "0 3 \* \* \*" UTC /m);

  const refused = await dormant("upgrade", "counter", guestFile("refuses-upgrade"));
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/502: Upgrading partition p_\S+ failed in the new version's import-state: wat-refuses-upgrade cannot read any state/);
  const { partitions } = JSON.parse((await dormant("ps", "--json")).stdout);
  expect(partitions[0].component).toBe(/runs (sha256:[0-9a-f]{64})/.exec(upgraded.stdout)![1]);
});
