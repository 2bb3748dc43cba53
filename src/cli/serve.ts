// `dormant serve`: one process serving push triggers on one port and the admin API,
// metrics and the status page on another. Settings come from flags, then DORMANT_* environment variables, then a
// JSON config file, then the embedded defaults.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { exampleComponent, type ExampleName } from "../../guests/examples.ts";
import type { HttpOptions } from "../http/app.ts";
import { startServer, type Server, type ServeOptions } from "../serve/server.ts";
import { DEFAULT_TASK_LIMITS, type TaskLimits } from "../tasks/limits.ts";

const HELP = `Usage: dormant serve [options]

Serves push triggers (/push/<token>) on one port, and the operator's surface — status
page (/), admin API (/api, bearer token), /metrics, /healthz — on another, so guests
never share the operator's origin.

Options (environment variable in brackets):
  --data-dir DIR        Data directory: fs store and engine cache (default ./.dormant) [DORMANT_DATA_DIR]
  --store URL           Store URL, e.g. redis://127.0.0.1:6379/0?prefix=dormant [DORMANT_STORE]
  --port N              Push port (default 8787) [DORMANT_PORT]
  --host ADDR           Address the push port listens on (default 127.0.0.1) [DORMANT_HOST]
  --admin-port N        Port of the status page, admin API and metrics (default 8788) [DORMANT_ADMIN_PORT]
  --admin-host ADDR     Address the admin port listens on (default 127.0.0.1) [DORMANT_ADMIN_HOST]
  --admin-hostnames A,B Host names the admin port answers to besides localhost and IP addresses,
                        e.g. behind a reverse proxy [DORMANT_ADMIN_HOSTNAMES]
  --trust-proxy         Take the client address and host from X-Forwarded-For/-Host [DORMANT_TRUST_PROXY=1]
  --idle-timeout MS     Freeze partitions idle this long (default 10000) [DORMANT_IDLE_TIMEOUT_MS]
  --executors N         Executor threads (default: one per core) [DORMANT_EXECUTORS]
  --power-file PATH     File whose content constrains the budget ("normal" | "constrained [threshold]") [DORMANT_POWER_FILE]
  --max-live N          Partitions live at once; beyond it the least recently used freeze (default 1000) [DORMANT_MAX_LIVE]
  --cpu-deadline MS     Time one activation or event may run (default 5000) [DORMANT_CPU_DEADLINE_MS]
  --memory-limit MIB    Linear memory per partition (default 256) [DORMANT_MEMORY_LIMIT_MIB]
  --config FILE         JSON file with any of the settings above (dataDir, store, port, host,
                        idleTimeoutMs, executors, powerFile, maxLive, cpuDeadlineMs, memoryLimitMiB,
                        adminPort, adminHost, adminHostnames, trustProxy, metricsToken)
                        and the quotas: tasks {maxTasks, minIntervalMs, maxPayloadBytes, maxAttempts},
                        http {maxBodyBytes, maxComponentBytes, pushRate {perSecond, burst}, pushDeadlineMs,
                        guestCsp, sessionTtlMs, authFailures {perSecond, burst}}, snapshotLimitBytes
  --demo                Deploy the example guests as partitions on first start
  -h, --help            This help

The admin token is DORMANT_ADMIN_TOKEN (at least 32 random characters: openssl rand -hex 32),
or one generated at first start and kept in the store (printed then). DORMANT_METRICS_TOKEN,
when set, is required to read /metrics. SIGTERM or SIGINT stops accepting requests, finishes in-flight
work, freezes live partitions and exits 0. SIGUSR2 toggles the constrained budget.`;

interface Config {
  dataDir?: string;
  store?: string;
  port?: number;
  host?: string;
  adminPort?: number;
  adminHost?: string;
  adminHostnames?: string[];
  trustProxy?: boolean;
  metricsToken?: string;
  idleTimeoutMs?: number;
  executors?: number;
  powerFile?: string;
  maxLive?: number;
  cpuDeadlineMs?: number;
  memoryLimitMiB?: number;
  snapshotLimitBytes?: number;
  tasks?: Partial<TaskLimits>;
  http?: Omit<HttpOptions, "adminToken" | "metricsToken">;
}

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number; got ${JSON.stringify(text)}.`);
  return value;
}

function yes(text: string | undefined): boolean | undefined {
  return text === undefined ? undefined : /^(1|true|yes)$/i.test(text);
}

function list(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(",").map((name) => name.trim()).filter((name) => name !== "");
}

export async function settings(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config; demo: boolean; help: boolean }> {
  const { values } = parseArgs({
    args,
    options: {
      "data-dir": { type: "string" }, store: { type: "string" }, port: { type: "string" }, host: { type: "string" },
      "idle-timeout": { type: "string" }, executors: { type: "string" }, "power-file": { type: "string" }, config: { type: "string" },
      "max-live": { type: "string" }, "cpu-deadline": { type: "string" }, "memory-limit": { type: "string" },
      "admin-port": { type: "string" }, "admin-host": { type: "string" }, "admin-hostnames": { type: "string" }, "trust-proxy": { type: "boolean" },
      demo: { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  let file: Config = {};
  if (values.config) {
    try {
      file = JSON.parse(await readFile(values.config, "utf8")) as Config;
    } catch (error) {
      throw new Error(`Cannot read the config file ${values.config}: ${(error as Error).message}`);
    }
  }
  const pick = <T>(...candidates: (T | undefined)[]) => candidates.find((value) => value !== undefined);
  const config: Config = {
    dataDir: pick(values["data-dir"], env.DORMANT_DATA_DIR, file.dataDir),
    store: pick(values.store, env.DORMANT_STORE, file.store),
    port: pick(number("--port", values.port), number("DORMANT_PORT", env.DORMANT_PORT), file.port),
    host: pick(values.host, env.DORMANT_HOST, file.host),
    adminPort: pick(number("--admin-port", values["admin-port"]), number("DORMANT_ADMIN_PORT", env.DORMANT_ADMIN_PORT), file.adminPort),
    adminHost: pick(values["admin-host"], env.DORMANT_ADMIN_HOST, file.adminHost),
    adminHostnames: pick(list(values["admin-hostnames"]), list(env.DORMANT_ADMIN_HOSTNAMES), file.adminHostnames),
    trustProxy: pick(values["trust-proxy"], yes(env.DORMANT_TRUST_PROXY), file.trustProxy),
    metricsToken: pick(env.DORMANT_METRICS_TOKEN || undefined, file.metricsToken),
    idleTimeoutMs: pick(number("--idle-timeout", values["idle-timeout"]), number("DORMANT_IDLE_TIMEOUT_MS", env.DORMANT_IDLE_TIMEOUT_MS), file.idleTimeoutMs),
    executors: pick(number("--executors", values.executors), number("DORMANT_EXECUTORS", env.DORMANT_EXECUTORS), file.executors),
    powerFile: pick(values["power-file"], env.DORMANT_POWER_FILE, file.powerFile),
    maxLive: pick(number("--max-live", values["max-live"]), number("DORMANT_MAX_LIVE", env.DORMANT_MAX_LIVE), file.maxLive),
    cpuDeadlineMs: pick(number("--cpu-deadline", values["cpu-deadline"]), number("DORMANT_CPU_DEADLINE_MS", env.DORMANT_CPU_DEADLINE_MS), file.cpuDeadlineMs),
    memoryLimitMiB: pick(number("--memory-limit", values["memory-limit"]), number("DORMANT_MEMORY_LIMIT_MIB", env.DORMANT_MEMORY_LIMIT_MIB), file.memoryLimitMiB),
    ...(file.snapshotLimitBytes !== undefined ? { snapshotLimitBytes: file.snapshotLimitBytes } : {}),
    ...(file.tasks ? { tasks: file.tasks } : {}),
    ...(file.http ? { http: file.http } : {}),
  };
  return { config, demo: values.demo ?? false, help: values.help ?? false };
}

export async function serveCommand(args: string[]): Promise<void> {
  const { config, demo, help } = await settings(args);
  if (help) return void console.log(HELP);
  const options: ServeOptions = {
    ...(config.dataDir ? { dataDir: config.dataDir } : {}),
    ...(config.store ? { store: config.store } : {}),
    ...(config.port !== undefined ? { port: config.port } : {}),
    ...(config.host ? { hostname: config.host } : {}),
    ...(config.adminPort !== undefined ? { adminPort: config.adminPort } : {}),
    ...(config.adminHost ? { adminHostname: config.adminHost } : {}),
    ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}),
    ...(config.idleTimeoutMs !== undefined ? { idleTimeoutMs: config.idleTimeoutMs } : {}),
    ...(config.executors ? { executors: config.executors } : {}),
    ...(config.powerFile ? { powerFile: config.powerFile } : {}),
    ...(config.maxLive !== undefined ? { maxLive: config.maxLive } : {}),
    ...(config.tasks ? { limits: { ...DEFAULT_TASK_LIMITS, ...config.tasks } } : {}),
    http: {
      ...config.http,
      ...(config.adminHostnames ? { adminHostnames: config.adminHostnames } : {}),
      ...(config.trustProxy !== undefined ? { trustProxy: config.trustProxy } : {}),
    },
    partitionLimits: {
      ...(config.cpuDeadlineMs !== undefined ? { cpuDeadlineMs: config.cpuDeadlineMs } : {}),
      ...(config.memoryLimitMiB !== undefined ? { memoryBytes: config.memoryLimitMiB * 2 ** 20 } : {}),
      ...(config.snapshotLimitBytes !== undefined ? { snapshotBytes: config.snapshotLimitBytes } : {}),
    },
    onLog: (partition, level, message) => process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), event: "guest-log", partition, level, message })}\n`),
  };
  const server = await startServer(options);
  if (demo) await deployDemo(server);
  const { store, pool } = server.host;
  console.error(`Dormant serving push ${server.pushUrl}, admin ${server.adminUrl} (store ${store.description}, ${pool.size} executors)`);
  console.error(`  status page  ${server.adminUrl}/`);
  console.error(`  admin API    ${server.adminUrl}/api   metrics ${server.adminUrl}/metrics   health ${server.adminUrl}/healthz`);
  console.error(server.tokenGenerated ? `  admin token  ${server.adminToken}   (generated now and kept in the store; set DORMANT_ADMIN_TOKEN to choose one)` : "  admin token  as set before (DORMANT_ADMIN_TOKEN, or the one printed at first start)");
  for (const task of server.host.registry.all().filter((t) => t.pushToken)) {
    console.error(`  push         ${server.pushUrl}/push/${task.pushToken}   (${task.name} of ${task.partition})`);
  }
  // A power-state input for hosts without a power file: SIGUSR2 toggles the constraint.
  process.on("SIGUSR2", () => {
    const { constrained, threshold } = server.host.budget.set({ constrained: !server.host.budget.state.constrained });
    console.error(constrained ? `SIGUSR2: constrained to priority ${threshold} and above` : "SIGUSR2: constraint lifted");
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.error(`${signal}: finishing in-flight work and freezing live partitions…`);
      void server.close().then(resolve, (error: Error) => {
        console.error(`dormant: shutdown failed: ${error.message}`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

/** The example guests as partitions, once: a counter and a task-recorder. */
async function deployDemo(server: Server): Promise<void> {
  const { partitions } = server.host;
  for (const [name, example] of [["counter", "counter"], ["recorder", "task-recorder"]] as [string, ExampleName][]) {
    const { digest } = await server.host.components.add(await readFile(await exampleComponent(example)));
    if (partitions.list().some((p) => p.name === name)) continue;
    const { id } = await partitions.create({ name, component: digest });
    await partitions.activate(id);
  }
}
