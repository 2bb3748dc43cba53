// The partition lifecycle: active → idle → frozen (→ deleted). Partitions are activated
// on demand — rehydrated from their latest snapshot, or instantiated fresh when they
// have none — take one event at a time, and are frozen back to storage when idle or
// when too many are live.
import { randomBytes } from "node:crypto";
import type { ExecutorPool } from "../../runtime/executor/pool.ts";
import type { ActivationReason, CallOutcome, TaskEvent } from "../../runtime/executor/protocol.ts";
import { SnapshotFormatError } from "../../runtime/snapshot/image.ts";
import type { Store } from "../store/open.ts";
import { NoUsableSnapshotError, SnapshotStore } from "../store/snapshot-store.ts";
import type { TaskCallState, TaskEffects } from "../tasks/guest-binding.ts";
import { DEFAULT_TASK_LIMITS, type TaskLimits } from "../tasks/limits.ts";
import { TaskRegistry } from "../tasks/registry.ts";
import { ComponentRegistry } from "./components.ts";
import { DEFAULT_PARTITION_LIMITS, type ActivationKind, type Durability, type PartitionLimits, type PartitionRecord, type PartitionState, type RegistrationMode } from "./partition.ts";

export interface PartitionManagerOptions {
  pool: ExecutorPool;
  store: Store;
  /** The host's clock (Unix ms); injected so tests can drive time. */
  clock: () => number;
  /** Freeze a partition this long after its last event (default 10 s). */
  idleTimeoutMs?: number;
  /** Most partitions live at once; beyond it the least recently used idle ones freeze. */
  maxLive?: number;
  /** Pristine instances kept ready per component in each executor (default 2). */
  poolSize?: number;
  limits?: TaskLimits;
  /** Defaults for every partition's limits (CPU deadline, memory, snapshot size), over the built-in ones. */
  partitionLimits?: Partial<PartitionLimits>;
  /** When no stored snapshot verifies: start the partition fresh (default) or refuse. */
  onUnusableSnapshot?: "fresh" | "fail";
  onEvent?: (event: PartitionEvent) => void;
}

export type PartitionEvent =
  | { type: "activated"; partition: string; kind: ActivationKind; reason: ActivationReason; ms: number; pooled: boolean }
  | { type: "frozen"; partition: string; bytes: number; ms: number }
  | { type: "snapshot-problem"; partition: string; error: Error }
  | { type: "freeze-failed"; partition: string; error: Error }
  | { type: "trap"; partition: string; error: Error };

export class UnknownPartitionError extends Error {
  override name = "UnknownPartitionError";
}

export class PartitionUnavailableError extends Error {
  override name = "PartitionUnavailableError";
}

export class SnapshotTooLargeError extends Error {
  override name = "SnapshotTooLargeError";
}

export interface CreatePartition {
  name: string;
  component: string;
  durability?: Durability;
  registrations?: RegistrationMode;
  limits?: Partial<PartitionLimits>;
}

interface Slot {
  record: PartitionRecord;
  live: boolean;
  /** Provisioned for a task that outlived its partition: the first activation says so. */
  reprovisioned: boolean;
  busy: boolean;
  lastUsed: number;
  queue: Promise<unknown>;
}

export class PartitionManager {
  readonly components: ComponentRegistry;
  readonly tasks: TaskRegistry;
  readonly snapshots: SnapshotStore;
  readonly #options: Required<Omit<PartitionManagerOptions, "onEvent" | "partitionLimits">> & Pick<PartitionManagerOptions, "onEvent"> & { partitionLimits: PartitionLimits };
  readonly #slots = new Map<string, Slot>();

  private constructor(options: PartitionManagerOptions) {
    this.#options = {
      idleTimeoutMs: 10_000,
      maxLive: 1000,
      poolSize: 2,
      limits: DEFAULT_TASK_LIMITS,
      onUnusableSnapshot: "fresh",
      ...options,
      partitionLimits: { ...DEFAULT_PARTITION_LIMITS, ...options.partitionLimits },
    };
    this.components = new ComponentRegistry(options.store.components, options.pool);
    this.tasks = new TaskRegistry(options.store.registrations);
    this.snapshots = new SnapshotStore(options.store.snapshots);
    options.pool.setExecutorLostHandler((partitions) => {
      for (const id of partitions) {
        const slot = this.#slots.get(id);
        if (slot) slot.live = false;
      }
    });
  }

  /** Open the manager on a store, loading the partitions and tasks recorded in it. */
  static async open(options: PartitionManagerOptions): Promise<PartitionManager> {
    const manager = new PartitionManager(options);
    await manager.tasks.load();
    for (const key of await options.store.partitions.getKeys()) {
      const record = await options.store.partitions.getItem<PartitionRecord>(key);
      if (record) manager.#add({ ...record, registrations: record.registrations ?? "host" });
    }
    return manager;
  }

  async create(spec: CreatePartition): Promise<PartitionRecord> {
    await this.components.get(spec.component);
    const record: PartitionRecord = {
      id: `p_${randomBytes(12).toString("base64url")}`,
      name: spec.name,
      component: spec.component,
      durability: spec.durability ?? "on-idle",
      registrations: spec.registrations ?? "host",
      ...(spec.limits ? { limits: spec.limits } : {}),
      createdAt: this.#options.clock(),
    };
    await this.#options.store.partitions.setItem(record.id, record);
    this.#add(record);
    return record;
  }

  /**
   * Provision a fresh partition for tasks that outlived partition `from`: they move to it,
   * and its first activation is `on-activate(reprovisioned)`.
   */
  async reprovision(from: string, spec: CreatePartition): Promise<PartitionRecord> {
    const record = await this.create(spec);
    this.#slots.get(record.id)!.reprovisioned = true;
    await this.tasks.move(from, record.id);
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
        const result = await this.#options.pool.call(id, event, this.#hostState(id), this.#options.clock(), this.#callLimits(slot)).catch((error: Error) => {
          slot.live = false; // the instance is gone; the next event rehydrates
          this.#emit({ type: "trap", partition: id, error });
          throw error;
        });
        if (result.outcome.ok) await this.#commit(slot, result.effects as TaskEffects);
        return result.outcome;
      } finally {
        slot.busy = false;
        slot.lastUsed = this.#options.clock();
      }
    });
  }

  /** Snapshot a live partition to storage and release its instance. */
  freeze(id: string): Promise<void> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, () => this.#freeze(slot));
  }

  /** Freeze the partitions idle for longer than the idle timeout. */
  async tick(now: number): Promise<void> {
    const due = [...this.#slots.values()].filter((slot) => slot.live && !slot.busy && now - slot.lastUsed >= this.#options.idleTimeoutMs);
    await Promise.all(due.map((slot) => this.#freezeReporting(slot)));
  }

  async delete(id: string): Promise<void> {
    const slot = this.#slotOf(id);
    await this.#exclusive(slot, async () => {
      this.#slots.delete(id);
      await this.#options.pool.drop(id);
      await this.snapshots.delete(id);
      const { name, component, durability, registrations } = slot.record;
      await this.tasks.removePartition(id, { name, component, durability, registrations });
      await this.#options.store.partitions.removeItem(id);
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
    const component = await this.components.get(slot.record.component);
    let snapshot = await this.#loadSnapshot(id);
    let result;
    try {
      result = await this.#activateInstance(slot, component, snapshot);
    } catch (error) {
      if (!(error instanceof SnapshotFormatError) || !snapshot) throw error;
      this.#snapshotUnusable(id, error);
      snapshot = undefined;
      result = await this.#activateInstance(slot, component, snapshot);
    }
    slot.live = true;
    slot.lastUsed = this.#options.clock();
    await this.#commit(slot, result.effects as TaskEffects);
    const reason = this.#reasonFor(slot, snapshot);
    slot.reprovisioned = false;
    const kind: ActivationKind = reason === "restored" ? "rehydrated" : reason;
    this.#emit({ type: "activated", partition: id, kind, reason, ms: performance.now() - started, pooled: result.source === "pool" });
    if (this.liveCount() > this.#options.maxLive) void this.#evict(slot);
    return kind;
  }

  #activateInstance(slot: Slot, component: Awaited<ReturnType<ComponentRegistry["get"]>>, snapshot: Uint8Array | undefined) {
    return this.#options.pool.activate(slot.record.id, {
      component,
      ...(snapshot ? { snapshot } : {}),
      reason: this.#reasonFor(slot, snapshot),
      host: this.#hostState(slot.record.id),
      now: this.#options.clock(),
      poolSize: this.#options.poolSize,
      limits: this.#callLimits(slot),
    });
  }

  async #loadSnapshot(id: string): Promise<Uint8Array | undefined> {
    try {
      const loaded = await this.snapshots.load(id);
      for (const problem of loaded?.skipped ?? []) this.#emit({ type: "snapshot-problem", partition: id, error: problem });
      return loaded?.data;
    } catch (error) {
      if (!(error instanceof NoUsableSnapshotError)) throw error;
      this.#snapshotUnusable(id, error);
      return undefined;
    }
  }

  #snapshotUnusable(id: string, error: Error): void {
    this.#emit({ type: "snapshot-problem", partition: id, error });
    if (this.#options.onUnusableSnapshot === "fail") {
      throw new PartitionUnavailableError(`Partition ${id} has no usable snapshot (${error.message}) and the host is set to refuse a fresh start.`, { cause: error });
    }
  }

  /** Commit a successful call: its task changes, and for per-activation durability its snapshot first. */
  async #commit(slot: Slot, effects: TaskEffects): Promise<void> {
    if (slot.record.durability === "per-activation") {
      const { bytes } = await this.#options.pool.snapshot(slot.record.id, false);
      await this.snapshots.put(slot.record.id, bytes, this.#options.clock());
    }
    await this.tasks.apply(slot.record.id, effects);
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
    const { bytes } = await this.#options.pool.snapshot(id, false);
    const cap = this.limitsOf(id).snapshotBytes;
    if (bytes.length > cap) {
      throw new SnapshotTooLargeError(`Partition ${id} cannot be frozen: its snapshot is ${bytes.length} bytes, over its ${cap}-byte cap. It stays live; raise its snapshot limit or have it keep less state.`);
    }
    const ref = await this.snapshots.put(id, bytes, this.#options.clock());
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

  #hostState(id: string): TaskCallState {
    return { tasks: this.tasks.tasksOf(id), limits: this.#options.limits };
  }

  #exclusive<T>(slot: Slot, work: () => Promise<T>): Promise<T> {
    const run = slot.queue.then(work, work);
    slot.queue = run.catch(() => undefined);
    return run;
  }

  #add(record: PartitionRecord): void {
    this.tasks.setMode(record.id, record.registrations);
    this.#slots.set(record.id, { record, live: false, reprovisioned: false, busy: false, lastUsed: 0, queue: Promise.resolve() });
  }

  #slotOf(id: string): Slot {
    const slot = this.#slots.get(id);
    if (!slot) throw new UnknownPartitionError(`No partition ${id} on this host; list partitions to find its id.`);
    return slot;
  }

  #emit(event: PartitionEvent): void {
    this.#options.onEvent?.(event);
  }
}
