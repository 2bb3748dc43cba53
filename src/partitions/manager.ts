// The partition lifecycle: active → idle → frozen (→ deleted). Partitions are activated
// on demand — restored from their latest snapshot, or instantiated fresh when they have
// none — take one event at a time, and are frozen back to storage when idle or when too
// many are live. What a call may see of the host, and what its effects mean, belong to
// the CallHooks the manager is given: the lifecycle knows nothing about tasks.
import { randomBytes } from "node:crypto";
import type { Storage } from "unstorage";
import {
  type Activated,
  type ActivationReason,
  type CallOutcome,
  type CallResult,
  type ExecutorPool,
  type PreparedComponent,
  type TaskEvent,
} from "../../runtime/index.ts";
import type { ComponentRegistry } from "../components/registry.ts";
import type { Clock } from "../scheduler/clock.ts";
import type { TimerLoop } from "../scheduler/timer-loop.ts";
import { readAllRecords, type RecordMount } from "../store/records.ts";
import type { SnapshotStore } from "../store/snapshot-store.ts";
import { Persistence, type Slot } from "./persistence.ts";
import { RestorePoints } from "./restore-point.ts";
import { upgradeSlot, type Upgraded } from "./upgrade.ts";
import {
  type CallHooks,
  type PartitionEvent,
  type ActivationKind,
  type PartitionLimits,
  type PartitionRecord,
  type PartitionSpec,
  type PartitionState,
} from "./partition.ts";
import { DormantError, isDormantError } from "../../runtime/index.ts";

export interface PartitionManagerOptions {
  pool: ExecutorPool;
  /** Where partition records are kept. */
  records: RecordMount;
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
  /** When an on-idle partition that stays busy is saved anyway: after this many events or this long since its first unsaved one. */
  checkpoint: { events: number; busyMs: number };
  /** Every partition's limits unless its record overrides them. */
  partitionLimits: PartitionLimits;
  /** When no stored snapshot verifies: start the partition fresh, or refuse. */
  onUnusableSnapshot: "fresh" | "fail";
  /** Which stored partitions are this host's at open: every one (default), or none until adopted (a cluster host). */
  load?: "all" | "adopted";
  /** A new partition's id (a cluster host picks one in a shard it holds); default a random one. */
  newId?: () => string;
  onEvent?: (event: PartitionEvent) => void;
}

export const IDLE_TIMER = "idle";

/** A partition whose state a shutdown could not save, and why. */
export interface Unsaved {
  partition: string;
  error: string;
}

/** A partition on this host; whether it is live is its membership of the manager's live set, kept in order of use for `liveCount` and eviction. */
class PartitionSlot implements Slot {
  reprovisioned: boolean;
  busy = false;
  lastUsed = 0;
  unsaved = 0;
  unsavedSince = 0;
  queue: Promise<unknown> = Promise.resolve();

  constructor(
    public record: PartitionRecord,
    reprovisioned: boolean,
    private readonly liveSlots: Set<Slot>,
  ) {
    this.reprovisioned = reprovisioned;
  }

  get live(): boolean {
    return this.liveSlots.has(this);
  }

  set live(live: boolean) {
    if (live) this.liveSlots.add(this);
    else this.liveSlots.delete(this);
  }
}

export class PartitionManager {
  readonly #options: PartitionManagerOptions;
  readonly #slots = new Map<string, Slot>();
  /** The live slots, least recently used first: counting and evicting cost nothing per frozen partition. */
  readonly #live = new Set<Slot>();
  readonly #restorePoints: RestorePoints;
  readonly #persistence: Persistence;
  /** Set by close(): no partition is activated or given an event any more. */
  #closing = false;

  private constructor(options: PartitionManagerOptions) {
    this.#options = options;
    this.#restorePoints = new RestorePoints(options.snapshots, options.onUnusableSnapshot, (partition, error) =>
      this.#emit({ type: "snapshot-problem", partition, error }),
    );
    this.#persistence = new Persistence(
      options,
      (id) => this.limitsOf(id),
      (event) => this.#emit(event),
    );
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
    if ((options.load ?? "all") === "all") {
      for (const { value } of await readAllRecords<PartitionRecord>(options.records)) manager.#add(value, false);
    }
    return manager;
  }

  /** Take over stored partitions (a cluster host gaining their shard): their records are read, nothing is activated. */
  async adopt(ids: readonly string[]): Promise<PartitionRecord[]> {
    const adopted = (
      await readAllRecords<PartitionRecord>(
        this.#options.records,
        ids.filter((id) => !this.#slots.has(id)),
      )
    ).map(({ value }) => value);
    for (const record of adopted) this.#add(record, false);
    return adopted;
  }

  /**
   * Let partitions go to another host. With `save`, each live one is frozen first (those
   * whose state could not be saved are returned); without, its instance is dropped
   * unwritten, because another host already owns what is stored.
   */
  async release(ids: readonly string[], { save }: { save: boolean }): Promise<Unsaved[]> {
    const unsaved: Unsaved[] = [];
    await Promise.all(
      ids.map((id) => {
        const slot = this.#slots.get(id);
        if (!slot) return;
        return this.#exclusive(slot, async () => {
          if (save) {
            await this.#persistence.freeze(slot).catch((error: Error) => {
              this.#emit({ type: "freeze-failed", partition: id, error });
              unsaved.push({ partition: id, error: error.message });
            });
          }
          if (slot.live) await this.#options.pool.drop(id).catch(() => undefined);
          slot.live = false;
          this.#slots.delete(id);
          this.#options.snapshots.forget(id);
          await this.#options.timers.disarm(IDLE_TIMER, id);
        });
      }),
    );
    return unsaved;
  }

  /**
   * Create a partition running a deployed component. A `reprovisioned` one replaces a
   * deleted partition for tasks that outlived it: its first activation says so.
   */
  async create(spec: Partial<PartitionSpec> & Pick<PartitionSpec, "name" | "component">, how: { reprovisioned?: boolean } = {}): Promise<PartitionRecord> {
    await this.#options.components.get(spec.component);
    const record: PartitionRecord = {
      id: this.#options.newId?.() ?? newPartitionId(),
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
    return this.#live.size;
  }

  /** Make a partition live (concurrent activations of one partition coalesce). */
  activate(id: string): Promise<ActivationKind> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, async () => (this.#refuseWhenClosing(id), (await this.#ensureLive(slot)).kind));
  }

  /** Deliver one event: activates the partition, calls `handler.on-task`, commits its effects if it succeeds. */
  deliver(id: string, event: TaskEvent): Promise<CallOutcome> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, async () => {
      this.#refuseWhenClosing(id);
      // A frozen partition gets its event with the activation, in one request to its executor.
      const { first, committed } = await this.#ensureLive(slot, event);
      slot.busy = true;
      try {
        const { pool, hooks, clock } = this.#options;
        const called = first ? settled(first) : pool.call(id, event, hooks.stateFor(id), clock.now(), this.#callLimits(slot));
        const result = await called.catch((error: Error) => {
          slot.live = false; // the instance is gone; the next event rehydrates
          this.#emit({ type: "trap", partition: id, error });
          throw error;
        });
        if (result.outcome.ok && !committed) await this.#persistence.commit(slot, result.effects);
        await this.#persistence.checkpointIfDue(slot);
        return result.outcome;
      } finally {
        slot.busy = false;
        this.#used(slot);
      }
    });
  }

  /** Run a new component version on a partition, keeping its tasks (see upgrade.ts). */
  upgrade(id: string, component: string): Promise<Upgraded> {
    const slot = this.#slotOf(id);
    const context = {
      options: this.#options,
      persistence: this.#persistence,
      restorePoints: this.#restorePoints,
      callLimits: (s: Slot) => this.#callLimits(s),
      used: (s: Slot) => this.#used(s),
      emit: (event: PartitionEvent) => this.#emit(event),
    };
    return this.#exclusive(slot, () => (this.#refuseWhenClosing(id), upgradeSlot(context, slot, component)));
  }

  /** Snapshot a live partition to storage and release its instance. */
  freeze(id: string): Promise<void> {
    const slot = this.#slotOf(id);
    return this.#exclusive(slot, () => this.#persistence.freeze(slot));
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
    if (this.#live.delete(slot)) this.#live.add(slot);
    void this.#options.timers.arm(IDLE_TIMER, slot.record.id, slot.lastUsed + this.#options.idleTimeoutMs);
  }

  async delete(id: string): Promise<void> {
    const slot = this.#slotOf(id);
    await this.#exclusive(slot, async () => {
      this.#slots.delete(id);
      slot.live = false;
      await this.#options.timers.disarm(IDLE_TIMER, id);
      await this.#options.pool.drop(id);
      await this.#options.snapshots.delete(id);
      await this.#options.hooks.deleted(slot.record);
      await this.#options.records.removeItem(id);
    });
  }

  /** Freeze every live partition; one that cannot be frozen is reported, not fatal. */
  async freezeAll(): Promise<void> {
    await Promise.all([...this.#live].map((slot) => this.#freezeReporting(slot)));
  }

  /**
   * Shutdown: from now on no partition is activated or given an event (each waits only for
   * the call it is in), and every live one is frozen. Resolves with those whose state could
   * not be saved.
   */
  async close(): Promise<Unsaved[]> {
    this.#closing = true;
    const unsaved: Unsaved[] = [];
    // Every slot, not only the live ones: one may be half-way through its activation.
    await Promise.all(
      [...this.#slots.values()].map((slot) =>
        this.#exclusive(slot, () => this.#persistence.freeze(slot)).catch((error: Error) => {
          this.#emit({ type: "freeze-failed", partition: slot.record.id, error });
          unsaved.push({ partition: slot.record.id, error: error.message });
        }),
      ),
    );
    return unsaved;
  }

  /** Ids of the partitions live now (state not yet in storage unless per-activation). */
  liveIds(): string[] {
    return [...this.#live].map((slot) => slot.record.id);
  }

  #refuseWhenClosing(id: string): void {
    if (this.#closing) {
      throw new DormantError("partition-unavailable", `The host is shutting down: partition ${id} takes no more events now; retry once it is back.`);
    }
  }

  #freezeReporting(slot: Slot): Promise<void> {
    return this.#exclusive(slot, () => this.#persistence.freeze(slot)).catch((error: Error) =>
      this.#emit({ type: "freeze-failed", partition: slot.record.id, error }),
    );
  }

  /**
   * Make the partition live. An `event` goes along with the activation; its result is
   * `first`. Under per-activation durability one snapshot, taken after the event, stores
   * the activation and the event together, so the event's effects are committed here
   * (`committed`); if the event trapped, nothing is stored and its retry starts from the
   * last snapshot again.
   */
  async #ensureLive(slot: Slot, event?: TaskEvent): Promise<{ kind: ActivationKind; first?: Activated["first"]; committed?: boolean }> {
    if (slot.live) return { kind: "warm" };
    const id = slot.record.id;
    const started = performance.now();
    const component = await this.#options.components.get(slot.record.component);
    let snapshot = await this.#restorePoints.load(id);
    let result;
    try {
      try {
        result = await this.#activateInstance(slot, component, snapshot, event);
      } catch (error) {
        if (!isDormantError(error, "snapshot-format") || !snapshot) throw error;
        this.#restorePoints.unusable(id, error);
        snapshot = undefined;
        result = await this.#activateInstance(slot, component, snapshot, event);
      }
    } catch (error) {
      if (isDormantError(error) && error.details.phase === "call") {
        // Active, the partition then ran past its deadline on the event: a failed call, not a failed activation.
        this.#emit({ type: "trap", partition: id, error: error as Error });
      } else {
        // The guest's on-activate refused or trapped: reported once here, with its cause.
        this.#emit({ type: "activation-failed", partition: id, reason: this.#reasonFor(slot, snapshot), error: error as Error });
      }
      throw error;
    }
    slot.live = result.first?.ok !== false;
    slot.unsaved = 0;
    this.#used(slot);
    const perActivation = slot.record.durability === "per-activation";
    const handled = result.first?.ok ? result.first.result : undefined;
    const committed = perActivation && handled?.outcome.ok === true;
    try {
      if (committed) await this.#persistence.commit(slot, result.effects, handled!.effects);
      // Per-activation, a trapped event stores nothing: there is no instance left to snapshot.
      else if (!perActivation || result.first?.ok !== false) await this.#persistence.commit(slot, result.effects);
    } catch (error) {
      // The event trapped, then the activation's effects did not take: the trap is still reported, with its cause.
      if (result.first?.ok === false) this.#emit({ type: "trap", partition: id, error: result.first.error });
      // The carried event ran on activation effects that did not take: its retry starts from the snapshot again.
      if (result.first && slot.live) {
        slot.live = false;
        await this.#options.pool.drop(id).catch(() => undefined);
      }
      throw error;
    }
    const reason = this.#reasonFor(slot, snapshot);
    slot.reprovisioned = false;
    const kind: ActivationKind = reason === "restored" ? "rehydrated" : reason;
    this.#emit({ type: "activated", partition: id, kind, reason, ms: performance.now() - started, pooled: result.source === "pool" });
    if (this.liveCount() > this.#options.maxLive) void this.#evict(slot);
    return { kind, committed, ...(result.first ? { first: result.first } : {}) };
  }

  #activateInstance(slot: Slot, component: PreparedComponent, snapshot: Uint8Array | undefined, event: TaskEvent | undefined) {
    return this.#options.pool.activate(slot.record.id, {
      component,
      ...(snapshot ? { snapshot } : {}),
      ...(event ? { event } : {}),
      reason: this.#reasonFor(slot, snapshot),
      host: this.#options.hooks.stateFor(slot.record.id),
      now: this.#options.clock.now(),
      spareInstances: this.#options.spareInstances,
      limits: this.#callLimits(slot),
    });
  }

  async #evict(except: Slot): Promise<void> {
    const victims: Slot[] = [];
    let excess = this.liveCount() - this.#options.maxLive;
    for (const slot of this.#live) {
      if (excess <= 0) break;
      if (slot.busy || slot === except) continue;
      victims.push(slot);
      excess--;
    }
    await Promise.all(victims.map((slot) => this.#freezeReporting(slot)));
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

  #add(stored: PartitionRecord, reprovisioned: boolean): void {
    const record = { ...stored, registrations: stored.registrations ?? "host" };
    this.#options.hooks.added(record);
    this.#slots.set(record.id, new PartitionSlot(record, reprovisioned, this.#live));
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

export function newPartitionId(): string {
  return `p_${randomBytes(12).toString("base64url")}`;
}

function settled(first: NonNullable<Activated["first"]>): Promise<CallResult> {
  return first.ok ? Promise.resolve(first.result) : Promise.reject(first.error);
}
