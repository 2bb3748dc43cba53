// A new user's first run, with the commands the README gives: the README's own hello.js is
// built, deployed (which activates it and prints its push URL) and pushed to; a guest that
// throws in on-activate says why; names work wherever ids do; and the server says when it
// stopped. Runs bin/dormant.js against a `dormant serve` child, as a user would.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { BIN, killServe, spawnServe, type ServeProcess } from "../support/serve-process.ts";

const TOKEN = generateToken();
let serve: ServeProcess;
let dir: string;

/** Runs `dormant …` against the server; resolves with its exit code and output, whatever the code. */
function dormant(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, DORMANT_URL: serve?.adminUrl ?? "", DORMANT_ADMIN_TOKEN: TOKEN };
  return new Promise((resolve) => {
    execFile("node", [BIN, ...args], { env, cwd: dir }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

async function ok(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await dormant(...args);
  expect(code, `dormant ${args.join(" ")}: ${stderr}`).toBe(0);
  return stdout;
}

/** The complete JSON log lines the current server printed so far. */
function logLines(): Record<string, unknown>[] {
  const text = serve.stdout.join("");
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The README's quick-start guest, exactly as the README gives it. */
async function readmeHello(): Promise<string> {
  const readme = await readFile(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
  const source = /```js\n(\/\/ hello\.js\n[\s\S]*?)```/.exec(readme)?.[1];
  expect(source, "README.md has a ```js block starting with // hello.js").toBeDefined();
  return source!;
}

const BROKEN = `export const lifecycle = { onActivate() { throw new Error("config is missing: set GREETING"); } };
export const handler = { onTask() {} };
`;

// The crash test below needs hello never frozen before the kill: on a busy machine the
// steps before it can outlast the default 10 s idle timeout.
const NO_IDLE_FREEZE = ["--idle-timeout", "600000"];

/**
 * hello's `every-minute` cron wakes it at each minute, and --prewarm a second before: a step
 * that needs it to stay frozen starts clear of that (waiting past the minute when close to it).
 */
async function clearOfTheMinute(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 62_000 - intoMinute));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dormant-first-run-"));
  await writeFile(join(dir, "hello.js"), await readmeHello());
  await writeFile(join(dir, "broken.js"), BROKEN);
  await ok("build", "hello.js", "-o", "hello.wasm");
  await ok("build", "broken.js", "-o", "broken.wasm");
  serve = await spawnServe(join(dir, "data"), TOKEN, NO_IDLE_FREEZE);
});

afterAll(() => {
  if (serve.process.exitCode === null) serve.process.kill("SIGKILL");
});

describe("a first run as the README tells it", () => {
  let pushUrl: string;

  it("deploys the README's hello.js, activating it: deploy prints its tasks and push URL, and the push URL answers", async () => {
    const out = await ok("deploy", "hello.wasm", "--name", "hello");
    expect(out).toMatch(/^partition p_\S+ \(hello\) runs sha256:[0-9a-f]{64}, activated \(fresh\)$/m);
    expect(out).toMatch(/^ {2}every-minute {2}cron "\* \* \* \* \*" UTC {2}\d{4}-/m);
    pushUrl = /^ {2}inbox {2}push {2}(http:\/\/\S+\/push\/\S+)$/m.exec(out)?.[1] ?? "";
    expect(pushUrl.startsWith(serve.pushUrl)).toBe(true);
    const response = await fetch(pushUrl, { method: "POST", body: "world" });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("hello #1: world\n");
    expect(logLines()).toContainEqual(expect.objectContaining({ event: "guest-log", level: "info", message: "push #1" }));
  });

  it("refuses to deploy a name twice, saying how to replace it", async () => {
    const again = await dormant("deploy", "hello.wasm", "--name", "hello");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /409: A partition is already named "hello" \(p_\S+\); choose another name, or send "replace": true \(dormant deploy --replace\)/,
    );
    expect(JSON.parse(await ok("ps", "--json")).partitions).toHaveLength(1);
  });

  it("lists tasks by partition name with their triggers, and fire reports the outcome", async () => {
    const out = await ok("tasks", "--partition", "hello");
    expect(out.split("\n")[0]).toMatch(/^ID +NAME +PARTITION +TRIGGER +PRIORITY +NEXT FIRE \/ PUSH URL$/);
    expect(out).toMatch(/every-minute +p_\S+ +cron "\* \* \* \* \*" UTC +10 /);
    expect(out).toContain(pushUrl);
    const { tasks } = JSON.parse(await ok("tasks", "--partition", "hello", "--json"));
    const minute = tasks.find((t: { name: string }) => t.name === "every-minute");
    expect(await ok("fire", minute.id)).toMatch(new RegExp(`^fired ${minute.id}: delivery e_\\S+ ok in [\\d.]+ ms\\n$`));
  });

  it("keeps the push URL when the server crashes before the first snapshot and the guest registers again", async () => {
    await killServe(serve);
    serve = await spawnServe(join(dir, "data"), TOKEN, NO_IDLE_FREEZE);
    // No snapshot was ever taken: this push starts hello fresh, and it registers inbox again.
    const response = await fetch(pushUrl.replace(/^http:\/\/[^/]+/, serve.pushUrl), { method: "POST", body: "again" });
    expect(await response.text()).toBe("hello #1: again\n");
    expect(logLines()).toContainEqual(expect.objectContaining({ event: "delivery", task: "inbox", activation: "fresh", ok: true }));
    pushUrl = pushUrl.replace(/^http:\/\/[^/]+/, serve.pushUrl);
    expect(await ok("tasks", "--partition", "hello")).toContain(pushUrl);
  });

  it("reports a guest that throws in on-activate: deploy fails with its message, and the partition stays, marked, counted and logged", async () => {
    const failed = await dormant("deploy", "broken.wasm", "--name", "broken");
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /502: Partition p_\S+ refused activation \(fresh\): Error: config is missing: set GREETING\. The partition p_\S+ was created/,
    );
    expect(await ok("ps")).toMatch(/broken +activation-failed[\s\S]*broken: activation failed: .*Error: config is missing: set GREETING/);
    const again = await dormant("activate", "broken");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/502: Partition p_\S+ refused activation \(fresh\): Error: config is missing/);
    expect(logLines().filter((line) => line.event === "activation-failed")).toMatchObject([
      { reason: "fresh", error: expect.stringContaining("Error: config is missing: set GREETING") },
      { reason: "fresh", error: expect.stringContaining("Error: config is missing: set GREETING") },
    ]);
    const metrics = await (await fetch(`${serve.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/dormant_activation_failures_total\{reason="fresh"\} 2/);
    const page = await (await fetch(`${serve.adminUrl}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(page).toContain("activation (fresh) failed:");
  });

  it("lists components with the partitions that run them, and dead letters", async () => {
    expect(await ok("components")).toMatch(/^DIGEST +PARTITIONS\nsha256:[0-9a-f]{64} +(hello|broken)\nsha256:[0-9a-f]{64} +(hello|broken)\n$/);
    expect(await ok("dead-letters")).toMatch(/^ID +TASK +PARTITION +ATTEMPTS +DEAD AT +LAST ERROR\n$/);
    const retry = await dormant("dead-letters", "--retry", "e_nope");
    expect(retry.code).toBe(1);
    expect(retry.stderr).toMatch(/404: No dead letter has this id/);
  });

  it("freezes, activates and removes partitions by name; deploy --replace starts a name anew", async () => {
    await clearOfTheMinute();
    expect(await ok("freeze", "hello")).toMatch(/^hello \(p_\S+\) is frozen, snapshot \d+ B\n$/);
    expect(await ok("activate", "hello")).toMatch(/^hello \(p_\S+\) is idle, activated rehydrated\n {2}every-minute /);
    const replaced = await ok("deploy", "hello.wasm", "--name", "hello", "--replace");
    expect(replaced).toMatch(/activated \(fresh\)/);
    expect(await ok("rm", "broken")).toBe("deleted broken\n");
    const { partitions } = JSON.parse(await ok("ps", "--json"));
    expect(partitions.map((p: { name: string }) => p.name)).toEqual(["hello"]);
  });

  it("logs one line when the server stopped", async () => {
    serve.process.kill("SIGTERM");
    expect(await serve.exit).toBe(0);
    expect(logLines().filter((line) => line.event === "stopped")).toMatchObject([{ signal: "SIGTERM", ok: true }]);
  });
});
