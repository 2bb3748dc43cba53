// CLI commands that talk to a running `dormant serve` over its admin API. The server's
// admin origin is --url or DORMANT_URL (default http://127.0.0.1:8788), the token --token or
// DORMANT_ADMIN_TOKEN. --json prints the API's answer as is, for scripts.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { DormantError } from "../../runtime/index.ts";

const COMMON = `  --url URL        Admin origin of the server (default http://127.0.0.1:8788) [DORMANT_URL]
  --token TOKEN    Admin token [DORMANT_ADMIN_TOKEN]
  --json           Print the JSON answer
  -h, --help       This help`;

interface Parsed {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

function parse(args: string[], extra: Record<string, { type: "string" | "boolean"; short?: string }> = {}): Parsed {
  return parseArgs({
    args,
    allowPositionals: true,
    options: { url: { type: "string" }, token: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" }, ...extra },
  });
}

async function api(parsed: Parsed, method: string, path: string, body?: BodyInit, contentType = "application/json"): Promise<any> {
  const url = (parsed.values.url as string | undefined) ?? process.env.DORMANT_URL ?? "http://127.0.0.1:8788";
  const token = (parsed.values.token as string | undefined) ?? process.env.DORMANT_ADMIN_TOKEN;
  if (!token) throw new DormantError("client", "No admin token: pass --token or set DORMANT_ADMIN_TOKEN (dormant serve printed it at first start).");
  let response: Response;
  try {
    response = await fetch(new URL(path, url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": contentType } : {}) },
      ...(body ? { body } : {}),
    });
  } catch (error) {
    throw new DormantError(
      "client",
      `Cannot reach ${url}: ${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}. Is dormant serve running there?`,
    );
  }
  const text = await response.text();
  const answer = text ? JSON.parse(text) : {};
  if (!response.ok) throw new DormantError("client", `${method} ${path} → ${response.status}: ${answer.error?.message ?? text}`, { details: answer });
  return answer;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const when = (ms: number | null) => (ms ? new Date(ms).toISOString() : "-");

/** A task's trigger as a person reads it. */
function triggerText(trigger: Record<string, unknown>): string {
  if ("cron" in trigger) return `cron "${String(trigger.cron)}" ${String(trigger.timezone)}`;
  if ("every" in trigger) return `every ${String(trigger.every)} ms`;
  if ("after" in trigger) return `after ${String(trigger.after)} ms`;
  if ("at" in trigger) return `at ${when(trigger.at as number)}`;
  return "push";
}

/** Where a task fires next, or the URL that fires it. */
const nextOrUrl = (t: any): string => t.absolutePushUrl ?? t.pushUrl ?? when(t.nextFire);

function printTasks(list: any[]): void {
  console.log(
    table([
      ["ID", "NAME", "PARTITION", "TRIGGER", "PRIORITY", "NEXT FIRE / PUSH URL"],
      ...list.map((t: any) => [t.id, t.name, t.partition, triggerText(t.trigger), String(t.priority), nextOrUrl(t)]),
    ]),
  );
}

function usageError(usage: string, hint: string): never {
  throw new DormantError("client", `Usage: ${usage} (${hint}).`);
}

function command(usage: string, run: (parsed: Parsed) => Promise<unknown>, extra?: Record<string, { type: "string" | "boolean"; short?: string }>) {
  return async (args: string[]) => {
    const parsed = parse(args, extra);
    if (parsed.values.help) return void console.log(`${usage}\n\nOptions:\n${COMMON}`);
    const printed = await run(parsed);
    if (parsed.values.json && printed !== undefined) console.log(JSON.stringify(printed, null, 2));
  };
}

export const deploy = command(
  "Usage: dormant deploy <component.wasm> --name NAME [--replace] [--registrations host|guest] [--durability on-idle|per-activation]\n\n" +
    "Uploads a component, creates a partition running it and activates it (its on-activate registers its tasks),\n" +
    "then prints its tasks and push URLs. A name already deployed is refused unless --replace, which deletes\n" +
    "the partition of that name first (its push URLs change).",
  async (parsed) => {
    const [file] = parsed.positionals;
    const name = parsed.values.name as string | undefined;
    if (!file || !name) usageError("dormant deploy <component.wasm> --name NAME", "see dormant deploy --help");
    const component = await api(parsed, "POST", "/api/components", new Uint8Array(await readFile(file)), "application/wasm");
    const partition = await api(
      parsed,
      "POST",
      "/api/partitions",
      JSON.stringify({
        name,
        component: component.digest,
        ...(parsed.values.replace ? { replace: true } : {}),
        ...(parsed.values.registrations ? { registrations: parsed.values.registrations } : {}),
        ...(parsed.values.durability ? { durability: parsed.values.durability } : {}),
      }),
    );
    if (!parsed.values.json) {
      console.log(`partition ${partition.id} (${name}) runs ${component.digest}, activated (${partition.kind})`);
      printPartitionTasks(partition.tasks);
    }
    return { component, partition };
  },
  { name: { type: "string" }, replace: { type: "boolean" }, registrations: { type: "string" }, durability: { type: "string" } },
);

function printPartitionTasks(list: any[]): void {
  if (list.length === 0) return void console.log("  no tasks registered (its on-activate registered none)");
  for (const t of list) console.log(`  ${t.name}  ${triggerText(t.trigger)}  ${nextOrUrl(t)}`);
}

export const activate = command(
  "Usage: dormant activate <partition-id|name>\n\nActivates a partition (its on-activate runs if it was not live) and prints its tasks.",
  async (parsed) => {
    const [id] = parsed.positionals;
    if (!id) usageError("dormant activate <partition-id|name>", "dormant ps lists them");
    const answer = await api(parsed, "POST", `/api/partitions/${encodeURIComponent(id)}/activate`);
    if (!parsed.values.json) {
      console.log(`${answer.name} (${answer.id}) is ${answer.state}, activated ${answer.kind}`);
      printPartitionTasks(answer.tasks);
    }
    return answer;
  },
);

export const upgrade = command(
  "Usage: dormant upgrade <partition-id|name> <new.wasm|sha256:digest>\n\n" +
    "Runs a new version of a partition's component. Its tasks are kept, push URLs included. If both versions\n" +
    "export the handover interface the old version's state is handed to the new one; otherwise the new one\n" +
    "starts fresh with on-activate(upgraded). A failed upgrade says why and leaves the old version in place.",
  async (parsed) => {
    const [id, file] = parsed.positionals;
    if (!id || !file) usageError("dormant upgrade <partition-id|name> <new.wasm|sha256:digest>", "dormant ps lists the partitions");
    const component = /^sha256:[0-9a-f]{64}$/.test(file)
      ? file
      : (await api(parsed, "POST", "/api/components", new Uint8Array(await readFile(file)), "application/wasm")).digest;
    const answer = await api(parsed, "POST", `/api/partitions/${encodeURIComponent(id)}/upgrade`, JSON.stringify({ component }));
    if (!parsed.values.json) {
      const { from, handedOver } = answer.upgraded;
      const state = handedOver === null ? "started fresh (on-activate(upgraded)): no state handed over" : `its state handed over (${handedOver} B)`;
      console.log(`${answer.name} (${answer.id}) runs ${component} (was ${from}), ${state}`);
      printPartitionTasks(answer.tasks);
    }
    return answer;
  },
);

export const ps = command("Usage: dormant ps\n\nLists partitions with their state and snapshot size.", async (parsed) => {
  const answer = await api(parsed, "GET", "/api/partitions");
  if (!parsed.values.json) {
    console.log(
      table([
        ["ID", "NAME", "STATE", "SNAPSHOT", "COMPONENT"],
        ...answer.partitions.map((p: any) => [p.id, p.name, p.state, `${p.snapshotBytes} B`, p.component.slice(0, 19)]),
      ]),
    );
    for (const p of answer.partitions.filter((p: any) => p.activationError)) console.log(`\n${p.name}: activation failed: ${p.activationError.error}`);
  }
  return answer;
});

export const tasks = command(
  "Usage: dormant tasks [--partition ID|NAME]\n\nLists tasks with their trigger and next fire time or push URL.",
  async (parsed) => {
    const query = parsed.values.partition ? `?partition=${encodeURIComponent(parsed.values.partition as string)}` : "";
    const answer = await api(parsed, "GET", `/api/tasks${query}`);
    if (!parsed.values.json) printTasks(answer.tasks);
    return answer;
  },
  { partition: { type: "string" } },
);

export const fire = command(
  "Usage: dormant fire <task-id>\n\nFires a task now, outside its schedule, and reports how its first attempt ended (exit 1 if it failed).",
  async (parsed) => {
    const [id] = parsed.positionals;
    if (!id) usageError("dormant fire <task-id>", "dormant tasks lists the ids");
    const answer = await api(parsed, "POST", `/api/tasks/${encodeURIComponent(id)}/fire?wait`);
    const { outcome } = answer;
    if (outcome && !outcome.ok) process.exitCode = 1;
    if (!parsed.values.json) {
      const result = !outcome ? "still running after 10 s" : outcome.ok ? `ok in ${outcome.ms.toFixed(1)} ms` : `failed: ${outcome.error} (it will be retried)`;
      console.log(`fired ${id}: delivery ${answer.delivery} ${result}`);
    }
    return answer;
  },
);

export const freeze = command("Usage: dormant freeze <partition-id|name>\n\nSnapshots a partition to storage and releases its instance.", async (parsed) => {
  const [id] = parsed.positionals;
  if (!id) usageError("dormant freeze <partition-id|name>", "dormant ps lists them");
  const answer = await api(parsed, "POST", `/api/partitions/${encodeURIComponent(id)}/freeze`);
  if (!parsed.values.json) console.log(`${answer.name} (${answer.id}) is ${answer.state}, snapshot ${answer.snapshotBytes} B`);
  return answer;
});

export const rm = command(
  "Usage: dormant rm <partition-id|name>\n\nDeletes a partition, its snapshots and its tasks (except tasks flagged to outlive it).",
  async (parsed) => {
    const [id] = parsed.positionals;
    if (!id) usageError("dormant rm <partition-id|name>", "dormant ps lists them");
    await api(parsed, "DELETE", `/api/partitions/${encodeURIComponent(id)}`);
    if (!parsed.values.json) console.log(`deleted ${id}`);
    return { deleted: id };
  },
);

export const deadLetters = command(
  "Usage: dormant dead-letters [--retry ID]\n\nLists deliveries that ran out of attempts, with their last error; --retry ID puts one back.",
  async (parsed) => {
    const retry = parsed.values.retry as string | undefined;
    if (retry) {
      const answer = await api(parsed, "POST", `/api/dead-letters/${encodeURIComponent(retry)}/retry`);
      if (!parsed.values.json) console.log(`retrying ${retry}`);
      return answer;
    }
    const answer = await api(parsed, "GET", "/api/dead-letters");
    if (!parsed.values.json) {
      console.log(
        table([
          ["ID", "TASK", "PARTITION", "ATTEMPTS", "DEAD AT", "LAST ERROR"],
          ...answer.deadLetters.map((d: any) => [d.id, d.name, d.partition, String(d.attempts), when(d.deadAt), d.lastError]),
        ]),
      );
    }
    return answer;
  },
  { retry: { type: "string" } },
);

export const components = command(
  "Usage: dormant components [remove <digest>]\n\nLists the deployed components and the partitions running each; remove deletes one no partition uses\n(its stored bytes and its engine-cache entry).",
  async (parsed) => {
    const [sub, digest] = parsed.positionals;
    if (sub === "remove") {
      if (!digest) usageError("dormant components remove <digest>", "dormant components lists them");
      await api(parsed, "DELETE", `/api/components/${encodeURIComponent(digest)}`);
      if (!parsed.values.json) console.log(`removed ${digest}`);
      return { removed: digest };
    }
    if (sub !== undefined) usageError("dormant components [remove <digest>]", `unknown subcommand ${JSON.stringify(sub)}`);
    const [{ components: list }, { partitions }] = await Promise.all([api(parsed, "GET", "/api/components"), api(parsed, "GET", "/api/partitions")]);
    const answer = { components: list.map((c: any) => ({ ...c, partitions: partitions.filter((p: any) => p.component === c.digest).map((p: any) => p.id) })) };
    if (!parsed.values.json) {
      const names = (ids: string[]) => ids.map((id) => partitions.find((p: any) => p.id === id).name).join(", ") || "-";
      console.log(table([["DIGEST", "PARTITIONS"], ...answer.components.map((c: any) => [c.digest, names(c.partitions)])]));
    }
    return answer;
  },
);

/** How often `logs --follow` asks for new lines. */
const FOLLOW_MS = 1000;

export const logs = command(
  "Usage: dormant logs <partition-id|name> [--follow] [--lines N]\n\n" +
    "Prints the partition's recent guest log lines (the server keeps the last 200 or 64 KiB per partition).\n" +
    "--follow keeps printing new lines as they come, until interrupted; --lines N prints only the last N first.",
  async (parsed) => {
    const [id] = parsed.positionals;
    if (!id) usageError("dormant logs <partition-id|name> [--follow]", "dormant ps lists them");
    const lines = parsed.values.lines as string | undefined;
    if (lines !== undefined && !/^[1-9]\d{0,2}$/.test(lines)) usageError("dormant logs <partition> --lines N", "N from 1 to 999");
    const path = (since: number) => `/api/partitions/${encodeURIComponent(id)}/logs?since=${since}${lines && since === 0 ? `&limit=${lines}` : ""}`;
    const print = (answer: any) => {
      for (const line of answer.logs)
        console.log(parsed.values.json ? JSON.stringify(line) : `${new Date(line.at).toISOString()}  ${line.level.padEnd(5)}  ${line.message}`);
    };
    let answer = await api(parsed, "GET", path(0));
    print(answer);
    if (!parsed.values.follow) return undefined;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
      answer = await api(parsed, "GET", path(answer.next));
      print(answer);
    }
  },
  { follow: { type: "boolean", short: "f" }, lines: { type: "string", short: "n" } },
);
