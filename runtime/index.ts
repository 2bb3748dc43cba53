// The runtime's public face: what the host (src/) may use of engines, executors and
// snapshots. Nothing in src/ imports a runtime file other than this one.
export { ExecutorPool, type ActivateOptions, type Activated, type ExecutorPoolOptions } from "./executor/pool.ts";
export type { HostBinding, HostModule, HostSink } from "./executor/host-binding.ts";
export type { ActivateResult, CallLimits, CallOutcome, CallResult, InstanceSource, SnapshotResult, UpgradeResult } from "./executor/protocol.ts";
export type { GuestImports, PreparedComponent } from "./engine.ts";
export type { ActivationReason, LogLevel, PushRequest, Reply, TaskEvent } from "../wit/index.ts";
export { DormantError, isDormantError, type DormantCode } from "./errors.ts";
export type { BuildOptions } from "./toolchain/build.ts";
export { DEFAULT_JS_ENGINE, JS_ENGINES, jsEngine, type JsEngine } from "./toolchain/js-engines.ts";
export { moduleUrl, PACKAGE_ROOT } from "./module-url.ts";
export { EarliestTimer } from "./earliest-timer.ts";

/** Build a guest component (`dormant build`); the toolchain is loaded only when asked for. */
export async function buildComponent(entry: string, options: import("./toolchain/build.ts").BuildOptions): Promise<Uint8Array> {
  return (await import("./toolchain/build.ts")).buildComponent(entry, options);
}
