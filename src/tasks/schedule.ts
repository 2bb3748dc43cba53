// When a trigger fires next. Cron occurrences come from croner, evaluated in the
// schedule's IANA zone: a wall time skipped by a spring-forward change fires at the first
// instant after the gap, and a wall time repeated by an autumn change fires once.
import { Cron } from "croner";
import type { Trigger } from "./task.ts";

export function cronOf(expression: string, timezone: string | undefined): Cron {
  return new Cron(expression, { paused: true, timezone: timezone ?? "UTC" });
}

/** The first occurrence strictly after `after`; undefined when there is none. */
export function nextOccurrence(trigger: Trigger, after: number, registeredAt: number): number | undefined {
  switch (trigger.tag) {
    case "at":
      return trigger.val > after ? trigger.val : undefined;
    case "after": {
      const at = registeredAt + trigger.val;
      return at > after ? at : undefined;
    }
    case "every": {
      const period = trigger.val;
      const elapsed = Math.max(0, after - registeredAt);
      return registeredAt + (Math.floor(elapsed / period) + 1) * period;
    }
    case "cron":
      return cronOf(trigger.val.expression, trigger.val.timezone).nextRun(new Date(after))?.getTime();
    case "push":
      return undefined;
  }
}

/** The first occurrence of a freshly registered trigger. */
export function firstOccurrence(trigger: Trigger, now: number): number | undefined {
  // A one-shot `at` in the past fires as soon as possible rather than never, and a
  // 0 ms `after` at once.
  if (trigger.tag === "at") return Math.max(trigger.val, now);
  if (trigger.tag === "after") return now + trigger.val;
  return nextOccurrence(trigger, now, now);
}
