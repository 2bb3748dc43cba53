// The status page at `/`: server-rendered HTML, no script. Partitions with their state
// and snapshot size, tasks with their next fire time, recent activations and failures.
import { createHash } from "node:crypto";
import type { Host } from "../host.ts";
import { visibleState, type Activity } from "../observability/activity.ts";
import { taskJson } from "./admin-api.ts";

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]!);

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:.5rem 0 2rem}
td,th{border-bottom:1px solid #ddd;padding:.25rem .75rem;text-align:left}th{background:#f4f4f4}.bad{color:#b00}code{font-size:12px}`;

/** The operator origin's policy: nothing but this page's own style, posting only to itself, never framed. */
export const ADMIN_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash("sha256").update(STYLE).digest("base64")}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

function page(title: string, body: string): string {
  const head = `<meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style>`;
  return `<!doctype html><html lang="en"><head>${head}</head><body>${body}</body></html>`;
}

const when = (ms: number | null | undefined) =>
  ms
    ? new Date(ms)
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "Z")
    : "—";

/** A table of already-escaped cells; `bad` rows are shown in red. */
function table(head: string[], rows: { cells: string[]; bad?: boolean }[]): string {
  const body = rows.map((r) => `<tr${r.bad ? ' class="bad"' : ""}>${r.cells.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

const code = (text: string) => `<code>${escapeHtml(text)}</code>`;

export async function statusPage(host: Host, activity: Activity): Promise<string> {
  const { partitions: manager } = host;
  const bytesOf = async (id: string) => (await host.snapshots.head(id))?.latest.bytes ?? 0;
  const partitions = await Promise.all(
    manager
      .list()
      .map(async (p) => ({ ...p, state: visibleState(manager.stateOf(p.id), activity.of(p.id)), bytes: await bytesOf(p.id), ...activity.of(p.id) })),
  );
  const tasks = host.registry
    .all()
    .map((task) => taskJson(task))
    .sort((a, b) => (a.nextFire ?? Infinity) - (b.nextFire ?? Infinity));
  const budget = host.budget.state;
  const constraint = budget.constrained ? `<strong>constrained</strong> to priority ≥ ${budget.threshold}` : "unconstrained";
  const partitionRows = partitions.map((p) => ({
    cells: [
      escapeHtml(p.name),
      code(p.id),
      p.state,
      `${p.bytes} B`,
      String(p.activations),
      String(p.deliveries),
      String(p.failures),
      p.lastActivation ? `${p.lastActivation.kind}, ${when(p.lastActivation.at)}` : "—",
    ],
    bad: p.activationError !== undefined,
  }));
  const taskRows = tasks.map((t) => ({
    cells: [escapeHtml(t.name), code(t.partition), escapeHtml(JSON.stringify(t.trigger)), String(t.priority), t.pushUrl ? "on push" : when(t.nextFire)],
  }));
  const activityRows = activity.recent().map((e) => ({ cells: [when(e.at), code(e.partition), escapeHtml(e.what)], bad: !e.ok }));
  return page(
    "Dormant",
    `<h1>Dormant</h1>
<form method="post" action="/logout"><button>Sign out</button></form>
<p>${partitions.length} partitions, ${manager.liveCount()} live; ${tasks.length} tasks; budget ${constraint}, ${budget.maxConcurrent} at once.</p>
<h2>Partitions</h2>
${table(["name", "id", "state", "snapshot", "activations", "deliveries", "failures", "last activation"], partitionRows)}
<h2>Tasks</h2>
${table(["name", "partition", "trigger", "priority", "next fire"], taskRows)}
<h2>Recent activity</h2>
${table(["at", "partition", "what"], activityRows)}`,
  );
}

export function loginPage(message: string): string {
  const field = `<label>Admin token <input type="password" name="token" autocomplete="current-password" required></label>`;
  const form = `<form method="post" action="/login">${field} <button>Sign in</button></form>`;
  return page("Dormant — sign in", `<h1>Dormant</h1><p>${escapeHtml(message)}</p>\n${form}`);
}
