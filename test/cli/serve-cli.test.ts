// The `dormant` command line against a `dormant serve` child process: deploy, ps, tasks,
// fire, freeze, rm, and a graceful SIGTERM.
import { execFile } from "node:child_process";
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { BIN, spawnServe, type ServeProcess } from "../support/serve-process.ts";

const run = promisify(execFile);
const TOKEN = generateToken();

let serve: ServeProcess;
let dataDir: string;

async function dormant(...args: string[]): Promise<any> {
  const { stdout } = await run("node", [BIN, ...args, "--json"], { env: { ...process.env, DORMANT_URL: serve.adminUrl, DORMANT_ADMIN_TOKEN: TOKEN } });
  return JSON.parse(stdout);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "dormant-cli-"));
  serve = await spawnServe(dataDir, TOKEN);
});

afterAll(() => {
  if (serve.process.exitCode === null) serve.process.kill("SIGKILL");
});

describe("dormant CLI against a server", () => {
  let partition: string;

  it("deploys a component as a partition, activated, and lists it with ps", async () => {
    const { partition: created } = await dormant("deploy", inject("guests").counter, "--name", "cli-counter");
    partition = created.id;
    expect(created).toMatchObject({ kind: "fresh", state: "idle" });
    const { partitions } = await dormant("ps");
    expect(partitions).toMatchObject([{ id: partition, name: "cli-counter", state: "idle" }]);
  });

  it("lists tasks and fires one, reporting how it went", async () => {
    const { tasks } = await dormant("tasks", "--partition", partition);
    expect(tasks.map((t: { name: string }) => t.name).sort()).toEqual(["heartbeat", "inbox"]);
    const heartbeat = tasks.find((t: { name: string }) => t.name === "heartbeat");
    expect(await dormant("fire", heartbeat.id)).toMatchObject({ delivery: expect.stringMatching(/^e_/), outcome: { attempt: 1, ok: true } });
  });

  it("freezes a partition", async () => {
    const frozen = await dormant("freeze", partition);
    expect(frozen).toMatchObject({ id: partition, state: "frozen" });
    expect(frozen.snapshotBytes).toBeGreaterThan(0);
  });

  it("explains a wrong token and an unreachable server", async () => {
    const wrong = run("node", [BIN, "ps"], { env: { ...process.env, DORMANT_URL: serve.adminUrl, DORMANT_ADMIN_TOKEN: "nope" } });
    await expect(wrong).rejects.toMatchObject({ stderr: expect.stringMatching(/403: The admin token is wrong/) });
    const away = run("node", [BIN, "ps", "--url", "http://127.0.0.1:9"], { env: { ...process.env, DORMANT_ADMIN_TOKEN: TOKEN } });
    await expect(away).rejects.toMatchObject({ stderr: expect.stringMatching(/Cannot reach http:\/\/127.0.0.1:9.*Is dormant serve running there\?/) });
  });

  it("toggles the constrained budget on SIGUSR2", async () => {
    const budget = async () => (await fetch(`${serve.adminUrl}/api/budget`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect((await budget()).constrained).toBe(false);
    serve.process.kill("SIGUSR2");
    await expect.poll(async () => (await budget()).constrained).toBe(true);
    serve.process.kill("SIGUSR2");
    await expect.poll(async () => (await budget()).constrained).toBe(false);
  });

  it("refuses a second server on the same data directory with one line naming the first one's pid", async () => {
    const second = run("node", [BIN, "serve", "--port", "0", "--admin-port", "0", "--data-dir", dataDir, "--executors", "1"], {
      env: { ...process.env, DORMANT_ADMIN_TOKEN: TOKEN },
    });
    await expect(second).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        new RegExp(`^dormant: The data directory ${dataDir} is in use by another Dormant host \\(pid ${serve.process.pid} on .*--data-dir.*\\.\n$`),
      ),
    });
  });

  it("stops on SIGTERM with exit code 0, live partitions frozen", async () => {
    await fetch(`${serve.adminUrl}/api/partitions/${partition}/activate`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    serve.process.kill("SIGTERM");
    expect(await serve.exit).toBe(0);
    expect((await readdir(join(dataDir, "snapshots"))).length).toBeGreaterThan(0);
  });

  it("removes a partition (on a new server over the same data)", async () => {
    serve = await spawnServe(dataDir, TOKEN);
    expect(await dormant("rm", partition)).toEqual({ deleted: partition });
    expect((await dormant("ps")).partitions).toEqual([]);
    serve.process.kill("SIGTERM");
    expect(await serve.exit).toBe(0);
  });
});
