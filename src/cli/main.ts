// The `dormant` command line.
import { parseArgs } from "node:util";
import { build } from "./build.ts";
import { deploy, fire, freeze, ps, rm, tasks } from "./client.ts";
import { demo } from "./demo.ts";
import { serveCommand } from "./serve.ts";

const USAGE = `Usage: dormant <command> [options]

Commands:
  serve [--port N] [--data-dir DIR] [--store URL] [--demo]
                                            Serve push triggers, the admin API, metrics and a status page
  build <entry.js|.ts|.wat> -o <out.wasm>   Build a guest component for the dormant:host/partition world
  demo [--data-dir DIR] [--store URL]       Run the example guests once: activate, freeze, rehydrate,
                                            and print what they did

Talking to a running server (--url, --token or DORMANT_URL, DORMANT_ADMIN_TOKEN; --json):
  deploy <component.wasm> --name NAME       Upload a component and create a partition
  ps                                        List partitions
  tasks [--partition ID]                    List tasks
  fire <task-id>                            Fire a task now
  freeze <partition-id>                     Freeze a partition
  rm <partition-id>                         Delete a partition

Run 'dormant <command> --help' for the options of one command.`;

const commands: Record<string, (args: string[]) => Promise<void>> = { serve: serveCommand, build, demo, deploy, ps, tasks, fire, freeze, rm };

async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv.slice(0, 1), allowPositionals: true, strict: false });
  const name = positionals[0];
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const command = commands[name];
  if (!command) {
    console.error(`Unknown command '${name}'.\n\n${USAGE}`);
    return 2;
  }
  await command(argv.slice(1));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    console.error(`dormant: ${error.message}`);
    process.exitCode = 1;
  },
);
