// What to deliver when a timer task is taken from the queue. Normally that is one event
// for the occurrence that came due. When the task is taken late — the host was down, or
// the task waited out a constrained budget — several occurrences may have come due; the
// task's misfire policy decides what happens to them, and the plan says so, so the
// misfire is recorded rather than silent.
import { nextOccurrence } from "./schedule.ts";
import type { MisfirePolicy, TaskRecord } from "./task.ts";

export interface MisfireOptions {
  /** An occurrence delivered more than this late counts as missed (default 60 s). */
  graceMs: number;
  /** Most events `fire-all` delivers for one misfire (default 100). */
  fireAllCap: number;
}

export { DEFAULT_MISFIRE } from "../options.ts";

/** Cron occurrences are counted one by one (croner takes ~0.1 ms each) up to this many; beyond it, "at least". */
const MAX_COUNTED = 1000;

export interface PlannedEvent {
  scheduledAt: number;
  /** How many occurrences the event stands for. */
  occurrences: number;
}

export interface Misfire {
  policy: MisfirePolicy;
  /** Occurrences that came due before the task was taken (a lower bound when `countCapped`). */
  missed: number;
  countCapped: boolean;
  /** The first of them. */
  since: number;
  /** Events delivered for them under the policy. */
  delivered: number;
}

export interface FirePlan {
  events: PlannedEvent[];
  /** The first occurrence after `now`; undefined when the task is spent. */
  next: number | undefined;
  misfire: Misfire | undefined;
}

/** Plan the delivery of a task whose occurrence at `due` was taken at `now`. */
export function planFire(task: TaskRecord, due: number, now: number, options: MisfireOptions): FirePlan {
  const { times, count, countCapped, next } = occurrencesSince(task, due, now, options.fireAllCap);
  const late = now - due > options.graceMs;
  if (count === 1 && !late) return { events: [{ scheduledAt: due, occurrences: 1 }], next, misfire: undefined };
  let events: PlannedEvent[];
  switch (task.misfire) {
    case "fire-once":
      events = [{ scheduledAt: due, occurrences: Math.min(count, 0xffff_ffff) }];
      break;
    case "skip":
      events = [];
      break;
    case "fire-all":
      events = times.map((scheduledAt) => ({ scheduledAt, occurrences: 1 }));
      break;
  }
  return { events, next, misfire: { policy: task.misfire, missed: count, countCapped, since: due, delivered: events.length } };
}

/** The occurrences in [due, now] (their times up to `keep` of them) and the one after. */
function occurrencesSince(task: TaskRecord, due: number, now: number, keep: number) {
  const { trigger, registeredAt } = task;
  if (trigger.tag === "every") {
    const period = trigger.val;
    const count = Math.floor((now - due) / period) + 1;
    const times = Array.from({ length: Math.min(count, keep) }, (_, i) => due + i * period);
    return { times, count, countCapped: false, next: due + count * period };
  }
  const times: number[] = [];
  let count = 0;
  let at: number | undefined = due;
  while (at !== undefined && at <= now && count < MAX_COUNTED) {
    if (times.length < keep) times.push(at);
    count++;
    at = nextOccurrence(trigger, at, registeredAt);
  }
  const countCapped = at !== undefined && at <= now;
  if (countCapped) at = nextOccurrence(trigger, now, registeredAt);
  return { times, count, countCapped, next: at };
}
