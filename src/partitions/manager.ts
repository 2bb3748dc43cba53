// The partition lifecycle: active → idle → frozen (→ deleted). Partitions are activated
// on demand — restored from their latest snapshot, or instantiated fresh when they have
// none — take one event at a time, and are frozen back to storage when idle or when too
// many are live. What a call may see of the host, and what its effects mean, belong to
// the CallHooks the manager is given: the lifecycle knows nothing about tasks.
import { randomBytes } from "node:crypto";
import type { Storage } from "unstorage";
import { type ActivationReason, type CallOutcome, type ExecutorPool, type PreparedComponent, type TaskEvent } from "../../runtime/index.ts";
import type { ComponentRegistry } from "../components/registry.ts";
import type { Clock } from "../scheduler/clock.ts";
import type { TimerLoop } from "../scheduler/timer-loop.ts";
import type { SnapshotStore } from "../store/snapshot-store.ts";
import { type ActivationKind, type PartitionLimits, type PartitionRecord, type PartitionSpec, type PartitionState } from "./partition.ts";
import { DormantError, isDormantError } from "../../runtime/index.ts";

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

export interface PartitionManagerOptions {
  pool: ExecutorPool;
  /** Where partition records are kept. */
  records: Storage;
  components: Pick<ComponentRegistry, "get">;
  snapshots: SnapshotStore;
  clock: Clock;
  hooks: CallHooks;
  /** Idle checks are timers in the host's one loop. */
  timers: Pick<TimerLoop, "arm" | "disarm" | "on">;
  /** Freeze a partition this long after its last event. */
  idleTimeoutMs: number;
  /** Most partitions live at once; beyond it the least recently used idle ones freeze. */
  maxLive: number;
  /** Pristine instances kept ready per component in each executor. */
  spareInstances: number;
  /** Every partition's limits unless its record overrides them. */
  partitionLimits: PartitionLimits;
  /** When no stored snapshot verifies: start the partition fresh, or refuse. */
  onUnusableSnapshot: "fresh" | "fail";
  onEvent?: (event: PartitionEvent) => void;
}

export type PartitionEvent =
  | { type: "activated"; partition: string; kind: ActivationKind; reason: ActivationReason; ms: number; pooled: boolean }
  | { type: "frozen"; partition: string; bytes: number; ms: number }
  | { type: "snapshot-problem"; partition: string; error: Error }
  | { type: "freeze-failed"; partition: string; error: Error }
  | { type: "trap"; partition: string; error: Error };

interface Slot {
  record: PartitionRecord;
  live: boolean;
  /** Provisioned for a task that outlived its partition: the first activation says so. */
  reprovisioned: boolean;
  busy: boolean;
  lastUsed: number;
  queue: Promise<unknown>;
}

export const IDLE_TIMER = "idle";

export class PartitionManager {
  readonly #options: PartitionManagerOptions;
  readonly #slots = new Map<string, Slot>();

  private constructor(options: PartitionManagerOptions) {
    this.#options = options;
    options.timers.on(IDLE_TIMER, (id) => this.#idleDue(id));
    options.pool.setExecutorLostHandler((partitions) => {
      for (const id of partitions) {
        const slot = this.#slots.get(id);
        if (slot) slot.live = false;
      }
    });
  }

  /** Open the manager on a store, loading the partitions recorded in it. */
  static async open(options: PartitionManagerOptions): Promise<PartitionManager> {
    const manager = new PartitionManager(options);
    for (const key of await options.records.getKeys()) {
      const record = await options.records.getItem<PartitionRecord>(key);
      if (record) manager.#add({ ...record, registrations: record.registrations ?? "host" }, false);
    }
    return manager;
  }

  /**
   * Create a partition running a deployed component. A `reprovisioned` one replaces a
   * deleted partition for tasks that outlived it: its first activation says so.
   */
  async create(spec: Partial<PartitionSpec> & Pick<PartitionSpec, "name" | "component">, how: { reprovisioned?: boolean } = {}): Promise<PartitionRecord> {
    await this.#options.components.get(spec.component);
    const record: PartitionRecord = {
      id: `p_${randomBytes(12).toString("base64url")}`,
      name: spec.name,
      component: spec.component,
      durability: spec.durability ?? "on-idle",
      registrations: spec.registrations ?? "host",
      ...(spec.limits ? { limits: spec.limits } : {}),
      createdAt: this.#options.clock.now(),
    };
    await this.#options.records.setItem(record.id, record);
    this.#add(record, how.reprovisioned ?? false);
    return record;
  }

  has(id: string): boolean {
    return this.#slots.has(id);
  }

  get(id: string): PartitionRecord {
    return this.#slotOf(id).record;
  }

  list(): PartitionRecord[] {
    return [...this.#slots.values()].map((slot) => slot.record);
  }

  stateOf(id: string): PartitionState {
    const slot = this.#slots.get(id);
    if (!slot) return "deleted";
    return slot.busy ? "active" : slot.live ? "idle" : "frozen";
  }

  liveCount(): number {
    let live = 0;
    for (const slot of this.#slots.values()) if (slot.live) live++;
    return live;
  }

  /** Make a partition live (concurrent activations of one partition coalesce). */
  activate(id: string): Promise<ActivationKind> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, () => this.#ensureLive(slot));
  }

  /** Deliver one event: activates the partition, calls `handler.on-task`, commits its effects if it succeeds. */
  deliver(id: string, event: TaskEvent): Promise<CallOutcome> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, async () => {
      await this.#ensureLive(slot);
      slot.busy = true;
      try {
        const { pool, hooks, clock } = this.#options;
        const result = await pool.call(id, event, hooks.stateFor(id), clock.now(), this.#callLimits(slot)).catch((error: Error) => {
          slot.live = false; // the instance is gone; the next event rehydrates
          this.#emit({ type: "trap", partition: id, error });
          throw error;
        });
        if (result.outcome.ok) await this.#commit(slot, result.effects);
        return result.outcome;
      } finally {
        slot.busy = false;
        this.#used(slot);
      }
    });
  }

  /** Snapshot a live partition to storage and release its instance. */
  freeze(id: string): Promise<void> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, () => this.#freeze(slot));
  }

  /** An idle check came due: freeze the partition if it stayed idle, or look again later. */
  async #idleDue(id: string): Promise<void> {
    const slot = this.#slots.get(id);
    if (!slot?.live) return;
    const quietSince = this.#options.clock.now() - slot.lastUsed;
    if (!slot.busy && quietSince >= this.#options.idleTimeoutMs) await this.#freezeReporting(slot);
    else await this.#options.timers.arm(IDLE_TIMER, id, slot.lastUsed + this.#options.idleTimeoutMs);
  }

  /** The partition just did something: it freezes once it has been idle for the timeout. */
  #used(slot: Slot): void {
    slot.lastUsed = this.#options.clock.now();
    void this.#options.timers.arm(IDLE_TIMER, slot.record.id, slot.lastUsed + this.#options.idleTimeoutMs);
  }

  async delete(id: string): Promise<void> {
    const slot = this.#slotOf(id);
    await this.#exclusive(slot, async () => {
      this.#slots.delete(id);
      await this.#options.timers.disarm(IDLE_TIMER, id);
      await this.#options.pool.drop(id);
      await this.#options.snapshots.delete(id);
      await this.#options.hooks.deleted(slot.record);
      await this.#options.records.removeItem(id);
    });
  }

  /** Freeze every live partition (at shutdown); one that cannot be frozen is reported, not fatal. */
  async freezeAll(): Promise<void> {
    await Promise.all([...this.#slots.values()].filter((slot) => slot.live).map((slot) => this.#freezeReporting(slot)));
  }

  #freezeReporting(slot: Slot): Promise<void> {
    return this.#exclusive(slot, () => this.#freeze(slot)).catch((error: Error) => this.#emit({ type: "freeze-failed", partition: slot.record.id, error }));
  }

  async #ensureLive(slot: Slot): Promise<ActivationKind> {
    if (slot.live) return "warm";
    const id = slot.record.id;
    const started = performance.now();
    const component = await this.#options.components.get(slot.record.component);
    let snapshot = await this.#loadSnapshot(id);
    let result;
    try {
      result = await this.#activateInstance(slot, component, snapshot);
    } catch (error) {
      if (!isDormantError(error, "snapshot-format") || !snapshot) throw error;
      this.#snapshotUnusable(id, error);
      snapshot = undefined;
      result = await this.#activateInstance(slot, component, snapshot);
    }
    slot.live = true;
    this.#used(slot);
    await this.#commit(slot, result.effects);
    const reason = this.#reasonFor(slot, snapshot);
    slot.reprovisioned = false;
    const kind: ActivationKind = reason === "restored" ? "rehydrated" : reason;
    this.#emit({ type: "activated", partition: id, kind, reason, ms: performance.now() - started, pooled: result.source === "pool" });
    if (this.liveCount() > this.#options.maxLive) void this.#evict(slot);
    return kind;
  }

  #activateInstance(slot: Slot, component: PreparedComponent, snapshot: Uint8Array | undefined) {
    return this.#options.pool.activate(slot.record.id, {
      component,
      ...(snapshot ? { snapshot } : {}),
      reason: this.#reasonFor(slot, snapshot),
      host: this.#options.hooks.stateFor(slot.record.id),
      now: this.#options.clock.now(),
      spareInstances: this.#options.spareInstances,
      limits: this.#callLimits(slot),
    });
  }

  async #loadSnapshot(id: string): Promise<Uint8Array | undefined> {
    try {
      const loaded = await this.#options.snapshots.load(id);
      for (const problem of loaded?.skipped ?? []) this.#emit({ type: "snapshot-problem", partition: id, error: problem });
      return loaded?.data;
    } catch (error) {
      if (!isDormantError(error, "no-usable-snapshot")) throw error;
      this.#snapshotUnusable(id, error);
      return undefined;
    }
  }

  #snapshotUnusable(id: string, error: Error): void {
    this.#emit({ type: "snapshot-problem", partition: id, error });
    if (this.#options.onUnusableSnapshot === "fail") {
      throw new DormantError(
        "partition-unavailable",
        `Partition ${id} has no usable snapshot (${error.message}) and the host is set to refuse a fresh start.`,
        { cause: error },
      );
    }
  }

  /** Commit a successful call: its effects, and for per-activation durability its snapshot first. */
  async #commit(slot: Slot, effects: unknown): Promise<void> {
    if (slot.record.durability === "per-activation") {
      const { bytes, image } = await this.#options.pool.snapshot(slot.record.id);
      await this.#options.snapshots.put(slot.record.id, bytes, this.#options.clock.now(), image);
    }
    await this.#options.hooks.commit(slot.record.id, effects);
  }

  async #freeze(slot: Slot): Promise<void> {
    if (!slot.live) return;
    const started = performance.now();
    const id = slot.record.id;
    if (slot.record.durability === "per-activation") {
      // The stored snapshot already holds the state after the last event.
      await this.#options.pool.drop(id);
      slot.live = false;
      this.#emit({ type: "frozen", partition: id, bytes: 0, ms: performance.now() - started });
      return;
    }
    // The instance is released only once its snapshot is stored: a failed write loses nothing.
    const { bytes, image } = await this.#options.pool.snapshot(id);
    const cap = this.limitsOf(id).snapshotBytes;
    if (bytes.length > cap) {
      throw new DormantError(
        "snapshot-too-large",
        `Partition ${id} cannot be frozen: its snapshot is ${bytes.length} bytes, over its ${cap}-byte cap. ` +
          `It stays live; raise its snapshot limit or have it keep less state.`,
      );
    }
    const ref = await this.#options.snapshots.put(id, bytes, this.#options.clock.now(), image);
    await this.#options.pool.drop(id);
    slot.live = false;
    this.#emit({ type: "frozen", partition: id, bytes: ref.bytes, ms: performance.now() - started });
  }

  async #evict(except: Slot): Promise<void> {
    const idle = [...this.#slots.values()].filter((slot) => slot.live && !slot.busy && slot !== except).sort((a, b) => a.lastUsed - b.lastUsed);
    const excess = this.liveCount() - this.#options.maxLive;
    await Promise.all(idle.slice(0, Math.max(0, excess)).map((slot) => this.#freezeReporting(slot)));
  }

  limitsOf(id: string): PartitionLimits {
    return { ...this.#options.partitionLimits, ...this.#slotOf(id).record.limits };
  }

  #callLimits(slot: Slot) {
    const limits = this.limitsOf(slot.record.id);
    return { deadlineMs: limits.cpuDeadlineMs, memoryBytes: limits.memoryBytes };
  }

  #reasonFor(slot: Slot, snapshot: Uint8Array | undefined): ActivationReason {
    if (snapshot) return "restored";
    return slot.reprovisioned ? "reprovisioned" : "fresh";
  }

  #exclusive<T>(slot: Slot, work: () => Promise<T>): Promise<T> {
    const run = slot.queue.then(work, work);
    slot.queue = run.catch(() => undefined);
    return run;
  }

  #add(record: PartitionRecord, reprovisioned: boolean): void {
    this.#options.hooks.added(record);
    this.#slots.set(record.id, { record, live: false, reprovisioned, busy: false, lastUsed: 0, queue: Promise.resolve() });
  }

  #slotOf(id: string): Slot {
    const slot = this.#slots.get(id);
    if (!slot) throw new DormantError("unknown-partition", `No partition ${id} on this host; list partitions to find its id.`);
    return slot;
  }

  #emit(event: PartitionEvent): void {
    this.#options.onEvent?.(event);
  }
}
