// Messages between the main thread and executor workers. Everything here is plain,
// structured-cloneable data.
import type { PreparedComponent } from "../engine.ts";
import type { ErrorData } from "../errors.ts";
import type { ActivationReason, LogLevel, Reply, TaskEvent } from "../../wit/index.ts";

export type { ActivationReason, LogLevel, TaskEvent };

export interface HostCall {
  /** Opaque state for the host binding during the call. */
  host: unknown;
  /** The host's clock when the call was sent. */
  now: number;
  /** Most bytes of linear memory the instance may hold: each memory's maximum, and checked after the call. */
  memoryLimit: number;
}

/** What one activation or call may use. */
export interface CallLimits {
  /** Wall-clock time the guest may run, from when its executor starts the request, before the call is stopped. */
  deadlineMs: number;
  memoryBytes: number;
}

export type Request =
  | { op: "prepare"; bytes: Uint8Array }
  | { op: "compile"; component: PreparedComponent; memoryLimit: number }
  | ({
      op: "activate";
      partition: string;
      component: PreparedComponent;
      snapshot?: Uint8Array;
      reason: ActivationReason;
      spareInstances: number;
      /** The event that woke the partition, handled in the same request once it is active (one thread round trip, not two). */
      event?: TaskEvent;
      /** The partition never stopped (its freeze could not be stored): restored from the snapshot without `on-activate`. */
      resume?: boolean;
    } & HostCall)
  | ({ op: "upgrade"; partition: string; from: { component: PreparedComponent; snapshot?: Uint8Array }; component: PreparedComponent } & HostCall)
  /** Events for a live partition, run in order; see `CallsResult`. */
  | ({ op: "calls"; partition: string; events: TaskEvent[] } & HostCall)
  | { op: "snapshot"; partition: string }
  | { op: "drop"; partition: string }
  /** After an interrupt: answers once the executor has dropped the interrupted instance. */
  | { op: "recover" };

/** Instances an executor keeps as their partitions froze, per component, for those partitions' next wakes (the executor's `release`). */
export const KEPT_PER_POOL = 16;

/** How an activation got its instance: a pristine spare, a new one, or the spare it froze on, its state still in place (nothing restored). */
export type InstanceSource = "pool" | "instantiated" | "kept";

export interface ActivateResult {
  source: InstanceSource;
  effects: unknown;
  /** Milliseconds spent inside the executor, by step. */
  timings: { instance: number; restore: number; activate: number };
  /** The first event's result, when the activation carried one (see `EventResult`). */
  first?: EventResult;
}

export interface UpgradeResult {
  effects: unknown;
  /** Bytes of state the old version handed to the new one; undefined when it started fresh (not both export `handover`, or no snapshot). */
  handedOver: number | undefined;
}

export type CallOutcome = { ok: true; reply: Reply | undefined } | { ok: false; error: string };

export interface CallResult {
  outcome: CallOutcome;
  effects: unknown;
  ms: number;
}

/** How one event went: the call's result, or why it trapped (`ok: false`: the instance is gone). */
export type EventResult = { ok: true; result: CallResult } | { ok: false; error: ErrorData };

/**
 * The events of a `calls` request, each as it went, in order, as far as they ran: after an
 * event that failed (its outcome) or trapped the rest were not run, and go again once the
 * host has seen that one.
 */
export type CallsResult = EventResult[];

export interface SnapshotResult {
  /** Compressed, to store. */
  bytes: Uint8Array;
  /** The same snapshot uncompressed, to keep in memory for a warm wake. */
  image: Uint8Array;
  memoryBytes: number;
  deltaBytes: number;
  ms: number;
}

/**
 * Requests travel in batches, answers too. Posting a message to a thread that sleeps costs
 * the sender about 50 µs here (the wake-up), so what is sent within one turn of the event
 * loop goes in one message, and what an executor answered while it had more to do goes
 * back in one.
 */
export interface Envelope {
  id: number;
  request: Request;
}

/** What guests logged while the request ran, handed over with its answer (a message per line would cost a thread wake-up each). */
export type Response = ({ id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorData }) & { logs?: LogLine[] };

export interface LogLine {
  partition: string;
  level: LogLevel;
  message: string;
}

export type FromWorker = { type: "responses"; responses: Response[] } | { type: "logs"; logs: LogLine[] };

/**
 * The buffers to transfer along with these byte arrays, each if it owns its buffer whole. Small Node
 * Buffers share a pooled slab; transferring that would detach every Buffer on it.
 */
export function transferList(...arrays: (Uint8Array | undefined)[]): ArrayBuffer[] {
  const buffers = arrays.flatMap((bytes) => {
    if (!bytes || bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) return [];
    return bytes.buffer instanceof ArrayBuffer ? [bytes.buffer] : [];
  });
  // A stored snapshot may be its image itself: a buffer listed twice cannot be transferred.
  return [...new Set(buffers)];
}
