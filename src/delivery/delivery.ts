// One event on its way to a partition: a timer occurrence or a push request, with its
// attempts so far. Delivery is at-least-once: a failed attempt is retried with
// exponential backoff under the task's retry policy, then dead-lettered.
import type { PushRequest, TaskEvent } from "../../runtime/executor/protocol.ts";
import type { RetryPolicy, TaskRecord, WhenConstrained } from "../tasks/task.ts";

/** What the event is: a timer occurrence, an HTTP push, or a fire asked for by an operator. */
export type DeliveryKind = "timer" | "push" | "manual";

export interface Delivery {
  id: string;
  kind: DeliveryKind;
  taskId: string;
  taskName: string;
  /** The partition the task belonged to when the event fired. */
  partition: string;
  entry: string;
  payload: Uint8Array;
  priority: number;
  whenConstrained: WhenConstrained;
  retry: RetryPolicy;
  scheduledAt: number;
  occurrences: number;
  request?: PushRequest;
  /** Attempts made so far. */
  attempts: number;
  /** When the next attempt is due, after a failed one. */
  nextAttemptAt?: number;
  lastError?: string;
}

export interface DeadLetter extends Delivery {
  lastError: string;
  deadAt: number;
}

export function deliveryOf(task: TaskRecord, id: string, kind: DeliveryKind, event: { scheduledAt: number; occurrences: number; request?: PushRequest }): Delivery {
  return {
    id,
    kind,
    taskId: task.id,
    taskName: task.name,
    partition: task.partition,
    entry: task.entry,
    payload: task.payload,
    priority: task.priority,
    whenConstrained: task.whenConstrained,
    retry: task.retry,
    scheduledAt: event.scheduledAt,
    occurrences: event.occurrences,
    ...(event.request ? { request: event.request } : {}),
    attempts: 0,
  };
}

/** The event the guest receives for the next attempt. */
export function taskEventOf(delivery: Delivery, firedAt: number): TaskEvent {
  return {
    taskId: delivery.taskId,
    taskName: delivery.taskName,
    entry: delivery.entry,
    payload: delivery.payload,
    scheduledAt: BigInt(delivery.scheduledAt),
    firedAt: BigInt(firedAt),
    attempt: delivery.attempts + 1,
    occurrences: delivery.occurrences,
    ...(delivery.request ? { request: delivery.request } : {}),
  };
}

/** The wait before the attempt after `attemptsMade` failed ones: doubling, capped. */
export function backoffMs(retry: RetryPolicy, attemptsMade: number): number {
  const initial = Number(retry.initialBackoffMs);
  const doubled = initial * 2 ** Math.min(attemptsMade - 1, 60);
  return Math.min(doubled, Number(retry.maxBackoffMs));
}
