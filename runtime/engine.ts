// The engine port: everything Dormant needs from a WebAssembly component engine. The
// host never touches an engine directly; it goes through this interface, implemented
// today by `jco/jco-engine.ts` (V8 through jco's transpiled glue). The host names an
// engine module by URL (see `EngineModule`) and each executor loads it.
import type { ImportObject, PartitionWithHandover } from "../wit/types/partition.d.ts";

/** What the host hands a guest: the `partition` world's imports. */
export type GuestImports = Pick<ImportObject, "dormant:host/background-tasks@0.1.0" | "dormant:host/log@0.1.0">;
/** What a guest hands the host: the `partition` world's exports, and `handover` when the guest can carry its state to a new version. */
export type GuestExports = Pick<PartitionWithHandover, "handler" | "lifecycle"> & Partial<Pick<PartitionWithHandover, "handover">>;

/** A component validated against the `partition` world and prepared for compiling. Plain data: it crosses thread boundaries. */
export interface PreparedComponent {
  /** `sha256:<hex>` of the component bytes. */
  readonly digest: string;
  /** Engine-specific location of the prepared artifacts. */
  readonly location: string;
  readonly bytes: number;
}

/** The value type of a core WebAssembly global. */
export type CoreValueType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";

// The state surface is typed by shape, not as V8's WebAssembly.* classes, so an engine
// that is not V8 can hand over plain objects. V8's Memory, Global and Table fit as they are.

/** A linear memory. */
export interface LinearMemory {
  /** The whole memory; a new buffer after each grow. */
  readonly buffer: ArrayBuffer;
  /** Grow by this many 64 KiB pages; returns the previous size in pages. */
  grow(pages: number): number;
}

/** A global: a number for i32, f32 and f64, a bigint for i64, an opaque value (or null) for references. */
export interface GlobalCell {
  value: unknown;
}

/** A table, read only to check that its entries did not change. */
export interface TableView {
  readonly length: number;
  get(index: number): unknown;
}

/**
 * Live access to the state a snapshot must capture: every memory and mutable global
 * the component's core instances define, and their tables (to verify they did not
 * change), in a fixed order that is the same for every instance of one component.
 */
export interface StateView {
  readonly memories: readonly LinearMemory[];
  readonly globals: readonly { readonly global: GlobalCell; readonly type: CoreValueType }[];
  /** Each table with the entries it held when instantiated, to detect a guest rewriting it; none when no code of the component can write a table. */
  readonly tables: readonly { readonly table: TableView; readonly entries: readonly unknown[] }[];
}

export interface GuestInstance {
  readonly exports: GuestExports;
  readonly state: StateView;
}

export interface CompiledComponent {
  readonly digest: string;
  /** The digest and the memory cap it was compiled for: instances of one key are interchangeable. */
  readonly key: string;
  /** Instantiate synchronously: compiled modules are cached, so this is the cheap part. */
  instantiate(imports: GuestImports): GuestInstance;
}

export interface Engine {
  readonly name: string;
  /** Validate component bytes against the `partition` world and prepare them (cached by digest). */
  prepare(bytes: Uint8Array): Promise<PreparedComponent>;
  /** Compile a prepared component (cached by digest and options for the life of the engine). */
  compile(prepared: PreparedComponent, options?: CompileOptions): Promise<CompiledComponent>;
}

export interface CompileOptions {
  /**
   * Most bytes each linear memory may grow to: `memory.grow` beyond it fails inside the
   * guest, so the host never allocates past a partition's cap. Caps are per partition and
   * compiled modules per component, so each distinct cap is its own compiled variant.
   */
  maxMemoryBytes?: number;
}

export interface EngineOptions {
  /** Where the engine may cache prepared components, one entry per digest. */
  cacheDir: string;
}

/**
 * What an engine module exports. The host names the module by URL when it starts the
 * executors (as it names the host module), and every executor creates its engine from it.
 */
export interface EngineModule {
  createEngine(options: EngineOptions): Engine;
}
