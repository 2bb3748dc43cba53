/** @module Interface dormant:host/background-tasks@0.1.0 **/
/**
 * Register a task, or replace the task of the same name (a push task keeps its URL).
 * In JS and TS guests an `err` is thrown: an Error whose `payload` is the
 * `task-error` (`{ tag: "invalid-cron", val: "…what to change…" }`). Uncaught, it
 * fails the call with the error `invalid-cron: …what to change…`.
 */
export function register(spec: TaskSpec): TaskInfo;
/**
 * Cancel the task of this name; false when there was none.
 */
export function cancel(name: string): boolean;
/**
 * This partition's tasks, ordered by name.
 */
export function list(): Array<TaskInfo>;
export type TimestampMs = import('./dormant-host-types.js').TimestampMs;
/**
 * A cron schedule, evaluated by the host.
 */
export interface CronSchedule {
  /**
   * Five or six fields (seconds optional), e.g. `0 9 * * MON-FRI`.
   */
  expression: string,
  /**
   * IANA time zone such as `Europe/Berlin`; UTC when absent. In a zone's
   * spring-forward gap a wall time that does not exist fires at the first instant
   * after the gap; in the autumn overlap a repeated wall time fires once, at its
   * first occurrence.
   */
  timezone?: string,
}
/**
 * What makes a task fire.
 */
export type Trigger = TriggerAt | TriggerAfter | TriggerEvery | TriggerCron | TriggerPush;
/**
 * Once, at this instant. An instant in the past fires as soon as possible.
 */
export interface TriggerAt {
  tag: 'at',
  val: TimestampMs,
}
/**
 * Once, this many milliseconds after registration.
 */
export interface TriggerAfter {
  tag: 'after',
  val: bigint,
}
/**
 * Repeatedly, every this many milliseconds, first one period after registration.
 */
export interface TriggerEvery {
  tag: 'every',
  val: bigint,
}
/**
 * On a cron schedule.
 */
export interface TriggerCron {
  tag: 'cron',
  val: CronSchedule,
}
/**
 * Whenever an HTTP request reaches the task's push URL (see `task-info.push-url`).
 */
export interface TriggerPush {
  tag: 'push',
}
/**
 * What to do with missed occurrences: those that came due while the host was down,
 * or that were taken more than the host's grace period (60 s by default) late.
 * # Variants
 * 
 * ## `"fire-once"`
 * 
 * Deliver one event for all missed occurrences (the default).
 * ## `"skip"`
 * 
 * Deliver none; wait for the next occurrence.
 * ## `"fire-all"`
 * 
 * Deliver every missed occurrence, up to a host-defined cap.
 */
export type MisfirePolicy = 'fire-once' | 'skip' | 'fire-all';
/**
 * How a failed delivery is retried before it goes to the dead-letter list.
 */
export interface RetryPolicy {
  /**
   * Total attempts including the first, at least 1.
   */
  maxAttempts: number,
  /**
   * Delay before the second attempt; doubled after each failure.
   */
  initialBackoffMs: bigint,
  /**
   * The delay never grows past this.
   */
  maxBackoffMs: bigint,
}
/**
 * What happens to this task while the host runs under a constrained budget and the
 * task's priority is below the threshold.
 * # Variants
 * 
 * ## `"postpone"`
 * 
 * Wait until the constraint lifts, then run (the default).
 * ## `"drop"`
 * 
 * Do not run this occurrence at all.
 */
export type WhenConstrained = 'postpone' | 'drop';
export interface TaskSpec {
  /**
   * Unique within the partition: 1 to 64 characters from `a-z A-Z 0-9 . _ -`.
   * Registering a name that exists replaces that task.
   */
  name: string,
  trigger: Trigger,
  /**
   * The guest entry point this task activates, passed to `handler.on-task` as
   * `task-event.entry`; same charset as `name`.
   */
  entry: string,
  /**
   * Opaque bytes handed back with every event (host limit, 64 KiB by default).
   */
  payload: Uint8Array,
  /**
   * 0 (lowest) to 255 (highest). Under a constrained budget only tasks at or above
   * the host's threshold run.
   */
  priority: number,
  /**
   * Keep this task when its partition is deleted: when it next fires, the host
   * provisions a fresh partition of the same component and delivers to it.
   */
  outlivePartition: boolean,
  /**
   * Host defaults when absent (6 attempts, from 2 s, capped at 5 min).
   */
  retry?: RetryPolicy,
  /**
   * `fire-once` when absent.
   */
  misfire?: MisfirePolicy,
  /**
   * `postpone` when absent.
   */
  whenConstrained?: WhenConstrained,
  /**
   * For `push` tasks: deliver the request's `cookie` and `authorization` headers too.
   * When absent or false the host removes them (and `proxy-authorization`) before the
   * guest sees the request, so a caller's credentials reach only tasks that ask for
   * them. Even when true, the host's own cookies (names starting `dormant`) and an
   * `authorization` carrying one of the host's tokens are never delivered. Ignored for
   * other triggers.
   */
  receiveCredentials?: boolean,
}
/**
 * A registered task, as the host holds it.
 */
export interface TaskInfo {
  /**
   * Host-assigned id, unguessable, stable across replacement by name.
   */
  id: string,
  name: string,
  trigger: Trigger,
  entry: string,
  priority: number,
  outlivePartition: boolean,
  /**
   * When the task fires next; absent for `push` tasks. A one-shot is removed once it
   * has fired (retries of a failed delivery go on without it).
   */
  nextFire?: TimestampMs,
  /**
   * For `push` tasks: the path, relative to the host's push origin, that triggers it.
   * It is stable per (partition, task name): registering the same name again as a push
   * task (after a restart, or a fresh start after a crash) keeps it; `cancel` revokes
   * it, so a task cancelled and registered again, even within one call, gets a new one.
   */
  pushUrl?: string,
}
/**
 * Why a registration was refused. Each case carries a message for humans that says
 * what was wrong and what to do.
 */
export type TaskError = TaskErrorInvalidName | TaskErrorInvalidEntry | TaskErrorInvalidTrigger | TaskErrorInvalidCron | TaskErrorInvalidTimezone | TaskErrorIntervalTooShort | TaskErrorInvalidRetry | TaskErrorPayloadTooLarge | TaskErrorQuotaExceeded;
/**
 * The name is empty, too long or has characters outside the charset.
 */
export interface TaskErrorInvalidName {
  tag: 'invalid-name',
  val: string,
}
/**
 * The entry is empty, too long or has characters outside the charset.
 */
export interface TaskErrorInvalidEntry {
  tag: 'invalid-entry',
  val: string,
}
/**
 * A time is in an impossible range (e.g. an `at` before 1970 or after year 9999).
 */
export interface TaskErrorInvalidTrigger {
  tag: 'invalid-trigger',
  val: string,
}
/**
 * The cron expression does not parse.
 */
export interface TaskErrorInvalidCron {
  tag: 'invalid-cron',
  val: string,
}
/**
 * The time zone is not a known IANA zone.
 */
export interface TaskErrorInvalidTimezone {
  tag: 'invalid-timezone',
  val: string,
}
/**
 * An `every` period, or a cron schedule's gap, is below the host's minimum.
 */
export interface TaskErrorIntervalTooShort {
  tag: 'interval-too-short',
  val: string,
}
/**
 * The retry policy is out of range.
 */
export interface TaskErrorInvalidRetry {
  tag: 'invalid-retry',
  val: string,
}
/**
 * The payload is over the host's limit.
 */
export interface TaskErrorPayloadTooLarge {
  tag: 'payload-too-large',
  val: string,
}
/**
 * The partition already has as many tasks as the host allows.
 */
export interface TaskErrorQuotaExceeded {
  tag: 'quota-exceeded',
  val: string,
}
