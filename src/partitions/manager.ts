// The partition lifecycle: active → idle → frozen (→ deleted). Partitions are activated
// on demand — restored from their latest snapshot, or instantiated fresh when they have
// none — take one event at a time, and are frozen back to storage when idle or when too
// many are live. What a call may see of the host, and what its effects mean, belong to
// the CallHooks the manager is given: the lifecycle knows nothing about tasks.
import { randomBytes } from "node:crypto";
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
  /** Whether an event for the partition waits elsewhere in the host (for a slot in the activation budget): it is not idle then. */
  expecting?: (partition: string) => boolean;
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

/** Events of one partition sent to its executor in one request, at most. */
const EVENTS_PER_REQUEST = 16;

/** An event waiting for its delivery step, and who waits for its outcome. */
interface Waiting {
  event: TaskEvent;
  resolve: (outcome: CallOutcome) => void;
  reject: (error: Error) => void;
}

/** A partition on this host; whether it is live is its membership of the manager's live set, kept in order of use for `liveCount` and eviction. */
class PartitionSlot implements Slot {
  reprovisioned: boolean;
  busy = false;
  lastUsed = 0;
  unsaved = 0;
  unsavedSince = 0;
  queue: Promise<unknown> = Promise.resolve();
  exclusiveAsked = 0;
  heldUntil = 0;
  idleArmed = false;

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
  /** Events queued for a partition's next delivery step, which takes them all (see `deliver`). */
  readonly #waiting = new Map<Slot, Waiting[]>();
  readonly #restorePoints: RestorePoints;
  readonly #persistence: Persistence;
  /** Set by close(): no partition is activated or given an event any more. */
  #closing = false;
  /** Live slots being frozen to make room under maxLive. */
  readonly #evicting = new Set<Slot>();
  /** Prewarms under way, counted against maxLive before they are live. */
  #warming = 0;

  private constructor(options: PartitionManagerOptions) {
    this.#options = options;
    this.#restorePoints = new RestorePoints(options.snapshots, options.onUnusableSnapshot, (partition, error) =>
      this.#emit({ type: "snapshot-problem", partition, error }),
    );
    this.#persistence = new Persistence(
      options,
      (id) => this.limitsOf(id),
      (event) => this.#emit(event),
      (slot, snapshot) => this.#resume(slot, snapshot),
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

  /** Keep a partition live until an event due at `until`, whatever its idle timeout (an idle check asked for already included). */
  hold(id: string, until: number): void {
    const slot = this.#slotOf(id);
    slot.heldUntil = Math.max(slot.heldUntil, until);
  }

  /**
   * Wake a partition ahead of an event (hold it first, see `hold`), so the event finds it
   * live. True when it was woken. Only into free room: a prewarm never freezes another
   * partition.
   */
  async prewarm(id: string): Promise<boolean> {
    const frozen = !this.#slotOf(id).live;
    if (frozen && this.liveCount() + this.#warming >= this.#options.maxLive) return false;
    if (frozen) this.#warming++;
    try {
      // In its turn, even when live: a freeze under way may have begun before the hold.
      return (await this.activate(id)) !== "warm";
    } finally {
      if (frozen) this.#warming--;
    }
  }

  /**
   * Deliver one event: activates the partition, calls `handler.on-task`, commits its
   * effects if it succeeds. Events that come while the partition is busy wait, and then go
   * to it together, in order: one request to its executor and one answer for all of them
   * (a thread wake-up per event would cost more than a small guest's event).
   */
  deliver(id: string, event: TaskEvent): Promise<CallOutcome> {
    const slot = this.#slotOf(id);
    const delivered = new Promise<CallOutcome>((resolve, reject) => {
      const waiting = { event, resolve, reject };
      const open = this.#waiting.get(slot);
      if (open) return void open.push(waiting);
      const group = [waiting];
      this.#waiting.set(slot, group);
      const exclusiveAsked = slot.exclusiveAsked;
      void this.#queue(slot, () => {
        if (this.#waiting.get(slot) === group) this.#waiting.delete(slot);
        return this.#deliverAll(slot, group, exclusiveAsked);
      });
    });
    // A caller may look at a failure later than the turn it happens in (as with every step a partition queues).
    delivered.catch(() => undefined);
    return delivered;
  }

  /**
   * Settles every waiting event's outcome; never throws. Events that arrive meanwhile join
   * the step (unless something else was asked of the partition since), and the callers of
   * one request hear their outcomes once the next request is on its way: the executor is
   * not left idle while the main thread answers them (a flooded partition's throughput is
   * then the slower of the two threads, not their sum).
   */
  async #deliverAll(slot: Slot, group: Waiting[], exclusiveAsked: number): Promise<void> {
    if (group.length === 0) return; // taken by the step before it
    try {
      this.#refuseWhenClosing(slot.record.id);
    } catch (error) {
      for (const waiting of group) waiting.reject(error as Error);
      return;
    }
    let answers: (() => void)[] = [];
    const answerLater = ({ event, resolve, reject }: Waiting): Waiting => ({
      event,
      resolve: (outcome) => answers.push(() => resolve(outcome)),
      reject: (error) => answers.push(() => reject(error)),
    });
    const answerNow = () => {
      const due = answers;
      answers = [];
      for (const answer of due) answer();
    };
    let rest: Waiting[] = group.map(answerLater);
    slot.busy = true;
    try {
      for (;;) {
        if (rest.length === 0) rest = this.#arrivedSince(slot, exclusiveAsked).map(answerLater);
        if (rest.length === 0) break;
        const step = this.#deliverSome(slot, rest);
        // A live partition's request went out synchronously: answer the last one's callers meanwhile.
        answerNow();
        rest = await step;
      }
    } finally {
      slot.busy = false;
      this.#used(slot);
      answerNow();
    }
  }

  /**
   * Events queued for the partition's next step since this one began, taken into it (their
   * own step then finds none); none once other work was asked of the partition since this
   * step's events were (`exclusiveAsked` then), as the events that came after it wait for it.
   */
  #arrivedSince(slot: Slot, exclusiveAsked: number): Waiting[] {
    if (slot.exclusiveAsked !== exclusiveAsked) return [];
    const open = this.#waiting.get(slot);
    if (!open) return [];
    this.#waiting.delete(slot);
    return open.splice(0);
  }

  /**
   * Deliver events in order as far as one activation and one request take them; returns
   * those still to go (after an event that failed or trapped, the rest go again, on the
   * host's view after it).
   */
  async #deliverSome(slot: Slot, group: Waiting[]): Promise<Waiting[]> {
    const id = slot.record.id;
    const [head, ...tail] = group as [Waiting, ...Waiting[]];
    let rest = group;
    try {
      // A frozen partition gets its first event with the activation, in one request to its
      // executor. A live one's request goes out before this returns (see `#deliverAll`).
      const { first, committed } = slot.live ? {} : await this.#ensureLive(slot, head.event);
      if (first) {
        rest = tail;
        if (!first.ok) throw this.#trapped(slot, first.error);
        await this.#settle(slot, [head], [first.result], committed);
        if (!slot.live || rest.length === 0) return rest;
      }
    } catch (error) {
      head.reject(error as Error);
      return tail;
    }
    // At most a batch at a time: a partition flooded with events holds its executor, and the
    // partitions that share it, for one batch, not for the whole flood.
    const later = rest.slice(EVENTS_PER_REQUEST);
    rest = rest.slice(0, EVENTS_PER_REQUEST);
    const { pool, hooks, clock } = this.#options;
    let results;
    try {
      results = await pool.calls(
        id,
        rest.map((waiting) => waiting.event),
        hooks.stateFor(id),
        clock.now(),
        this.#callLimits(slot),
      );
    } catch (error) {
      // A deadline names the event it stopped; the others go again (their instance, and what they did to it, is gone).
      this.#trapped(slot, error as Error);
      const index = isDormantError(error, "guest-deadline") ? error.details.index : undefined;
      if (typeof index !== "number") {
        for (const waiting of rest) waiting.reject(error as Error);
        return later;
      }
      rest[index]!.reject(error as Error);
      return [...rest.filter((_, i) => i !== index), ...later];
    }
    const ran = results.length;
    const last = results[ran - 1]!;
    const handled = last.ok ? results : results.slice(0, -1);
    await this.#settle(
      slot,
      rest.slice(0, handled.length),
      handled.map((called) => (called as { result: CallResult }).result),
    );
    if (!last.ok) rest[ran - 1]!.reject(this.#trapped(slot, last.error));
    return [...rest.slice(ran), ...later];
  }

  /** Commit what handled events did, in order, and answer them. */
  async #settle(slot: Slot, waiting: Waiting[], results: CallResult[], committed = false): Promise<void> {
    const effects = results.filter((result) => result.outcome.ok).map((result) => result.effects);
    try {
      if (!committed && effects.length > 0) await this.#persistence.commit(slot, ...effects);
    } catch (error) {
      for (const [i, each] of waiting.entries()) {
        if (results[i]!.outcome.ok) each.reject(error as Error);
        else each.resolve(results[i]!.outcome);
      }
      return;
    }
    for (const [i, each] of waiting.entries()) {
      await this.#persistence.checkpointIfDue(slot);
      each.resolve(results[i]!.outcome);
    }
  }

  /** The instance is gone after a trap: the next event rehydrates. */
  #trapped(slot: Slot, error: Error): Error {
    slot.live = false;
    this.#emit({ type: "trap", partition: slot.record.id, error });
    return error;
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

  /** An idle check came due: freeze the partition if it stayed idle, or look again when it would be. */
  async #idleDue(id: string): Promise<void> {
    const slot = this.#slots.get(id);
    if (!slot) return;
    slot.idleArmed = false;
    // Looked at again in its turn: a prewarm, or an event asked for since, keeps it live.
    if (this.#stillIdle(slot)) await this.#freezeReporting(slot, () => this.#stillIdle(slot));
  }

  /** Whether the partition has been idle for the timeout; if not yet, its next check is armed (a step under way or waiting arms it when it ends). */
  #stillIdle(slot: Slot): boolean {
    if (!slot.live || slot.busy || this.#waiting.has(slot)) return false;
    const now = this.#options.clock.now();
    // Held for an event, it counts as used at the event's due time; with an event on its way, now.
    const lastUsed = this.#options.expecting?.(slot.record.id) ? now : Math.max(slot.lastUsed, slot.heldUntil);
    const idleAt = lastUsed + this.#options.idleTimeoutMs;
    if (now >= idleAt) return true;
    if (!slot.idleArmed) this.#armIdle(slot, idleAt);
    return false;
  }

  /** The partition just did something: it freezes once it has been idle for the timeout. */
  #used(slot: Slot): void {
    slot.lastUsed = this.#options.clock.now();
    if (this.#live.delete(slot)) this.#live.add(slot);
    // One check armed at a time: one that comes early looks again then (a timer per event would cost more).
    if (!slot.idleArmed) this.#armIdle(slot, slot.lastUsed + this.#options.idleTimeoutMs);
  }

  #armIdle(slot: Slot, at: number): void {
    slot.idleArmed = true;
    void this.#options.timers.arm(IDLE_TIMER, slot.record.id, at);
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

  /** Freeze the partition in its turn (if `still` says so then); a failure is reported, not thrown. */
  #freezeReporting(slot: Slot, still = () => true): Promise<void> {
    return this.#exclusive(slot, async () => (still() ? this.#persistence.freeze(slot) : undefined)).catch((error: Error) =>
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
    this.#emit({ type: "activated", partition: id, kind, reason, ms: performance.now() - started, pooled: result.source !== "instantiated" });
    if (this.liveCount() > this.#options.maxLive) void this.#evict(slot);
    return { kind, committed, ...(result.first ? { first: result.first } : {}) };
  }

  /** Live again from a snapshot just taken, as if it had never stopped: no `on-activate` (see `Persistence.freeze`). */
  async #resume(slot: Slot, snapshot: Uint8Array): Promise<void> {
    const component = await this.#options.components.get(slot.record.component);
    await this.#activateInstance(slot, component, snapshot, undefined, true);
  }

  #activateInstance(slot: Slot, component: PreparedComponent, snapshot: Uint8Array | undefined, event: TaskEvent | undefined, resume = false) {
    return this.#options.pool.activate(slot.record.id, {
      component,
      ...(snapshot ? { snapshot } : {}),
      ...(event ? { event } : {}),
      ...(resume ? { resume } : {}),
      reason: this.#reasonFor(slot, snapshot),
      host: this.#options.hooks.stateFor(slot.record.id),
      now: this.#options.clock.now(),
      spareInstances: this.#options.spareInstances,
      limits: this.#callLimits(slot),
    });
  }

  async #evict(except: Slot): Promise<void> {
    const victims: Slot[] = [];
    // Those being frozen already are as good as gone: picked again, each wake meanwhile would queue another freeze of the same ones.
    let excess = this.liveCount() - this.#evicting.size - this.#options.maxLive;
    const now = this.#options.clock.now();
    for (const slot of this.#live) {
      if (excess <= 0) break;
      // A prewarmed partition waits for its event: it was woken only into free room.
      if (slot.busy || slot === except || slot.heldUntil > now || this.#evicting.has(slot)) continue;
      victims.push(slot);
      this.#evicting.add(slot);
      excess--;
    }
    await Promise.all(victims.map((slot) => this.#freezeReporting(slot).finally(() => this.#evicting.delete(slot))));
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

  /** One thing at a time per partition; events asked for after it wait for the next step of their own. */
  #exclusive<T>(slot: Slot, work: () => Promise<T>): Promise<T> {
    slot.exclusiveAsked++;
    this.#waiting.delete(slot);
    return this.#queue(slot, work);
  }

  #queue<T>(slot: Slot, work: () => Promise<T>): Promise<T> {
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
