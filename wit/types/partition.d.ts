// world dormant:host/partition-with-handover@0.1.0
import type * as DormantHostBackgroundTasks from './interfaces/dormant-host-background-tasks.js'; // dormant:host/background-tasks@0.1.0
import type * as DormantHostLog from './interfaces/dormant-host-log.js'; // dormant:host/log@0.1.0
import type * as DormantHostTypes from './interfaces/dormant-host-types.js'; // dormant:host/types@0.1.0
import type * as DormantHostHandover from './interfaces/dormant-host-handover.js'; // dormant:host/handover@0.1.0
import type * as DormantHostHandler from './interfaces/dormant-host-handler.js'; // dormant:host/handler@0.1.0
import type * as DormantHostLifecycle from './interfaces/dormant-host-lifecycle.js'; // dormant:host/lifecycle@0.1.0
export interface ImportObject {
  'dormant:host/background-tasks@0.1.0': typeof DormantHostBackgroundTasks,
  'dormant:host/log@0.1.0': typeof DormantHostLog,
  'dormant:host/types@0.1.0': typeof DormantHostTypes,
}
export interface PartitionWithHandover {
  'dormant:host/handover@0.1.0': typeof DormantHostHandover,
  handover: typeof DormantHostHandover,
  'dormant:host/handler@0.1.0': typeof DormantHostHandler,
  handler: typeof DormantHostHandler,
  'dormant:host/lifecycle@0.1.0': typeof DormantHostLifecycle,
  lifecycle: typeof DormantHostLifecycle,
}

/**
* Instantiates this component with the provided imports and
* returns a map of all the exports of the component.
*
* This function is intended to be similar to the
* `WebAssembly.Instantiate` constructor. The second `imports`
* argument is the "import object" for wasm, except here it
* uses component-model-layer types instead of core wasm
* integers/numbers/etc.
*
* The first argument to this function, `getCoreModule`, is
* used to compile core wasm modules within the component.
* Components are composed of core wasm modules and this callback
* will be invoked per core wasm module. The caller of this
* function is responsible for reading the core wasm module
* identified by `path` and returning its compiled
* `WebAssembly.Module` object. This would use the
* `WebAssembly.Module` constructor on the web, for example.
*/
export function instantiate(
getCoreModule: (path: string) => WebAssembly.Module,
imports: ImportObject,
instantiateCore?: (module: WebAssembly.Module, imports: Record<string, any>) => WebAssembly.Instance
): PartitionWithHandover;

