// The `dormant` command line. Each command's module is imported only when it runs, so
// `--help` and `--version` load nothing heavy (no jco, hono or unstorage).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../runtime/index.ts";

const USAGE = `Usage: dormant <command> [options]

Commands:
  serve [--port N] [--data-dir DIR] [--store URL] [--demo]
                                            Serve push triggers, the admin API, metrics and a status page
  new <dir> [--template js|ts|wat]          Write a guest to start from, with its README and package.json
  build <entry.js|.ts|.wat> -o <out.wasm>   Build a guest component for the dormant:host/partition world
  demo [--data-dir DIR] [--store URL]       Run the example guests once: activate, freeze, rehydrate,
                                            and print what they did

Talking to a running server (--url, --token or DORMANT_URL, DORMANT_ADMIN_TOKEN; --json):
  deploy <component.wasm> --name NAME [--replace]
                                            Upload a component, create and activate a partition;
                                            prints its tasks and push URLs
  activate <partition>                      Activate a partition (by id or name)
  upgrade <partition> <new.wasm|digest>     Run a new component version on a partition, keeping its
                                            tasks (and its state, if both versions hand it over)
  ps                                        List partitions
  tasks [--partition ID|NAME]               List tasks with their triggers and push URLs
  fire <task-id>                            Fire a task now and report how it went
  freeze <partition>                        Freeze a partition
  rm <partition>                            Delete a partition
  logs <partition> [--follow]               Print a partition's recent guest log lines
  dead-letters [--retry ID]                 List dead letters, or put one back
  components [remove <digest>]              List deployed components and their partitions, or remove
                                            one no partition uses

Options:
  -h, --help                                This help
  -v, --version                             Dormant's version

Run 'dormant <command> --help' for the options of one command.`;

type Command = (args: string[]) => Promise<void>;

type ClientCommand = "deploy" | "activate" | "upgrade" | "ps" | "tasks" | "fire" | "freeze" | "rm" | "deadLetters" | "components" | "logs";
const client = (name: ClientCommand) => async (): Promise<Command> => (await import("./client.ts"))[name];

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./serve.ts")).serveCommand,
  build: async () => (await import("./build.ts")).build,
  new: async () => (await import("./new.ts")).newGuest,
  demo: async () => (await import("./demo.ts")).demo,
  deploy: client("deploy"),
  activate: client("activate"),
  upgrade: client("upgrade"),
  "dead-letters": client("deadLetters"),
  components: client("components"),
  logs: client("logs"),
  ps: client("ps"),
  tasks: client("tasks"),
  fire: client("fire"),
  freeze: client("freeze"),
  rm: client("rm"),
};

/** Exit codes: 0 done, 1 the command failed, 2 the command line was wrong. */
async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    console.error(USAGE);
    return 2;
  }
  if (first === "--help" || first === "-h" || (first === "help" && rest.length === 0)) {
    console.log(USAGE);
    return 0;
  }
  if (first === "--version" || first === "-v" || first === "version") {
    console.log((JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version);
    return 0;
  }
  // `dormant help serve` is `dormant serve --help`.
  const [name, args] = first === "help" ? [rest[0]!, ["--help"]] : [first, rest];
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    console.error(`dormant: unknown command '${name}'.\n\n${USAGE}`);
    return 2;
  }
  await (
    await load()
  )(args);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error & { code?: string }) => {
    console.error(`dormant: ${error.message}`);
    // node:util parseArgs rejects an unknown or malformed option: a usage error.
    process.exitCode = error.code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
  },
);
