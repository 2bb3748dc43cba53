// The `background-tasks` and `log` imports, as a partition's instance sees them. Loaded
// by each executor (see runtime/executor/host-binding.ts). During a call the guest works
// on a copy of its partition's tasks; the changes go back to the host as the call's
// effects and take hold only if the call succeeds.
import { randomBytes } from "node:crypto";
import type { HostBinding, HostSink } from "../../runtime/executor/host-binding.ts";
import type { GuestImports } from "../../runtime/engine.ts";
import type { TaskLimits } from "./limits.ts";
import { DEFAULT_RETRY } from "./limits.ts";
import { firstOccurrence } from "./schedule.ts";
import { taskInfo, type TaskInfo, type TaskRecord, type TaskSpec } from "./task.ts";
import { TaskSpecError, validateSpec } from "./validate.ts";

/** What the host sends with every call. */
export interface TaskCallState {
  tasks: TaskRecord[];
  limits: TaskLimits;
}

/** What a call did to its partition's tasks. */
export interface TaskEffects {
  upserts: TaskRecord[];
  removals: string[];
}

const MAX_LOG_MESSAGE = 8 * 1024;

export function newTaskId(): string {
  return `t_${randomBytes(16).toString("base64url")}`;
}

export function newPushToken(): string {
  return randomBytes(24).toString("base64url");
}

export function createHostBinding(sink: HostSink): HostBinding {
  let partition: string | undefined;
  let call: { now: number; limits: TaskLimits; tasks: Map<string, TaskRecord>; before: Map<string, TaskRecord> } | undefined;

  const current = () => {
    if (!call || !partition) throw new Error("background-tasks was called outside a host call; this is a host bug.");
    return { ...call, partition };
  };

  const imports: GuestImports = {
    "dormant:host/background-tasks@0.1.0": {
      register(spec: TaskSpec): TaskInfo {
        const { now, limits, tasks, partition: owner } = current();
        validateSpec(spec, limits, now);
        const existing = tasks.get(spec.name);
        if (!existing && tasks.size >= limits.maxTasks) {
          throw new TaskSpecError({
            tag: "quota-exceeded",
            val: `Partition ${owner} already has ${tasks.size} tasks, the most allowed; cancel one before registering ${spec.name}.`,
          });
        }
        const record: TaskRecord = {
          id: existing?.id ?? newTaskId(),
          partition: owner,
          name: spec.name,
          trigger: spec.trigger,
          entry: spec.entry,
          payload: spec.payload,
          priority: spec.priority,
          outlivePartition: spec.outlivePartition,
          retry: spec.retry ?? { ...DEFAULT_RETRY },
          misfire: spec.misfire ?? "fire-once",
          whenConstrained: spec.whenConstrained ?? "postpone",
          nextFire: firstOccurrence(spec.trigger, now),
          // Re-registering a push task issues a new token: the old URL stops working.
          pushToken: spec.trigger.tag === "push" ? newPushToken() : undefined,
          ...(spec.trigger.tag === "push" && spec.receiveCredentials ? { receiveCredentials: true } : {}),
          registeredAt: now,
        };
        tasks.set(spec.name, record);
        return taskInfo(record);
      },
      cancel(name: string): boolean {
        return current().tasks.delete(name);
      },
      list(): TaskInfo[] {
        return [...current().tasks.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(taskInfo);
      },
    },
    "dormant:host/log@0.1.0": {
      log(level, message) {
        const text = message.length > MAX_LOG_MESSAGE ? `${message.slice(0, MAX_LOG_MESSAGE)}… (${message.length} characters)` : message;
        sink.log(partition ?? "(unattached)", level, text);
      },
    },
  };

  return {
    imports,
    attach(id: string) {
      if (partition !== undefined) throw new Error(`This instance already belongs to partition ${partition}.`);
      partition = id;
    },
    detach() {
      if (call) throw new Error("An instance cannot change partitions during a call.");
      partition = undefined;
    },
    begin(state: unknown, now: number) {
      const { tasks, limits } = state as TaskCallState;
      const byName = new Map(tasks.map((task) => [task.name, task]));
      call = { now, limits, tasks: byName, before: new Map(byName) };
    },
    end(): TaskEffects {
      const { tasks, before } = current();
      call = undefined;
      return {
        upserts: [...tasks.values()].filter((task) => before.get(task.name) !== task),
        removals: [...before.keys()].filter((name) => !tasks.has(name)),
      };
    },
  };
}
