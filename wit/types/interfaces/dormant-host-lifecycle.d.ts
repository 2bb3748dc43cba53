/** @module Interface dormant:host/lifecycle@0.1.0 **/
/**
 * Called before any event is delivered after activation. `err` fails the activation.
 */
export function onActivate(reason: ActivationReason): void;
/**
 * # Variants
 * 
 * ## `"fresh"`
 * 
 * A new partition, never run before: register your tasks.
 * ## `"restored"`
 * 
 * State brought back from a snapshot, or a host restart for a partition whose
 * registrations live guest-side: re-register what the host should arm.
 * ## `"reprovisioned"`
 * 
 * A new partition provisioned for a task that outlived its old one.
 * ## `"upgraded"`
 * 
 * A new version of the component now runs this partition (`dormant upgrade`). Its
 * tasks are kept (push URLs included). If both versions export `handover`, the old
 * version's state was handed over by `import-state` just before this call; otherwise
 * the partition starts fresh: set up anew, and register again only what changed.
 */
export type ActivationReason = 'fresh' | 'restored' | 'reprovisioned' | 'upgraded';
