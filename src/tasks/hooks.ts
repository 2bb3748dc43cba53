// How the partition lifecycle and the task registry meet: the lifecycle knows nothing
// about tasks, and asks these hooks what a call may see and what to do with its effects.
import type { CallHooks } from "../partitions/partition.ts";
import { specOf } from "../partitions/partition.ts";
import type { RateLimiter } from "../budget/rate-limit.ts";
import type { TaskCallState, TaskEffects } from "./executor/background-tasks.ts";
import type { TaskLimits } from "./limits.ts";
import type { TaskRegistry } from "./registry.ts";

export function taskHooks(registry: TaskRegistry, limits: TaskLimits, quota: RateLimiter, perSecond: number): CallHooks<TaskCallState, TaskEffects> {
  return {
    stateFor: (partition) => ({ tasks: registry.viewsOf(partition), limits, registrations: { left: quota.available(partition), perSecond } }),
    commit: (partition, effects) => {
      quota.spend(partition, effects.registered);
      return registry.apply(partition, effects);
    },
    added: (record) => registry.setMode(record.id, record.registrations),
    // Tasks registered to outlive the partition keep everything needed to provision its replacement.
    deleted: (record) => registry.removePartition(record.id, specOf(record)),
  };
}
