// `npm start`: the example guests as partitions on the embedded defaults. Each run
// continues from the state the previous run froze, so a second run shows rehydration.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { exampleComponent, type ExampleName } from "../../guests/examples.ts";
import type { TaskEvent } from "../../runtime/index.ts";
import { startHost } from "../host.ts";
import { DEFAULT_DATA_DIR } from "../options.ts";

const HELP = `Usage: dormant demo [--data-dir DIR] [--store URL]

Builds the example guests (cached after the first run), runs them as partitions,
freezes them to the store and wakes them again, printing what they did.

Options:
  --data-dir DIR   Data directory (default ${DEFAULT_DATA_DIR})
  --store URL      Store URL, e.g. redis://127.0.0.1:6379/0 (default: fs in the data directory)`;

const text = new TextDecoder();
const bytes = new TextEncoder();

function event(entry: string, body = ""): TaskEvent {
  const now = BigInt(Date.now());
  return {
    taskId: "demo",
    taskName: entry,
    entry,
    payload: new Uint8Array(),
    scheduledAt: now,
    firedAt: now,
    attempt: 1,
    occurrences: 1,
    request: { method: "POST", path: "/", query: "", headers: [], body: bytes.encode(body) },
  };
}

export async function demo(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { "data-dir": { type: "string" }, store: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void console.log(HELP);

  const host = await startHost({
    dataDir: values["data-dir"],
    store: values.store,
    onLog: (partition, level, message) => console.log(`  [${partition} ${level}] ${message}`),
    onEvent: (e) => {
      if (e.type === "activated") console.log(`  ${e.partition}: ${e.kind} in ${e.ms.toFixed(1)} ms${e.pooled ? " (an instance from the pool)" : ""}`);
      if (e.type === "frozen") console.log(`  ${e.partition}: frozen, ${e.bytes} bytes stored, ${e.ms.toFixed(1)} ms`);
      if (e.type === "snapshot-problem" || e.type === "trap") console.log(`  ${e.partition}: ${e.error.message}`);
    },
  });
  try {
    console.log(`Dormant demo — store ${host.store.description}, ${host.pool.size} executors\n`);
    const ids: Record<string, string> = {};
    for (const [name, example] of [
      ["counter-1", "counter"],
      ["counter-2", "counter"],
      ["wat-1", "wat-minimal"],
    ] as [string, ExampleName][]) {
      process.stdout.write(`Building guest ${example} (cached after the first run)… `);
      const component = await host.components.add(await readFile(await exampleComponent(example)));
      console.log(`${component.digest.slice(0, 19)}…, ${component.bytes} bytes`);
      const existing = host.partitions.list().find((p) => p.name === name);
      ids[name] = existing?.id ?? (await host.partitions.create({ name, component: component.digest })).id;
      console.log(`partition ${name} = ${ids[name]}${existing ? " (from an earlier run)" : " (new)"}`);
    }

    console.log("\nDelivering events:");
    for (const name of ["counter-1", "counter-1", "counter-2", "wat-1", "wat-1"]) {
      const outcome = await host.partitions.deliver(ids[name]!, event("push", `hello ${name}`));
      console.log(`  ${name} replied ${outcome.ok ? text.decode(outcome.reply?.body) : `with an error: ${outcome.error}`}`);
    }

    console.log("\nTasks the guests registered:");
    for (const task of host.registry.all()) {
      const when = task.nextFire
        ? `next at ${new Date(task.nextFire).toISOString()}`
        : task.pushToken
          ? `push URL /push/${task.pushToken.slice(0, 6)}…`
          : "spent";
      console.log(`  ${task.partition} ${task.name} → ${task.entry} (${task.trigger.tag}, priority ${task.priority}, ${when})`);
    }

    console.log("\nFreezing every partition:");
    await host.partitions.freezeAll();
    console.log("\nWaking them with another event:");
    for (const name of ["counter-1", "counter-2", "wat-1"]) {
      const outcome = await host.partitions.deliver(ids[name]!, event("push", "after the freeze"));
      console.log(`  ${name} replied ${outcome.ok ? text.decode(outcome.reply?.body) : `with an error: ${outcome.error}`}`);
    }
    console.log("\nFreezing again for the next run; run `node bin/dormant.js demo` again to see the counts continue.");
  } finally {
    await host.close();
  }
}
