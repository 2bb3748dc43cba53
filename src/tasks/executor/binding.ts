// The host imports of one instance: one object per WIT interface, composed here. Loaded
// by each executor (see runtime/executor/host-binding.ts); an instance is tied to one
// partition at a time, and a call's state is bound by begin/end.
import type { HostBinding, HostSink } from "../../../runtime/index.ts";
import {
  backgroundTasks,
  effectsOf,
  followingCallContext,
  newCallContext,
  type CallContext,
  type TaskCallState,
  type TaskEffects,
} from "./background-tasks.ts";
import { log } from "./log.ts";

export function createHostBinding(sink: HostSink): HostBinding<TaskCallState, TaskEffects> {
  let partition: string | undefined;
  let call: CallContext | undefined;
  let ended: CallContext | undefined;

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
      ended = undefined; // nothing of the last partition's call stays with a spare instance
    },
    begin(state, now) {
      if (partition === undefined) throw new Error("An instance must be attached to a partition before a call; this is a host bug.");
      call = newCallContext(partition, state, now);
      ended = undefined;
    },
    end() {
      const effects = effectsOf(current());
      ended = call;
      call = undefined;
      return effects;
    },
    next(now) {
      if (!ended || call) throw new Error("A following call needs a call that just ended; this is a host bug.");
      call = followingCallContext(ended, now);
      ended = undefined;
    },
  };
}
