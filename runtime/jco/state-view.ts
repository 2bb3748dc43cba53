import type { StateView } from "../engine.ts";
import type { DefinedState } from "../snapshot/core-module.ts";

/**
 * Collect the state a snapshot needs from core instances whose modules were rewritten to
 * expose it. Tables are listed (with their entries, to check them on every freeze) only
 * when some module of the component may write one.
 */
export function stateViewOf(cores: readonly { instance: WebAssembly.Instance; layout: DefinedState }[], tablesMayChange: boolean): StateView {
  const memories: WebAssembly.Memory[] = [];
  const globals: { global: WebAssembly.Global; type: StateView["globals"][number]["type"] }[] = [];
  const tables: StateView["tables"][number][] = [];
  for (const { instance, layout } of cores) {
    const exported = instance.exports;
    for (const memory of layout.memories) memories.push(exported[memory.exportName] as WebAssembly.Memory);
    for (const global of layout.globals) {
      if (global.mutable) globals.push({ global: exported[global.exportName] as WebAssembly.Global, type: global.type });
    }
    if (!tablesMayChange) continue;
    for (const { exportName } of layout.tables) {
      const table = exported[exportName] as WebAssembly.Table;
      tables.push({ table, entries: Array.from({ length: table.length }, (_, i) => table.get(i)) });
    }
  }
  return { memories, globals, tables };
}
