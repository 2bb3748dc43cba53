/** When a partition's state is written to storage. */
export type Durability =
  /** Snapshot when the partition is frozen (idle timeout, LRU, shutdown). */
  | "on-idle"
  /** Snapshot after every event, before the event counts as delivered. */
  | "per-activation";

export type PartitionState = "active" | "idle" | "frozen" | "deleted";

/** A partition as the host persists it. */
export interface PartitionRecord {
  id: string;
  name: string;
  /** Digest of the component it runs. */
  component: string;
  durability: Durability;
  createdAt: number;
}

/** How an activation got its instance. */
export type ActivationKind = "warm" | "rehydrated" | "fresh";
