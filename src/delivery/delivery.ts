// One event on its way to a partition: a timer occurrence or a push request, with its
// attempts so far. Delivery is at-least-once: a failed attempt is retried with
// exponential backoff under the event's retry policy, then dead-lettered. Delivery knows
// nothing about tasks: whoever makes an event says where it goes and how it is retried.
import type { PushRequest, TaskEvent, WhenConstrained } from "../../wit/index.ts";

/** What the event is: a timer occurrence, an HTTP push, or a fire asked for by an operator. */
export type DeliveryKind = "timer" | "push" | "manual";

/** A retry policy with plain numbers (the WIT's u64 fields converted at the edge). */
export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

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

/** The delivery's task, named for events and logs. */
export interface DeliveryRef {
  task: string;
  name: string;
  partition: string;
}

export function refOf(delivery: Delivery): DeliveryRef {
  return { task: delivery.taskId, name: delivery.taskName, partition: delivery.partition };
}

/** The event the guest receives for the next attempt (the WIT edge: times become u64). */
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
  return Math.min(retry.initialBackoffMs * 2 ** Math.min(attemptsMade - 1, 60), retry.maxBackoffMs);
}
