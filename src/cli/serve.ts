// `dormant serve`: one process serving push triggers, the admin API, metrics and the
// status page. Settings come from flags, then DORMANT_* environment variables, then a
// JSON config file, then the defaults; src/options.ts lists them all once.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { defu } from "defu";
import type { ExampleName } from "../../guests/examples.ts";
import type { Server, ServeOptions } from "../serve/server.ts";
import { defaultOf, getPath, optionOf, SERVE_DEFAULTS, setPath, SETTINGS, type Setting } from "../options.ts";

/** One setting's line in the help: flag, what it does, its default, its variable and config key. */
function helpLine(s: Setting): string {
  const flag = s.flag ? `--${s.flag} ${s.kind.arg}` : "(no flag)";
  return `  ${flag.padEnd(23)} ${s.help} (default ${defaultOf(s)}) [${s.env}, ${s.key}]`;
}

const HELP = `Usage: dormant serve [options]

Serves push triggers (/push/<token>) on one port, and the operator's surface (status
page /, admin API /api with a bearer token, /metrics, /healthz) on another, so guests
never share the operator's origin.

Options [environment variable, config-file key]:
${SETTINGS.map(helpLine).join("\n")}
  --config FILE           JSON file with any of the config-file keys; a dotted key nests:
                          {"port": 9000, "tasks": {"maxTasks": 50}, "http": {"pushRate": {"perSecond": 10}}}
  --demo                  Deploy the example guests as partitions on first start
  -h, --help              This help

A flag beats its environment variable, which beats the config file.
The admin token is DORMANT_ADMIN_TOKEN (at least 32 random characters: openssl rand -hex 32),
or one generated at first start and kept in the store (printed then). SIGTERM or SIGINT stops accepting requests, freezes live
partitions, drains work under way and closes every connection within --shutdown-timeout, then exits: 0 when every live
partition was saved, 1 naming those that were not. SIGUSR2 toggles the constrained budget.`;

/** Settings as the config file nests them (`tasks.maxTasks` is `{ tasks: { maxTasks } }`). */
export type Config = Record<string, unknown>;

/** Reads one source's text values (flags or environment) into a config, refusing an invalid one by name. */
function fromText(read: (setting: Setting) => [name: string, text: string | undefined]): Config {
  const config: Config = {};
  for (const setting of SETTINGS) {
    const [name, text] = read(setting);
    if (text === undefined) continue;
    const value = setting.kind.fromText(text);
    const problem = setting.kind.problem(value);
    if (problem) throw new Error(`${name} ${problem}; got ${JSON.stringify(text)}.`);
    setPath(config, setting.key, value);
  }
  return config;
}

const KEYS = SETTINGS.map((s) => s.key);

/** Checks a config file's content against the settings table: every key known, every value valid. */
function checkFile(json: unknown, file: string, prefix = ""): Config {
  const where = `Config file ${file}`;
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${where}: ${prefix ? `"${prefix}" must be an object` : "must hold a JSON object"}; got ${JSON.stringify(json)}.`);
  }
  for (const [name, value] of Object.entries(json)) {
    const key = prefix ? `${prefix}.${name}` : name;
    const setting = SETTINGS.find((s) => s.key === key);
    if (setting) {
      const problem = setting.kind.problem(value);
      if (problem) throw new Error(`${where}: "${key}" ${problem}; got ${JSON.stringify(value)}.`);
    } else if (KEYS.some((k) => k.startsWith(`${key}.`))) {
      checkFile(value, file, key);
    } else {
      const near = suggestion(key);
      throw new Error(`${where}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}. Valid keys: ${KEYS.join(", ")}.`);
    }
  }
  return json as Config;
}

/** The known key a mistyped one was probably meant to be: a flag or variable name, another case, or a near spelling. */
function suggestion(key: string): string | undefined {
  const plain = (name: string) => name.toLowerCase().replace(/[^a-z0-9.]/g, "");
  const named = SETTINGS.find((s) => [s.key, s.flag ?? s.key, s.env, s.env.replace(/^DORMANT_/, "")].some((name) => plain(name) === plain(key)));
  if (named) return named.key;
  const [best] = KEYS.map((k) => [k, distance(plain(k), plain(key))] as const).sort((a, b) => a[1] - b[1]);
  return best && best[1] <= Math.max(2, Math.floor(key.length / 4)) ? best[0] : undefined;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** Flags over DORMANT_* variables over the config file; what none of them gives stays unset. */
export async function settings(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config; demo: boolean; help: boolean }> {
  const { values } = parseArgs({
    args,
    options: {
      ...Object.fromEntries(SETTINGS.filter((s) => s.flag).map((s) => [s.flag!, { type: "string" as const }])),
      config: { type: "string" },
      demo: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const flags = values as Record<string, string | undefined>;
  let file: Config = {};
  if (typeof values.config === "string") {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(values.config, "utf8"));
    } catch (error) {
      throw new Error(`Cannot read the config file ${values.config}: ${(error as Error).message}`);
    }
    file = checkFile(json, values.config);
  }
  const config = defu(
    fromText((s) => [`--${s.flag}`, s.flag ? flags[s.flag] : undefined]),
    fromText((s) => [s.env, env[s.env]]),
    file,
  );
  return { config, demo: values.demo === true, help: values.help === true };
}

/** The server's options: each setting where the table says, over the defaults. */
export function serveOptions(config: Config): ServeOptions {
  const options: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = getPath(config, setting.key);
    if (value !== undefined) setPath(options, optionOf(setting), setting.scale ? (value as number) * setting.scale : value);
  }
  return defu(options, SERVE_DEFAULTS) as ServeOptions;
}

export async function serveCommand(args: string[]): Promise<void> {
  const { config, demo, help } = await settings(args);
  if (help) return void console.log(HELP);
  // Set once the signal handlers are in place; a fatal error before then ends the start.
  let stopFor: ((reason: string, code: number) => void) | undefined;
  const options: ServeOptions = {
    ...serveOptions(config),
    onFatal: (error) => {
      console.error(`dormant: ${error.message}`);
      if (stopFor) stopFor("store lost", 1);
      else process.exit(1);
    },
    onLog: (partition, level, message) =>
      process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), event: "guest-log", partition, level, message })}\n`),
  };
  // Imported here, so that --help and a bad setting answer without loading the host.
  const { startServer } = await import("../serve/server.ts");
  const server = await startServer(options);
  if (demo) await deployDemo(server);
  const { store, pool } = server.host;
  console.error(`Dormant serving push ${server.pushUrl}, admin ${server.adminUrl} (store ${store.description}, ${pool.size} executors)`);
  console.error(`  status page  ${server.adminUrl}/`);
  console.error(`  admin API    ${server.adminUrl}/api   metrics ${server.adminUrl}/metrics   health ${server.adminUrl}/healthz`);
  console.error(
    server.tokenGenerated
      ? `  admin token  ${server.adminToken}   (generated now and kept in the store; set DORMANT_ADMIN_TOKEN to choose one)`
      : "  admin token  as set before (DORMANT_ADMIN_TOKEN, or the one printed at first start)",
  );
  for (const task of server.host.registry.all().filter((t) => t.pushToken)) {
    console.error(`  push         ${server.pushUrl}/push/${task.pushToken}   (${task.name} of ${task.partition})`);
  }
  // A power-state input for hosts without a power file: SIGUSR2 toggles the constraint.
  process.on("SIGUSR2", () => {
    const { constrained, threshold } = server.host.budget.set({ constrained: !server.host.budget.state.constrained });
    console.error(constrained ? `SIGUSR2: constrained to priority ${threshold} and above` : "SIGUSR2: constraint lifted");
  });
  let signalled = "";
  let started = 0;
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string, failed = 0) => {
      if (stopping) return;
      stopping = true;
      signalled = signal;
      started = performance.now();
      const timeoutMs = options.shutdownTimeoutMs ?? SERVE_DEFAULTS.shutdownTimeoutMs;
      console.error(`${signal}: freezing live partitions, then finishing in-flight work (at most ${timeoutMs} ms)…`);
      // The last resort, should closing itself hang: the supervisor's kill would lose more.
      setTimeout(() => {
        console.error(`dormant: shutdown did not finish within ${timeoutMs} ms; exiting anyway.`);
        resolve(1);
      }, timeoutMs + 5000).unref();
      void server.close().then(
        ({ unsaved, timedOut }) => {
          if (timedOut.length > 0) console.error(`dormant: shutdown gave up on ${timedOut.join(" and ")} after ${timeoutMs} ms.`);
          if (unsaved.length === 0) return resolve(failed);
          console.error(`dormant: the state of ${unsaved.length} partition(s) was not saved; they restart from their last snapshot:`);
          for (const { partition, error } of unsaved) console.error(`  ${partition}: ${error}`);
          resolve(1);
        },
        (error: Error) => {
          console.error(`dormant: shutdown failed: ${error.message}`);
          resolve(1);
        },
      );
    };
    stopFor = (reason, failed) => stop(reason, failed);
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  const line = { at: new Date().toISOString(), event: "stopped", signal: signalled, ms: Math.round(performance.now() - started), ok: code === 0 };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  // Whatever a guest or a client left behind, the process ends here.
  process.exit(code);
}

/** The example guests as partitions, once: a counter and a task-recorder. */
async function deployDemo(server: Server): Promise<void> {
  const { exampleComponent } = await import("../../guests/examples.ts");
  const { partitions } = server.host;
  for (const [name, example] of [
    ["counter", "counter"],
    ["recorder", "task-recorder"],
  ] as [string, ExampleName][]) {
    const { digest } = await server.host.components.add(await readFile(await exampleComponent(example)));
    if (partitions.list().some((p) => p.name === name)) continue;
    const { id } = await partitions.create({ name, component: digest });
    await partitions.activate(id);
  }
}
