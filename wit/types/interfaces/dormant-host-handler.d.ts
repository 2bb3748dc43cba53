/** @module Interface dormant:host/handler@0.1.0 **/
/**
 * Handle one event. `ok(some(reply))` answers a synchronous push; `ok(none)` is
 * success with no reply (a push then gets `204`). `err` fails the delivery, which the
 * host retries under the task's retry policy.
 */
export function onTask(event: TaskEvent): Reply | undefined;
export type TimestampMs = import('./dormant-host-types.js').TimestampMs;
export type PushRequest = import('./dormant-host-types.js').PushRequest;
export type Reply = import('./dormant-host-types.js').Reply;
/**
 * One firing of a task, as delivered to the guest.
 */
export interface TaskEvent {
  taskId: string,
  taskName: string,
  /**
   * The `entry` of the task's spec: which guest entry point this event is for.
   */
  entry: string,
  payload: Uint8Array,
  /**
   * When the occurrence was due (for a push, when the request arrived).
   */
  scheduledAt: TimestampMs,
  /**
   * When this delivery attempt started.
   */
  firedAt: TimestampMs,
  /**
   * 1 for the first delivery, then 2, 3, … on retries.
   */
  attempt: number,
  /**
   * How many occurrences this event stands for (more than 1 after a `fire-once` misfire).
   */
  occurrences: number,
  /**
   * The HTTP request, for `push` tasks.
   */
  request?: PushRequest,
}
