// The status page at `/`: server-rendered HTML, no script. Partitions with their state
// and snapshot size, tasks with their next fire time, recent activations and failures.
import { createHash } from "node:crypto";
import type { Host } from "../host.ts";
import type { Activity } from "../observability/activity.ts";
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
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

const when = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");

export async function statusPage(host: Host, activity: Activity): Promise<string> {
  const partitions = await Promise.all(
    host.partitions.list().map(async (p) => ({ ...p, state: host.partitions.stateOf(p.id), bytes: (await host.partitions.snapshots.head(p.id))?.latest.bytes ?? 0, ...activity.of(p.id) })),
  );
  const tasks = host.partitions.tasks.all().map(taskJson).sort((a, b) => (a.nextFire ?? Infinity) - (b.nextFire ?? Infinity));
  const budget = host.budget.state;
  const rows = (cells: string[][]) => cells.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("");
  return page(
    "Dormant",
    `<h1>Dormant</h1>
<form method="post" action="/logout"><button>Sign out</button></form>
<p>${partitions.length} partitions, ${host.partitions.liveCount()} live; ${tasks.length} tasks; budget ${budget.constrained ? `<strong>constrained</strong> to priority ≥ ${budget.threshold}` : "unconstrained"}, ${budget.maxConcurrent} at once.</p>
<h2>Partitions</h2>
<table><thead><tr><th>name</th><th>id</th><th>state</th><th>snapshot</th><th>activations</th><th>deliveries</th><th>failures</th><th>last activation</th></tr></thead><tbody>
${rows(partitions.map((p) => [escapeHtml(p.name), `<code>${escapeHtml(p.id)}</code>`, p.state, `${p.bytes} B`, String(p.activations), String(p.deliveries), String(p.failures), p.lastActivation ? `${p.lastActivation.kind}, ${when(p.lastActivation.at)}` : "—"]))}
</tbody></table>
<h2>Tasks</h2>
<table><thead><tr><th>name</th><th>partition</th><th>trigger</th><th>priority</th><th>next fire</th></tr></thead><tbody>
${rows(tasks.map((t) => [escapeHtml(t.name), `<code>${escapeHtml(t.partition)}</code>`, escapeHtml(JSON.stringify(t.trigger)), String(t.priority), t.pushUrl ? "on push" : when(t.nextFire)]))}
</tbody></table>
<h2>Recent activity</h2>
<table><thead><tr><th>at</th><th>partition</th><th>what</th></tr></thead><tbody>
${activity.recent().map((e) => `<tr${e.ok ? "" : ' class="bad"'}><td>${when(e.at)}</td><td><code>${escapeHtml(e.partition)}</code></td><td>${escapeHtml(e.what)}</td></tr>`).join("")}
</tbody></table>`,
  );
}

export function loginPage(message: string): string {
  return page(
    "Dormant — sign in",
    `<h1>Dormant</h1><p>${escapeHtml(message)}</p>
<form method="post" action="/login"><label>Admin token <input type="password" name="token" autocomplete="current-password" required></label> <button>Sign in</button></form>`,
  );
}
