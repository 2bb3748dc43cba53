// Partitions that keep running past their deadline are refused for a while: each runaway
// costs an executor a whole deadline of CPU, and a guest stuck in a loop would otherwise
// be woken to spin again by every retry and timer.
import { DormantError } from "../errors.ts";

/** Runaways in a row before a partition is quarantined. */
export const QUARANTINE_AFTER = 2;
/** First back-off; it doubles with each further runaway, up to the maximum. */
export const QUARANTINE_BASE_MS = 30_000;
export const QUARANTINE_MAX_MS = 15 * 60_000;

interface Record {
  /** Runaways since its last call that finished in time. */
  strikes: number;
  /** Host time until which its activations are refused. */
  until: number;
}

export class Quarantine {
  readonly #records = new Map<string, Record>();
  /** Calls stopped at their deadline, and quarantines begun, since start. */
  readonly counts = { runaways: 0, quarantined: 0 };

  /** A call of `partition` was stopped at its deadline at host time `now`. Returns the quarantine's end if this begins one. */
  ranAway(partition: string, now: number): number | undefined {
    const record = this.#records.get(partition) ?? { strikes: 0, until: 0 };
    record.strikes++;
    this.counts.runaways++;
    this.#records.set(partition, record);
    if (record.strikes < QUARANTINE_AFTER) return undefined;
    const backoff = Math.min(QUARANTINE_BASE_MS * 2 ** (record.strikes - QUARANTINE_AFTER), QUARANTINE_MAX_MS);
    record.until = now + backoff;
    this.counts.quarantined++;
    return record.until;
  }

  /** A call of `partition` finished within its deadline: its strikes are forgiven. */
  behaved(partition: string): void {
    this.#records.delete(partition);
  }

  /** Throws while `partition` is quarantined at host time `now`. */
  check(partition: string, now: number): void {
    const record = this.#records.get(partition);
    if (!record || now >= record.until) return;
    throw new DormantError(
      "partition-quarantined",
      `Partition ${partition} ran past its deadline ${record.strikes} times in a row, so it is not activated until ` +
        `${new Date(record.until).toISOString()} (${Math.ceil((record.until - now) / 1000)} s from now); it is let back in by itself then. ` +
        `Fix the guest's long-running code, or raise the partition's cpuDeadlineMs if the work is legitimate.`,
      { details: { until: record.until, strikes: record.strikes } },
    );
  }
}
