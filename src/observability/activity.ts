// Per-partition counters and the recent activations and failures, fed by host events,
// for the admin API and the status page.
import type { HostEvent } from "../events.ts";

export interface PartitionActivity {
  activations: number;
  deliveries: number;
  failures: number;
  lastActivation?: { kind: string; at: number; ms: number };
}

export interface ActivityEntry {
  at: number;
  partition: string;
  what: string;
  ok: boolean;
}

const RECENT = 50;

export class Activity {
  readonly #byPartition = new Map<string, PartitionActivity>();
  readonly #recent: ActivityEntry[] = [];
  readonly #clock: () => number;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  of(partition: string): PartitionActivity {
    return this.#byPartition.get(partition) ?? { activations: 0, deliveries: 0, failures: 0 };
  }

  /** The latest entries, newest first. */
  recent(): ActivityEntry[] {
    return [...this.#recent].reverse();
  }

  observe(event: HostEvent): void {
    const at = this.#clock();
    switch (event.type) {
      case "activated": {
        const activity = this.#entry(event.partition);
        activity.activations++;
        activity.lastActivation = { kind: event.kind, at, ms: event.ms };
        if (event.kind !== "warm") this.#add({ at, partition: event.partition, what: `${event.kind} in ${event.ms.toFixed(1)} ms`, ok: true });
        break;
      }
      case "delivered": {
        const activity = this.#entry(event.partition);
        activity.deliveries++;
        if (!event.outcome.ok) activity.failures++;
        const result = event.outcome.ok ? "ok" : `failed: ${event.outcome.error}`;
        this.#add({ at, partition: event.partition, what: `${event.kind} ${event.name} attempt ${event.attempt}: ${result}`, ok: event.outcome.ok });
        break;
      }
      case "dead-lettered":
        this.#add({ at, partition: event.partition, what: `${event.name} dead-lettered after ${event.attempts} attempts: ${event.error}`, ok: false });
        break;
      case "trap":
      case "snapshot-problem":
      case "freeze-failed":
        this.#add({ at, partition: event.partition, what: event.error.message, ok: false });
        break;
    }
  }

  forget(partition: string): void {
    this.#byPartition.delete(partition);
  }

  #entry(partition: string): PartitionActivity {
    let activity = this.#byPartition.get(partition);
    if (!activity) this.#byPartition.set(partition, (activity = { activations: 0, deliveries: 0, failures: 0 }));
    return activity;
  }

  #add(entry: ActivityEntry): void {
    this.#recent.push(entry);
    if (this.#recent.length > RECENT) this.#recent.shift();
  }
}
