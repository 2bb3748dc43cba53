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

function parse(args: string[], extra: Record<string, { type: "string" | "boolean" }> = {}): Parsed {
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
  if (!response.ok) throw new DormantError("client", `${method} ${path} → ${response.status}: ${answer.error?.message ?? text}`);
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

function command(usage: string, run: (parsed: Parsed) => Promise<unknown>, extra?: Record<string, { type: "string" | "boolean" }>) {
  return async (args: string[]) => {
    const parsed = parse(args, extra);
    if (parsed.values.help) return void console.log(`${usage}\n\nOptions:\n${COMMON}`);
    const printed = await run(parsed);
    if (parsed.values.json) console.log(JSON.stringify(printed, null, 2));
  };
}

export const deploy = command(
  "Usage: dormant deploy <component.wasm> --name NAME [--registrations host|guest] [--durability on-idle|per-activation]\n\n" +
    "Uploads a component and creates a partition running it.",
  async (parsed) => {
    const [file] = parsed.positionals;
    const name = parsed.values.name as string | undefined;
    if (!file || !name) throw new DormantError("client", "Usage: dormant deploy <component.wasm> --name NAME (see dormant deploy --help).");
    const component = await api(parsed, "POST", "/api/components", new Uint8Array(await readFile(file)), "application/wasm");
    const partition = await api(
      parsed,
      "POST",
      "/api/partitions",
      JSON.stringify({
        name,
        component: component.digest,
        ...(parsed.values.registrations ? { registrations: parsed.values.registrations } : {}),
        ...(parsed.values.durability ? { durability: parsed.values.durability } : {}),
      }),
    );
    if (!parsed.values.json) console.log(`partition ${partition.id} (${name}) runs ${component.digest}`);
    return { component, partition };
  },
  { name: { type: "string" }, registrations: { type: "string" }, durability: { type: "string" } },
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
  }
  return answer;
});

export const tasks = command(
  "Usage: dormant tasks [--partition ID]\n\nLists tasks with their next fire time.",
  async (parsed) => {
    const query = parsed.values.partition ? `?partition=${encodeURIComponent(parsed.values.partition as string)}` : "";
    const answer = await api(parsed, "GET", `/api/tasks${query}`);
    if (!parsed.values.json) {
      console.log(
        table([
          ["ID", "NAME", "PARTITION", "PRIORITY", "NEXT FIRE / PUSH URL"],
          ...answer.tasks.map((t: any) => [t.id, t.name, t.partition, String(t.priority), t.pushUrl ?? when(t.nextFire)]),
        ]),
      );
    }
    return answer;
  },
  { partition: { type: "string" } },
);

export const fire = command("Usage: dormant fire <task-id>\n\nFires a task now, outside its schedule.", async (parsed) => {
  const [id] = parsed.positionals;
  if (!id) throw new DormantError("client", "Usage: dormant fire <task-id> (dormant tasks lists the ids).");
  const answer = await api(parsed, "POST", `/api/tasks/${encodeURIComponent(id)}/fire`);
  if (!parsed.values.json) console.log(`fired ${id}: delivery ${answer.delivery}`);
  return answer;
});

export const freeze = command("Usage: dormant freeze <partition-id>\n\nSnapshots a partition to storage and releases its instance.", async (parsed) => {
  const [id] = parsed.positionals;
  if (!id) throw new DormantError("client", "Usage: dormant freeze <partition-id> (dormant ps lists the ids).");
  const answer = await api(parsed, "POST", `/api/partitions/${encodeURIComponent(id)}/freeze`);
  if (!parsed.values.json) console.log(`${id} is ${answer.state}, snapshot ${answer.snapshotBytes} B`);
  return answer;
});

export const rm = command(
  "Usage: dormant rm <partition-id>\n\nDeletes a partition, its snapshots and its tasks (except tasks flagged to outlive it).",
  async (parsed) => {
    const [id] = parsed.positionals;
    if (!id) throw new DormantError("client", "Usage: dormant rm <partition-id> (dormant ps lists the ids).");
    await api(parsed, "DELETE", `/api/partitions/${encodeURIComponent(id)}`);
    if (!parsed.values.json) console.log(`deleted ${id}`);
    return { deleted: id };
  },
);
