/** @module Interface dormant:host/handover@0.1.0 **/
/**
 * Called on the old version, restored from its latest snapshot, without `on-activate`:
 * the state to hand over, in any encoding the new version reads. `err` fails the
 * upgrade, which leaves the old version running.
 */
export function exportState(): Uint8Array;
/**
 * Called on the new version, freshly instantiated, before `on-activate(upgraded)`.
 * `err` (e.g. a format it cannot read) fails the upgrade, which leaves the old version
 * and its snapshot in place.
 */
export function importState(state: Uint8Array): void;
