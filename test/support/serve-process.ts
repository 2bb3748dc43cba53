// `dormant serve` as a child process, as an operator runs it: bin/dormant.js on the compiled
// dist/, which test/setup/build-dist.ts builds from the current sources before the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../runtime/module-url.ts";

export const BIN = join(PACKAGE_ROOT, "bin", "dormant.js");

export interface ServeProcess {
  process: ChildProcess;
  /** The push origin. */
  pushUrl: string;
  /** The operator's origin: status page, admin API, metrics. */
  adminUrl: string;
  /** What it printed to stdout (the JSON log lines). */
  stdout: string[];
  /** What it printed to stderr (start-up banner, shutdown report). */
  stderr: string[];
  /** Resolves with the exit code (null after a signal). */
  exit: Promise<number | null>;
}

/** Start `dormant serve --port 0 --admin-port 0` on a data directory (and any further flags); resolves once it listens. */
export async function spawnServe(dataDir: string, adminToken: string, flags: string[] = []): Promise<ServeProcess> {
  const child = spawn("node", [BIN, "serve", "--port", "0", "--admin-port", "0", "--data-dir", dataDir, "--executors", "1", ...flags], {
    env: { ...process.env, DORMANT_ADMIN_TOKEN: adminToken },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const [pushUrl, adminUrl] = await new Promise<[string, string]>((resolve, reject) => {
    let seen = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /Dormant serving push (http:\/\/\S+), admin (http:\/\/\S+) /.exec(seen);
      if (match) resolve([match[1]!, match[2]!]);
    });
    void exit.then((code) => reject(new Error(`dormant serve exited with ${code}: ${seen}`)));
  });
  return { process: child, pushUrl, adminUrl, stdout, stderr, exit };
}

/** SIGKILL it and wait until it is gone. */
export async function killServe(serve: ServeProcess): Promise<void> {
  serve.process.kill("SIGKILL");
  await serve.exit;
}

/** Call the admin API of a `dormant serve` process with `token`; the JSON answer, or an error naming the status and body. */
export async function adminApi(serve: ServeProcess, token: string, method: string, path: string, body?: unknown, type = "application/json"): Promise<any> {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": type }) } };
  if (body !== undefined) init.body = body instanceof Buffer ? new Blob([body]) : JSON.stringify(body);
  const response = await fetch(`${serve.adminUrl}${path}`, init);
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}
