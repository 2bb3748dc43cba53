// The baseline every wake figure is compared with: a plain jco instantiation of the same
// component (its transpiled glue and unmodified core modules), in this process.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { PreparedComponent } from "../runtime/engine.ts";
import { glueImports, JCO_GLUE_FILE, readManifest } from "../runtime/jco/jco-engine.ts";
import { createHostBinding } from "../src/tasks/executor/binding.ts";

interface Glue {
  instantiate(
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: unknown,
    instantiateCore: (m: WebAssembly.Module, i: WebAssembly.Imports) => WebAssembly.Instance,
  ): unknown;
}

/** Milliseconds of each of `runs` plain jco instantiations (modules compiled once, as jco's own cache would). */
export async function plainJcoInstantiate(prepared: PreparedComponent, runs: number): Promise<number[]> {
  const manifest = (await readManifest(prepared.location))!;
  const modules = new Map<string, WebAssembly.Module>();
  for (const name of manifest.coreModules) modules.set(name, await WebAssembly.compile(await readFile(join(prepared.location, name))));
  const glue = (await import(pathToFileURL(join(prepared.location, JCO_GLUE_FILE)).href)) as Glue;
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const imports = glueImports(createHostBinding({ log() {} }).imports);
    const started = performance.now();
    glue.instantiate(
      (name) => modules.get(name)!,
      imports,
      (module, coreImports) => new WebAssembly.Instance(module, coreImports),
    );
    samples.push(performance.now() - started);
  }
  return samples;
}

/**
 * The floor under any wake through an executor: a bare round trip to an idle worker
 * thread (an echo, after the same idle gap a wake follows), on this machine, now.
 */
export async function idleThreadRoundTrip(runs: number, idleMs: number): Promise<number[]> {
  const { Worker } = await import("node:worker_threads");
  const worker = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));", {
    eval: true,
  });
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      await new Promise((resolve) => setTimeout(resolve, idleMs));
      const started = performance.now();
      await new Promise((resolve) => {
        worker.once("message", resolve);
        worker.postMessage(i);
      });
      samples.push(performance.now() - started);
    }
  } finally {
    await worker.terminate();
  }
  return samples;
}
