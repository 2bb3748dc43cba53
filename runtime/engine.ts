// The engine port: everything Dormant needs from a WebAssembly component engine. The
// host never touches an engine directly; it goes through this interface, implemented
// today by `jco/jco-engine.ts` (V8 through jco's transpiled glue).
import type { ImportObject, Partition } from "../wit/types/partition.d.ts";

/** What the host hands a guest: the `partition` world's imports. */
export type GuestImports = Pick<ImportObject, "dormant:host/background-tasks@0.1.0" | "dormant:host/log@0.1.0">;
/** What a guest hands the host: the `partition` world's exports. */
export type GuestExports = Pick<Partition, "handler" | "lifecycle">;

/** A component validated against the `partition` world and prepared for compiling. Plain data: it crosses thread boundaries. */
export interface PreparedComponent {
  /** `sha256:<hex>` of the component bytes. */
  readonly digest: string;
  /** Engine-specific location of the prepared artifacts. */
  readonly location: string;
  readonly bytes: number;
}

export type CoreValueType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";

/**
 * Live access to the state a snapshot must capture: every memory and mutable global
 * the component's core instances define, and their tables (to verify they did not
 * change), in a fixed order that is the same for every instance of one component.
 */
export interface StateView {
  readonly memories: readonly WebAssembly.Memory[];
  readonly globals: readonly { readonly global: WebAssembly.Global; readonly type: CoreValueType }[];
  /** Each table with the entries it held when instantiated, to detect a guest rewriting it. */
  readonly tables: readonly { readonly table: WebAssembly.Table; readonly entries: readonly unknown[] }[];
}

export interface GuestInstance {
  readonly exports: GuestExports;
  readonly state: StateView;
}

export interface CompiledComponent {
  readonly digest: string;
  /** Instantiate synchronously: compiled modules are cached, so this is the cheap part. */
  instantiate(imports: GuestImports): GuestInstance;
}

export interface Engine {
  readonly name: string;
  /** Validate component bytes against the `partition` world and prepare them (cached by digest). */
  prepare(bytes: Uint8Array): Promise<PreparedComponent>;
  /** Compile a prepared component (cached by digest for the life of the engine). */
  compile(prepared: PreparedComponent): Promise<CompiledComponent>;
}
