import type { ActivationReason } from "../../runtime/index.ts";
/** When a partition's state is written to storage. */
export type Durability =
  /** Snapshot when the partition is frozen (idle timeout, LRU, shutdown). */
  | "on-idle"
  /** Snapshot after every event, before the event counts as delivered. */
  | "per-activation";

/** Where a partition's task registrations live. */
export type RegistrationMode =
  /** Persisted by the host: it can wake the partition on its own, across restarts. */
  | "host"
  /**
   * Kept in the guest's own state; the host holds only a volatile copy and, when it
   * starts, activates the partition once (`on-activate(restored)`) to have them re-registered.
   */
  | "guest";

export type PartitionState = "active" | "idle" | "frozen" | "deleted";

/** What one partition may use; the host's defaults, overridable per partition. */
export interface PartitionLimits {
  /** Time one activation or event may run before its executor is stopped (default 5 s). */
  cpuDeadlineMs: number;
  /** Linear memory the instance may hold after a call (default 256 MiB). */
  memoryBytes: number;
  /** Largest snapshot a freeze may store (default 64 MiB). */
  snapshotBytes: number;
}

export { DEFAULT_PARTITION_LIMITS } from "../options.ts";

/** What it takes to create a partition (or provision a replacement for a deleted one). */
export interface PartitionSpec {
  name: string;
  /** Digest of the component it runs. */
  component: string;
  durability: Durability;
  registrations: RegistrationMode;
  /** Overrides of the host's partition limits. */
  limits?: Partial<PartitionLimits>;
}

/** A partition as the host persists it. */
export interface PartitionRecord extends PartitionSpec {
  id: string;
  createdAt: number;
}

/** The spec a record was created from: everything that a replacement must keep. */
export function specOf(record: PartitionRecord): PartitionSpec {
  const { id: _id, createdAt: _createdAt, ...spec } = record;
  return spec;
}

/** How an activation got its instance. */
export type ActivationKind = "warm" | "rehydrated" | "fresh" | "reprovisioned" | "upgraded";

/** What the host adds to the lifecycle: the state a call sees, and what to do with its effects. */
export interface CallHooks<State = unknown, Effects = unknown> {
  /** What the host imports see during a call to `partition`. */
  stateFor(partition: string): State;
  /** Make a successful call's effects count (after its snapshot, for per-activation durability). */
  commit(partition: string, effects: Effects): Promise<void>;
  /** A partition joined the host (created, or loaded at start). */
  added(record: PartitionRecord): void;
  /** A partition was deleted. */
  deleted(record: PartitionRecord): Promise<void>;
}

/** What the lifecycle reports. */
export type PartitionEvent =
  | { type: "activated"; partition: string; kind: ActivationKind; reason: ActivationReason; ms: number; pooled: boolean }
  | { type: "frozen"; partition: string; bytes: number; ms: number }
  | { type: "checkpointed"; partition: string; bytes: number; ms: number }
  | { type: "activation-failed"; partition: string; reason: ActivationReason; error: Error }
  /** A new component version runs the partition; `handedOver` is the bytes of state carried (undefined: it started fresh). */
  | { type: "upgraded"; partition: string; from: string; to: string; handedOver: number | undefined; ms: number }
  | { type: "upgrade-failed"; partition: string; from: string; to: string; error: Error }
  | { type: "snapshot-problem"; partition: string; error: Error }
  | { type: "freeze-failed"; partition: string; error: Error }
  | { type: "trap"; partition: string; error: Error };
