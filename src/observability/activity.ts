// Per-partition counters, the recent activations, failures and misfires, samples of wake
// latency and fire lateness, and guest log lines, fed by host events, for the admin API
// and the status page.
import type { HostEvent } from "../events.ts";
import { GuestLogs } from "./guest-logs.ts";

export interface PartitionActivity {
  activations: number;
  deliveries: number;
  failures: number;
  lastActivation?: { kind: string; at: number; ms: number };
  /** Set while the partition's latest activation failed: when, and the guest's error. */
  activationError?: { at: number; reason: string; error: string };
}

export interface ActivityEntry {
  at: number;
  partition: string;
  what: string;
  ok: boolean;
}

/** How one delivery attempt ended. */
export interface AttemptOutcome {
  attempt: number;
  ok: boolean;
  error?: string;
  ms: number;
}

/** A measured duration and when it was taken. */
export interface Sample {
  at: number;
  ms: number;
}

export interface MisfireEntry {
  at: number;
  partition: string;
  task: string;
  policy: string;
  missed: number;
  since: number;
  delivered: number;
}

const RECENT = 50;
/** Samples kept for each chart. */
const SAMPLES = 120;

/** A frozen partition whose latest activation failed shows as `activation-failed` until one succeeds. */
export function visibleState(state: string, activity: PartitionActivity): string {
  return state === "frozen" && activity.activationError ? "activation-failed" : state;
}

export class Activity {
  readonly #byPartition = new Map<string, PartitionActivity>();
  readonly #recent: ActivityEntry[] = [];
  readonly #misfires: MisfireEntry[] = [];
  /** Time to make a frozen or new partition available (warm activations are not wakes). */
  readonly wakes: Sample[] = [];
  /** From a timer's due time to its first attempt. */
  readonly lateness: Sample[] = [];
  readonly logs: GuestLogs;
  /** The latest attempts' outcomes by delivery id, for callers that fire and wait. */
  readonly #outcomes = new Map<string, AttemptOutcome>();
  readonly #waiting = new Map<string, ((outcome: AttemptOutcome) => void)[]>();
  readonly #clock: () => number;

  constructor(clock: () => number) {
    this.#clock = clock;
    this.logs = new GuestLogs(clock);
  }

  of(partition: string): PartitionActivity {
    return this.#byPartition.get(partition) ?? { activations: 0, deliveries: 0, failures: 0 };
  }

  /** The latest entries, newest first. */
  recent(): ActivityEntry[] {
    return [...this.#recent].reverse();
  }

  /** The latest misfires, newest first. */
  misfires(): MisfireEntry[] {
    return [...this.#misfires].reverse();
  }

  /** The outcome of a delivery's latest attempt, waiting for it up to `waitMs` of wall time (a request deadline). */
  outcomeOf(delivery: string, waitMs: number): Promise<AttemptOutcome | undefined> {
    const known = this.#outcomes.get(delivery);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(delivery) ?? [];
      this.#waiting.set(delivery, waiters);
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(done), 1);
        if (waiters.length === 0) this.#waiting.delete(delivery);
        resolve(undefined);
      }, waitMs);
      const done = (outcome: AttemptOutcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      waiters.push(done);
    });
  }

  observe(event: HostEvent): void {
    const at = this.#clock();
    switch (event.type) {
      case "activated": {
        const activity = this.#entry(event.partition);
        activity.activations++;
        activity.lastActivation = { kind: event.kind, at, ms: event.ms };
        delete activity.activationError;
        if (event.kind !== "warm") {
          this.#add({ at, partition: event.partition, what: `${event.kind} in ${event.ms.toFixed(1)} ms`, ok: true });
          keep(this.wakes, { at, ms: event.ms }, SAMPLES);
        }
        break;
      }
      case "delivered": {
        const activity = this.#entry(event.partition);
        activity.deliveries++;
        if (!event.outcome.ok) activity.failures++;
        const result = event.outcome.ok ? "ok" : `failed: ${event.outcome.error}`;
        this.#settle(event.delivery, {
          attempt: event.attempt,
          ok: event.outcome.ok,
          ...(event.outcome.ok ? {} : { error: event.outcome.error }),
          ms: event.ms,
        });
        if (event.attempt === 1 && event.kind === "timer") keep(this.lateness, { at, ms: Math.max(0, event.firedAt - event.scheduledAt) }, SAMPLES);
        this.#add({ at, partition: event.partition, what: `${event.kind} ${event.name} attempt ${event.attempt}: ${result}`, ok: event.outcome.ok });
        break;
      }
      case "activation-failed": {
        const activity = this.#entry(event.partition);
        activity.failures++;
        activity.activationError = { at, reason: event.reason, error: event.error.message };
        this.#add({ at, partition: event.partition, what: `activation (${event.reason}) failed: ${event.error.message}`, ok: false });
        break;
      }
      case "dead-lettered":
        this.#add({ at, partition: event.partition, what: `${event.name} dead-lettered after ${event.attempts} attempts: ${event.error}`, ok: false });
        break;
      case "misfire": {
        const { partition, name: task, policy, missed, since, delivered } = event;
        keep(this.#misfires, { at, partition, task, policy, missed, since, delivered }, RECENT);
        break;
      }
      case "trap":
      case "snapshot-problem":
      case "freeze-failed":
        this.#add({ at, partition: event.partition, what: event.error.message, ok: false });
        break;
    }
  }

  forget(partition: string): void {
    this.#byPartition.delete(partition);
    this.logs.forget(partition);
  }

  #entry(partition: string): PartitionActivity {
    let activity = this.#byPartition.get(partition);
    if (!activity) this.#byPartition.set(partition, (activity = { activations: 0, deliveries: 0, failures: 0 }));
    return activity;
  }

  #settle(delivery: string, outcome: AttemptOutcome): void {
    this.#outcomes.set(delivery, outcome);
    if (this.#outcomes.size > RECENT) this.#outcomes.delete(this.#outcomes.keys().next().value!);
    for (const done of this.#waiting.get(delivery) ?? []) done(outcome);
    this.#waiting.delete(delivery);
  }

  #add(entry: ActivityEntry): void {
    keep(this.#recent, entry, RECENT);
  }
}

function keep<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.shift();
}
