// Upgrades: a partition moves to a new version of its component. Its tasks stay as they
// are (the host's registrations, push tokens included); its memory state is carried only
// through the guest's `handover` export, never by restoring the old version's snapshot
// into the new component (a snapshot names its component, and the executor refuses another).
// A failed upgrade changes nothing: the old version stays, frozen, with its snapshot.
import { DormantError, type CallLimits } from "../../runtime/index.ts";
import type { PartitionManagerOptions } from "./manager.ts";
import type { PartitionEvent, PartitionRecord } from "./partition.ts";
import type { Persistence, Slot } from "./persistence.ts";
import type { RestorePoints } from "./restore-point.ts";

/** What an upgrade did. */
export interface Upgraded {
  record: PartitionRecord;
  /** The component it ran before. */
  from: string;
  /** Bytes of state handed from the old version to the new; undefined when the new one started fresh. */
  handedOver: number | undefined;
}

/** What the upgrade needs of the partition manager. */
export interface UpgradeContext {
  options: Pick<PartitionManagerOptions, "pool" | "components" | "records" | "hooks" | "clock">;
  persistence: Persistence;
  restorePoints: RestorePoints;
  callLimits(slot: Slot): CallLimits;
  /** The partition became live: arm its idle check. */
  used(slot: Slot): void;
  emit(event: PartitionEvent): void;
}

/** Run `component` on the partition of `slot` (called with the partition held exclusively). */
export async function upgradeSlot(ctx: UpgradeContext, slot: Slot, component: string): Promise<Upgraded> {
  const { pool, components, records, hooks, clock } = ctx.options;
  const old = slot.record;
  const id = old.id;
  if (old.component === component) {
    throw new DormantError("invalid-field", `Partition ${id} already runs ${component}; upgrade it to another component.`);
  }
  const started = performance.now();
  const [from, to] = await Promise.all([components.get(old.component), components.get(component)]);
  // The upgrade starts from the stored state: a live partition is frozen first, so a failed
  // upgrade leaves exactly that snapshot behind.
  await ctx.persistence.freeze(slot);
  const snapshot = await ctx.restorePoints.load(id);
  const failed = (error: unknown) => {
    ctx.emit({ type: "upgrade-failed", partition: id, from: old.component, to: component, error: error as Error });
    return error;
  };
  const result = await pool
    .upgrade(id, {
      component: to,
      from: { component: from, ...(snapshot ? { snapshot } : {}) },
      host: hooks.stateFor(id),
      now: clock.now(),
      limits: ctx.callLimits(slot),
    })
    .catch((error: unknown) => {
      throw failed(error);
    });
  // The record names the new version before its first snapshot is stored: a crash in between
  // finds the old snapshot, which the new component refuses, and starts the new version fresh.
  const record: PartitionRecord = { ...old, component };
  try {
    await records.setItem(id, record);
    slot.record = record;
    slot.live = true;
    await ctx.persistence.save(slot);
  } catch (error) {
    slot.record = old;
    slot.live = false;
    await pool.drop(id).catch(() => undefined);
    await records.setItem(id, old).catch(() => undefined);
    throw failed(error);
  }
  ctx.used(slot);
  await hooks.commit(id, result.effects);
  const ms = performance.now() - started;
  ctx.emit({ type: "activated", partition: id, kind: "upgraded", reason: "upgraded", ms, pooled: false });
  ctx.emit({ type: "upgraded", partition: id, from: old.component, to: component, handedOver: result.handedOver, ms });
  return { record, from: old.component, handedOver: result.handedOver };
}
