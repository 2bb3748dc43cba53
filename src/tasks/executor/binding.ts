// The host imports of one instance: one object per WIT interface, composed here. Loaded
// by each executor (see runtime/executor/host-binding.ts); an instance is tied to one
// partition at a time, and a call's state is bound by begin/end.
import type { HostBinding, HostSink } from "../../../runtime/index.ts";
import { backgroundTasks, effectsOf, newCallContext, type CallContext, type TaskCallState, type TaskEffects } from "./background-tasks.ts";
import { log } from "./log.ts";

export function createHostBinding(sink: HostSink): HostBinding<TaskCallState, TaskEffects> {
  let partition: string | undefined;
  let call: CallContext | undefined;

  const current = () => {
    if (!call) throw new Error("background-tasks was called outside a host call; this is a host bug.");
    return call;
  };

  return {
    imports: {
      "dormant:host/background-tasks@0.1.0": backgroundTasks(current),
      "dormant:host/log@0.1.0": log((level, message) => sink.log(partition ?? "(unattached)", level, message)),
    },
    attach(id) {
      if (partition !== undefined) throw new Error(`This instance already belongs to partition ${partition}.`);
      partition = id;
    },
    detach() {
      if (call) throw new Error("An instance cannot change partitions during a call.");
      partition = undefined;
    },
    begin(state, now) {
      if (partition === undefined) throw new Error("An instance must be attached to a partition before a call; this is a host bug.");
      call = newCallContext(partition, state, now);
    },
    end() {
      const effects = effectsOf(current());
      call = undefined;
      return effects;
    },
  };
}
