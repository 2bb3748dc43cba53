// How the status page writes things for a person: escaped text, UTC times, sizes in
// KiB/MiB, durations in the largest units that fit, and triggers as words.
import type { TaskRecord } from "../../tasks/task.ts";

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]!);

/** `2026-11-27 20:00` (UTC, as the page says once), with seconds when they are not zero. */
export function when(ms: number | null | undefined): string {
  if (!ms) return "—";
  const iso = new Date(ms).toISOString();
  const seconds = iso.slice(17, 19);
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}${seconds === "00" ? "" : `:${seconds}`}`;
}

/** Bytes in B, KiB or MiB, with one decimal below 10 units. */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const [value, unit] = bytes < 1024 * 1024 ? [bytes / 1024, "KiB"] : bytes < 1024 ** 3 ? [bytes / 1024 ** 2, "MiB"] : [bytes / 1024 ** 3, "GiB"];
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value)} ${unit}`;
}

const UNITS: [number, string][] = [
  [86_400_000, "d"],
  [3_600_000, "h"],
  [60_000, "min"],
  [1000, "s"],
  [1, "ms"],
];

/** A whole duration in at most its two largest units: `5 min`, `1 h 30 min`, `250 ms`. */
export function duration(ms: number): string {
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, name] of UNITS) {
    if (rest < unit || parts.length === 2) continue;
    parts.push(`${Math.floor(rest / unit)} ${name}`);
    rest %= unit;
    if (rest === 0) break;
  }
  return parts.join(" ") || "0 ms";
}

/** A measured time: `0.84 ms`, `12.3 ms`, `1.5 s`. */
export function millis(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s`;
  return `${ms < 1 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** `every 5 min`, `cron 0 9 * * 1-5 (Europe/Berlin)`, `at 2026-11-27 20:00`, `after 30 s`, `on push`. */
export function triggerText(trigger: TaskRecord["trigger"]): string {
  switch (trigger.tag) {
    case "cron":
      return `cron ${trigger.val.expression} (${trigger.val.timezone ?? "UTC"})`;
    case "every":
      return `every ${duration(Number(trigger.val))}`;
    case "after":
      return `after ${duration(Number(trigger.val))}`;
    case "at":
      return `at ${when(Number(trigger.val))}`;
    case "push":
      return "on push";
  }
}
