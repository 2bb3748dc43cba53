// How a live partition's state reaches storage: a snapshot after every event
// (per-activation), at freeze, or at a checkpoint while it stays busy (on-idle). A frozen
// partition is not live until its snapshot is stored (a failed write leaves it live, as it
// was), and an event whose snapshot could not be stored does not stay applied.
import { DormantError, isDormantError } from "../../runtime/index.ts";
import type { PartitionManagerOptions } from "./manager.ts";
import type { PartitionEvent, PartitionLimits, PartitionRecord } from "./partition.ts";

export interface Slot {
  record: PartitionRecord;
  /** Has an instance in an executor (kept in the manager's set of live slots, so counting them does not visit every partition). */
  live: boolean;
  /** Provisioned for a task that outlived its partition: the first activation says so. */
  reprovisioned: boolean;
  busy: boolean;
  lastUsed: number;
  /** Events since the state was last stored (on-idle), and when the first of them came. */
  unsaved: number;
  unsavedSince: number;
  queue: Promise<unknown>;
  /** Other work asked of the partition so far (a freeze, an upgrade, a delete): events asked for after it wait for it. */
  exclusiveAsked: number;
  /** Prewarmed for an event due then: not frozen for idleness or evicted before it. */
  heldUntil: number;
  /** An idle check is armed for it (see PartitionManager.#used). */
  idleArmed: boolean;
}

type PersistenceOptions = Pick<PartitionManagerOptions, "pool" | "snapshots" | "clock" | "hooks" | "checkpoint">;

export class Persistence {
  readonly #o: PersistenceOptions;
  readonly #limitsOf: (partition: string) => PartitionLimits;
  readonly #emit: (event: PartitionEvent) => void;
  readonly #resume: (slot: Slot, snapshot: Uint8Array) => Promise<void>;

  /** `resume` makes a partition live again from a snapshot just taken, without `on-activate`: it never stopped. */
  constructor(
    options: PersistenceOptions,
    limitsOf: (partition: string) => PartitionLimits,
    emit: (event: PartitionEvent) => void,
    resume: (slot: Slot, snapshot: Uint8Array) => Promise<void>,
  ) {
    this.#o = options;
    this.#limitsOf = limitsOf;
    this.#emit = emit;
    this.#resume = resume;
  }

  /**
   * Commit successful calls' effects, in order, and for per-activation durability one
   * snapshot taken after the last of them, which becomes the restore point only once the
   * effects are committed too.
   */
  async commit(slot: Slot, ...effects: unknown[]): Promise<void> {
    const id = slot.record.id;
    const commitEffects = async () => {
      for (const each of effects) await this.#o.hooks.commit(id, each);
    };
    if (slot.record.durability !== "per-activation") return commitEffects();
    try {
      const { bytes, image } = await this.#o.pool.snapshot(id);
      await this.#o.snapshots.put(id, bytes, this.#o.clock.now(), { image, beforeHead: commitEffects });
    } catch (error) {
      // The event is not saved (its snapshot or its effects), so it must not stay applied either:
      // the instance goes, and the next event (its retry) starts from the last restore point, which is without it.
      slot.live = false;
      await this.#o.pool.drop(id).catch(() => undefined);
      throw error;
    }
  }

  async freeze(slot: Slot): Promise<void> {
    if (!slot.live) return;
    const started = performance.now();
    const id = slot.record.id;
    if (slot.record.durability === "per-activation") {
      // The stored snapshot already holds the state after the last event.
      await this.#o.pool.drop(id);
      slot.live = false;
      this.#emit({ type: "frozen", partition: id, bytes: 0, ms: performance.now() - started });
      return;
    }
    // The instance goes back to its executor's pool once the snapshot is taken, not once it
    // is stored: a freeze that makes room for a wake then hands its instance to that wake,
    // rather than a new one being instantiated while the write is under way. The partition
    // counts as live until the write is done; if it fails, the snapshot in hand makes it
    // live again as it was, and nothing is lost.
    const snapshot = await this.#take(slot);
    await this.#o.pool.drop(id);
    let bytes: number;
    try {
      bytes = await this.#store(slot, snapshot);
    } catch (error) {
      // A copy: the activation hands its snapshot to the executor, and a write that failed only
      // after its head (removing the old blob) has left the image in the snapshot cache.
      await this.#resume(slot, snapshot.image.slice()).catch((resumeError: Error) => {
        slot.live = false;
        throw new DormantError(
          isDormantError(error) ? error.code : "store-unavailable",
          `Partition ${id} could not be frozen (${(error as Error).message}), nor made live again from the snapshot just taken (${resumeError.message}); ` +
            `it comes back from its last stored snapshot, without the events since.`,
          { cause: error },
        );
      });
      throw error;
    }
    slot.live = false;
    this.#emit({ type: "frozen", partition: id, bytes, ms: performance.now() - started });
  }

  /** Store a live partition's snapshot (it stays live); returns the bytes stored. */
  async save(slot: Slot): Promise<number> {
    return this.#store(slot, await this.#take(slot));
  }

  /** A live partition's snapshot, within its cap (over it, the partition stays live and this fails). */
  async #take(slot: Slot): Promise<{ bytes: Uint8Array; image: Uint8Array }> {
    const id = slot.record.id;
    const { bytes, image } = await this.#o.pool.snapshot(id);
    const cap = this.#limitsOf(id).snapshotBytes;
    if (bytes.length > cap) {
      throw new DormantError(
        "snapshot-too-large",
        `Partition ${id} cannot be frozen: its snapshot is ${bytes.length} bytes, over its ${cap}-byte cap. ` +
          `It stays live; raise its snapshot limit or have it keep less state.`,
      );
    }
    return { bytes, image };
  }

  async #store(slot: Slot, { bytes, image }: { bytes: Uint8Array; image: Uint8Array }): Promise<number> {
    const ref = await this.#o.snapshots.put(slot.record.id, bytes, this.#o.clock.now(), { image });
    slot.unsaved = 0;
    return ref.bytes;
  }

  /**
   * An `on-idle` partition that is never idle is still saved: after `checkpoint.events`
   * events, or `checkpoint.busyMs` since its first unsaved one, whichever comes first. A
   * kill then loses at most that much. A failed checkpoint is reported; the partition goes on.
   */
  async checkpointIfDue(slot: Slot): Promise<void> {
    if (slot.record.durability !== "on-idle" || !slot.live) return;
    const now = this.#o.clock.now();
    if (slot.unsaved++ === 0) slot.unsavedSince = now;
    const { events, busyMs } = this.#o.checkpoint;
    if (slot.unsaved < events && now - slot.unsavedSince < busyMs) return;
    const started = performance.now();
    try {
      const bytes = await this.save(slot);
      this.#emit({ type: "checkpointed", partition: slot.record.id, bytes, ms: performance.now() - started });
    } catch (error) {
      this.#emit({ type: "freeze-failed", partition: slot.record.id, error: error as Error });
    }
  }
}
