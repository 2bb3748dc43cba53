/** Host limits on what a partition may register. */
export interface TaskLimits {
  /** Tasks per partition. */
  maxTasks: number;
  /** Smallest `every` period, and smallest gap between cron occurrences, in ms. */
  minIntervalMs: number;
  maxPayloadBytes: number;
  /** Cap on retry attempts a spec may ask for. */
  maxAttempts: number;
}

export { DEFAULT_TASK_LIMITS } from "../options.ts";

export const DEFAULT_RETRY = { maxAttempts: 6, initialBackoffMs: 2000, maxBackoffMs: 300_000 } as const;
