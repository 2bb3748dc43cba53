// The status page at `/`: server-rendered HTML, no script. Partitions with their state,
// snapshot size, tasks (readable triggers, push URLs) and recent guest logs; dead letters,
// misfires, charts of wake latency and fire lateness, recent activity. A signed-in browser
// gets forms to fire, freeze, activate and retry, each carrying the session's CSRF token.
import { createHash } from "node:crypto";
import type { Host } from "../../host.ts";
import { visibleState, type Activity } from "../../observability/activity.ts";
import type { TaskRecord } from "../../tasks/task.ts";
import { pushPath } from "../../tasks/task.ts";
import { sampleChart } from "./charts.ts";
import { escapeHtml, millis, size, triggerText, when } from "./format.ts";

/** Seconds between reloads while auto-refresh is on. */
export const REFRESH_SECONDS = 5;
/** Guest log lines shown per partition. */
const LOG_LINES = 12;

const STYLE = `*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .5rem;border-bottom:2px solid #ddd}
h3{font-size:1.05rem;margin:0;overflow-wrap:anywhere}h4{font-size:.95rem;margin:.75rem 0 .25rem}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between}
nav{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.75rem;margin:.75rem 0}
.meta{color:#555;margin:.25rem 0}
code{font:12px/1.3 ui-monospace,monospace;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:.25rem 0 .75rem;background:#fff}
td,th{border-bottom:1px solid #e4e4e4;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f2f2f2;font-weight:600}
tr.bad td{color:#a40000}
.error{background:#fdecea;border:1px solid #e0a39c;color:#8a1f11;padding:.5rem .75rem;border-radius:4px}
.ok{background:#e9f6ec;border:1px solid #9fd3ab;color:#1d5e2c;padding:.5rem .75rem;border-radius:4px}
.state{font-size:.8rem;font-weight:400;padding:.05rem .4rem;border-radius:3px;background:#eee}
.state-active,.state-idle{background:#dff3e4}.state-activation-failed{background:#fdecea;color:#8a1f11}
form{display:inline;margin:0}
button{font:inherit;padding:.25rem .8rem;border:1px solid #888;border-radius:4px;background:#fff;cursor:pointer;min-height:2rem}
button:hover,button:focus{background:#eef}
.actions{display:flex;flex-wrap:wrap;gap:.4rem;margin:.5rem 0}
.logs{list-style:none;margin:0;padding:.4rem .5rem;background:#1e1e1e;color:#ddd;border-radius:4px;max-height:14rem;overflow:auto;font:12px/1.4 ui-monospace,monospace}
.logs li{white-space:pre-wrap;overflow-wrap:anywhere}
.lv-warn{color:#f5c46b}.lv-error{color:#ff8a80}.lv-debug,.lv-trace{color:#999}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
.chart{flex:1 1 18rem;min-width:0;margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem}
.chart svg{width:100%;height:auto;display:block}
.chart rect{fill:#3b6fb6}.chart .axis{stroke:#888}.chart .grid{stroke:#ccc;stroke-dasharray:3 3}.chart text{font-size:10px;fill:#555}
.muted{color:#666}
@media (max-width:640px){body{padding:.5rem;font-size:14px}
table.stack thead{display:none}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
table.stack tr{border-bottom:1px solid #ccc;padding:.3rem 0}
table.stack td{border:0;padding:.1rem .25rem}
table.stack td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:#555}}`;

/** The operator origin's policy: nothing but this page's own style, posting only to itself, never framed. */
export const ADMIN_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash("sha256").update(STYLE).digest("base64")}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

function page(title: string, body: string, refresh = false): string {
  const head = [
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    refresh ? `<meta http-equiv="refresh" content="${REFRESH_SECONDS}">` : "",
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style>`,
  ].join("");
  return `<!doctype html><html lang="en"><head>${head}</head><body>${body}</body></html>`;
}

/** A table of already-escaped cells; narrow screens show each row as labelled lines. `bad` rows are red. */
function table(head: string[], rows: { cells: string[]; bad?: boolean }[], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${escapeHtml(empty)}</p>`;
  const row = (r: { cells: string[]; bad?: boolean }) =>
    `<tr${r.bad ? ' class="bad"' : ""}>${r.cells.map((c, i) => `<td${head[i] ? ` data-label="${head[i]}"` : ""}>${c}</td>`).join("")}</tr>`;
  return `<table class="stack"><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>\n${rows.map(row).join("\n")}\n</tbody></table>`;
}

const code = (text: string) => `<code>${escapeHtml(text)}</code>`;
const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** What the page knows of the person looking at it. */
export interface View {
  /** The push origin, for full push URLs. */
  pushOrigin?: string | undefined;
  /** The session's CSRF token; without one (a bearer client) the page has no forms. */
  csrf?: string | undefined;
  /** The outcome of the action just taken. */
  flash?: { ok: boolean; text: string } | undefined;
  refresh: boolean;
}

/** A one-button form posting an action; it carries the CSRF token and keeps auto-refresh as it was. */
function action(view: View, path: string, label: string, what: string): string {
  if (!view.csrf) return "";
  const keep = view.refresh ? "" : '<input type="hidden" name="refresh" value="off">';
  return `<form method="post" action="${escapeHtml(path)}"><input type="hidden" name="csrf" value="${view.csrf}">${keep}<button aria-label="${escapeHtml(`${label} ${what}`)}">${label}</button></form>`;
}

function nextOrUrl(task: TaskRecord, view: View): string {
  if (task.pushToken === undefined) return when(task.nextFire);
  return code(`${view.pushOrigin ?? ""}${pushPath(task.pushToken)}`);
}

function taskTable(tasks: TaskRecord[], view: View, withPartition?: (id: string) => string): string {
  const head = ["name", ...(withPartition ? ["partition"] : []), "trigger", "priority", "next fire / push URL", ""];
  const rows = tasks.map((t) => ({
    cells: [
      escapeHtml(t.name),
      ...(withPartition ? [withPartition(t.partition)] : []),
      escapeHtml(triggerText(t.trigger)),
      String(t.priority),
      nextOrUrl(t, view),
      action(view, `/actions/fire/${t.id}`, "Fire", t.name),
    ],
  }));
  return table(head, rows, "No tasks registered.");
}

export async function statusPage(host: Host, activity: Activity, view: View): Promise<string> {
  const { partitions: manager, registry, deliveries } = host;
  const records = manager.list();
  const nameOf = (id: string) => {
    const record = records.find((p) => p.id === id);
    return record ? escapeHtml(record.name) : code(id);
  };
  const byNextFire = (a: TaskRecord, b: TaskRecord) => (a.nextFire ?? Infinity) - (b.nextFire ?? Infinity);
  const cards = await Promise.all(
    records.map(async (p) => {
      const seen = activity.of(p.id);
      const state = visibleState(manager.stateOf(p.id), seen);
      const bytes = (await host.snapshots.head(p.id))?.latest.bytes ?? 0;
      const last = seen.lastActivation
        ? `last woken ${seen.lastActivation.kind} in ${millis(seen.lastActivation.ms)}, ${when(seen.lastActivation.at)}`
        : "never woken";
      const failed = seen.activationError
        ? `<p class="error">Activation (${escapeHtml(seen.activationError.reason)}) failed ${when(seen.activationError.at)}: ${escapeHtml(seen.activationError.error)}</p>`
        : "";
      const live = state === "active" || state === "idle";
      const buttons = [
        action(view, `/actions/activate/${p.id}`, "Activate", p.name),
        live ? action(view, `/actions/freeze/${p.id}`, "Freeze", p.name) : "",
      ].join("");
      const { lines, dropped } = activity.logs.of(p.id, 0, LOG_LINES);
      const logs =
        lines.length === 0
          ? '<p class="muted">No guest log lines yet.</p>'
          : `<ol class="logs">${lines
              .map((l) => `<li class="lv-${l.level}">${when(l.at).slice(11)} ${l.level.padEnd(5)} ${escapeHtml(l.message)}</li>`)
              .join("")}</ol>${dropped > 0 ? `<p class="muted">${dropped} older lines dropped.</p>` : ""}`;
      return `<section class="card" id="${p.id}" aria-label="${escapeHtml(p.name)}">
<h3>${escapeHtml(p.name)} <span class="state state-${state}">${state}</span></h3>
<p class="meta">${code(p.id)} · snapshot ${size(bytes)} · ${count(seen.activations, "activation")} · ${seen.deliveries === 1 ? "1 delivery" : `${seen.deliveries} deliveries`} · ${count(seen.failures, "failure")} · ${last}</p>
${failed}${buttons ? `<div class="actions">${buttons}</div>` : ""}
<h4>Tasks</h4>
${taskTable(registry.tasksOf(p.id).sort(byNextFire), view)}
<h4>Recent guest logs</h4>
${logs}
</section>`;
    }),
  );
  const orphans = registry
    .all()
    .filter((t) => !records.some((p) => p.id === t.partition))
    .sort(byNextFire);
  const letters = await deliveries.deadLetters();
  const letterRows = letters.map((d) => ({
    cells: [
      escapeHtml(d.taskName),
      nameOf(d.partition),
      d.kind,
      String(d.attempts),
      when(d.deadAt),
      escapeHtml(d.lastError),
      action(view, `/actions/retry/${d.id}`, "Retry", d.taskName),
    ],
    bad: true,
  }));
  const misfireRows = activity.misfires().map((m) => ({
    cells: [when(m.at), escapeHtml(m.task), nameOf(m.partition), m.policy, `${m.missed} since ${when(m.since)}`, String(m.delivered)],
  }));
  const activityRows = activity.recent().map((e) => ({ cells: [when(e.at), nameOf(e.partition), escapeHtml(e.what)], bad: !e.ok }));
  const budget = host.budget.state;
  const constraint = budget.constrained ? `<strong>constrained</strong> to priority ≥ ${budget.threshold}` : "unconstrained";
  const refresh = view.refresh
    ? `<span>Refreshes every ${REFRESH_SECONDS} s</span> <a href="/?refresh=off">Pause refresh</a>`
    : `<span>Refresh paused</span> <a href="/">Resume refresh</a>`;
  const signOut = view.csrf ? `<form method="post" action="/logout"><button>Sign out</button></form>` : "";
  const flash = view.flash
    ? `<p class="${view.flash.ok ? "ok" : "error"}" role="${view.flash.ok ? "status" : "alert"}">${escapeHtml(view.flash.text)}</p>`
    : "";
  return page(
    "Dormant",
    `<header><h1>Dormant</h1><nav>${refresh} ${signOut}</nav></header>
${flash}
<p>${count(records.length, "partition")}, ${manager.liveCount()} live; ${count(registry.size, "task")}; ${count(letters.length, "dead letter")}; budget ${constraint}, ${budget.maxConcurrent} at once. Times are UTC.</p>
<h2>Partitions</h2>
${cards.join("\n") || '<p class="muted">No partitions; deploy one with dormant deploy.</p>'}
${orphans.length > 0 ? `<h2>Tasks that outlived their partition</h2>\n${taskTable(orphans, view, (id) => code(id))}` : ""}
<h2>Dead letters</h2>
${table(["task", "partition", "kind", "attempts", "dead at", "last error", ""], letterRows, "No dead letters.")}
<h2>Misfires</h2>
${table(["at", "task", "partition", "policy", "missed", "delivered"], misfireRows, "No misfires since the server started.")}
<h2>Wakes and timers</h2>
<div class="charts">
${sampleChart("Wake latency", activity.wakes, ["wake", "wakes"], "no partition has been woken since the server started.")}
${sampleChart("Fire lateness", activity.lateness, ["timer fire", "timer fires"], "no timer has fired since the server started.")}
</div>
<h2>Recent activity</h2>
${table(["at", "partition", "what"], activityRows, "Nothing yet.")}`,
    view.refresh,
  );
}

export function loginPage(message: string, error = false): string {
  const field = `<label>Admin token <input type="password" name="token" autocomplete="current-password" required></label>`;
  const form = `<form method="post" action="/login">${field} <button>Sign in</button></form>`;
  const note = error ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : `<p>${escapeHtml(message)}</p>`;
  return page("Dormant — sign in", `<h1>Dormant</h1>${note}\n${form}`);
}

/** A refused or failed form action: what went wrong and the way back. */
export function messagePage(message: string): string {
  return page("Dormant", `<h1>Dormant</h1><p class="error" role="alert">${escapeHtml(message)}</p><p><a href="/">Back to the status page</a></p>`);
}
