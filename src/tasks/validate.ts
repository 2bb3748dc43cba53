// Checks a guest's task spec at the boundary. Every refusal is a WIT `task-error` case
// with a message that says what was wrong and what to do; nothing here traps.
import { cronOf } from "./schedule.ts";
import type { TaskError, TaskSpec } from "../../wit/index.ts";
import type { TaskLimits } from "./limits.ts";

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Latest instant a trigger may name: the end of year 9999. */
const MAX_TIME = 253_402_300_799_999;
/** Longest wait between retries. */
const MAX_BACKOFF = 30 * 86_400_000;

/** A refused registration. Thrown through the WIT boundary as `err(task-error)`. */
export class TaskSpecError extends Error {
  override name = "TaskSpecError";
  constructor(readonly payload: TaskError) {
    super(payload.val);
  }
}

function refuse(tag: TaskError["tag"], message: string): never {
  throw new TaskSpecError({ tag, val: message } as TaskError);
}

function describe(value: string): string {
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${shown} (${value.length} characters)`;
}

export function validateSpec(spec: TaskSpec, limits: TaskLimits, now: number): void {
  if (!NAME.test(spec.name)) {
    refuse("invalid-name", `Task name ${describe(spec.name)} is invalid: use 1 to 64 characters from a-z A-Z 0-9 . _ -.`);
  }
  if (!NAME.test(spec.entry)) {
    refuse("invalid-entry", `Entry ${describe(spec.entry)} of task ${spec.name} is invalid: use 1 to 64 characters from a-z A-Z 0-9 . _ -.`);
  }
  if (spec.payload.length > limits.maxPayloadBytes) {
    refuse(
      "payload-too-large",
      `The payload of task ${spec.name} is ${spec.payload.length} bytes; ` +
        `the limit is ${limits.maxPayloadBytes}. Keep large data in the partition's memory and pass a key.`,
    );
  }
  validateTrigger(spec, limits, now);
  if (spec.retry) {
    const { maxAttempts, initialBackoffMs, maxBackoffMs } = spec.retry;
    if (maxAttempts < 1 || maxAttempts > limits.maxAttempts) {
      refuse("invalid-retry", `Task ${spec.name} asks for ${maxAttempts} attempts; use 1 to ${limits.maxAttempts}.`);
    }
    if (maxBackoffMs > BigInt(MAX_BACKOFF)) {
      refuse("invalid-retry", `Task ${spec.name} has a max backoff of ${maxBackoffMs} ms; keep it at most ${MAX_BACKOFF} ms (30 days).`);
    }
    if (initialBackoffMs > maxBackoffMs) {
      refuse(
        "invalid-retry",
        `Task ${spec.name} has initial backoff ${initialBackoffMs} ms above its max backoff ${maxBackoffMs} ms; make the max at least the initial.`,
      );
    }
  }
}

function validateTrigger(spec: TaskSpec, limits: TaskLimits, now: number): void {
  const trigger = spec.trigger;
  switch (trigger.tag) {
    case "at":
      if (trigger.val > BigInt(MAX_TIME)) {
        refuse("invalid-trigger", `Task ${spec.name} is set for ${trigger.val} ms after the epoch, past the year 9999; give a Unix time in milliseconds.`);
      }
      return;
    case "after":
      if (trigger.val > BigInt(MAX_TIME - now)) {
        refuse("invalid-trigger", `Task ${spec.name} asks for a delay of ${trigger.val} ms, past the year 9999; give the delay in milliseconds.`);
      }
      return;
    case "every":
      if (trigger.val < BigInt(limits.minIntervalMs)) {
        refuse("interval-too-short", `Task ${spec.name} repeats every ${trigger.val} ms; the minimum is ${limits.minIntervalMs} ms.`);
      }
      if (trigger.val > BigInt(MAX_TIME)) {
        refuse("invalid-trigger", `Task ${spec.name} repeats every ${trigger.val} ms, which never comes; use a shorter period.`);
      }
      return;
    case "cron": {
      const { expression, timezone } = trigger.val;
      if (timezone !== undefined && !isTimeZone(timezone)) {
        refuse(
          "invalid-timezone",
          `Task ${spec.name} names time zone ${describe(timezone)}, which is not a known IANA zone; use a name like Europe/Berlin, or leave it out for UTC.`,
        );
      }
      let runs: Date[];
      try {
        runs = cronOf(expression, timezone).nextRuns(32, new Date(now));
      } catch (error) {
        refuse("invalid-cron", `Task ${spec.name} has cron expression ${describe(expression)}, which does not parse: ${(error as Error).message}`);
      }
      if (runs.length === 0) {
        refuse("invalid-cron", `Task ${spec.name} has cron expression ${describe(expression)}, which never fires again; check its fields.`);
      }
      for (let i = 1; i < runs.length; i++) {
        if (runs[i]!.getTime() - runs[i - 1]!.getTime() < limits.minIntervalMs) {
          refuse(
            "interval-too-short",
            `Task ${spec.name} has cron expression ${describe(expression)}, which fires more often than every ${limits.minIntervalMs} ms.`,
          );
        }
      }
      return;
    }
    case "push":
      return;
  }
}

function isTimeZone(name: string): boolean {
  if (name.length === 0 || name.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
