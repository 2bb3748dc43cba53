// The `background-tasks` import as a partition's instance sees it. During a call the
// guest works on a view of its partition's tasks (no payloads); the registrations it makes
// go back to the host as the call's effects and take hold only if the call succeeds.
import { randomBytes } from "node:crypto";
import type { TaskInfo, TaskSpec } from "../../../wit/index.ts";
import { DEFAULT_RETRY, type TaskLimits } from "../limits.ts";
import { firstOccurrence } from "../schedule.ts";
import { recordTrigger, taskInfo, type TaskRecord, type TaskView } from "../task.ts";
import { TaskSpecError, validateSpec } from "../validate.ts";

/** What the host sends with every call. */
export interface TaskCallState {
  tasks: TaskView[];
  limits: TaskLimits;
  /** Registrations the partition's quota allows in this call, and its rate. */
  registrations: { left: number; perSecond: number };
}

/** What a call did to its partition's tasks. */
export interface TaskEffects {
  upserts: TaskRecord[];
  removals: string[];
  /** `register` calls made, spent from the partition's quota. */
  registered: number;
}

export interface CallContext {
  partition: string;
  now: number;
  limits: TaskLimits;
  quota: TaskCallState["registrations"];
  registered: number;
  tasks: Map<string, TaskView>;
  upserts: Map<string, TaskRecord>;
  removals: Set<string>;
}

export function newCallContext(partition: string, state: TaskCallState, now: number): CallContext {
  const tasks = new Map(state.tasks.map((t) => [t.name, t]));
  return { partition, now, limits: state.limits, quota: state.registrations, registered: 0, tasks, upserts: new Map(), removals: new Set() };
}

/** The context of a call that follows `previous` before its effects reach the host: it sees the tasks as `previous` left them, and what is left of the quota. */
export function followingCallContext(previous: CallContext, now: number): CallContext {
  const quota = { ...previous.quota, left: previous.quota.left - previous.registered };
  return { ...previous, now, quota, registered: 0, tasks: new Map(previous.tasks), upserts: new Map(), removals: new Set() };
}

export function effectsOf(call: CallContext): TaskEffects {
  return { upserts: [...call.upserts.values()], removals: [...call.removals], registered: call.registered };
}

export function newTaskId(): string {
  return `t_${randomBytes(16).toString("base64url")}`;
}

export function newPushToken(): string {
  return randomBytes(24).toString("base64url");
}

export function backgroundTasks(current: () => CallContext) {
  return {
    register(spec: TaskSpec): TaskInfo {
      const call = current();
      if (call.registered >= call.quota.left) {
        throw new TaskSpecError({
          tag: "quota-exceeded",
          val:
            `Partition ${call.partition} registers tasks faster than its quota of ${call.quota.perSecond} a second; ` +
            `register ${spec.name} later, or keep a task registered instead of renewing it.`,
        });
      }
      call.registered++;
      validateSpec(spec, call.limits, call.now);
      const existing = call.tasks.get(spec.name);
      if (!existing && call.tasks.size >= call.limits.maxTasks) {
        throw new TaskSpecError({
          tag: "quota-exceeded",
          val: `Partition ${call.partition} already has ${call.tasks.size} tasks, the most allowed; cancel one before registering ${spec.name}.`,
        });
      }
      const trigger = recordTrigger(spec.trigger);
      const record: TaskRecord = {
        id: existing?.id ?? newTaskId(),
        partition: call.partition,
        name: spec.name,
        trigger,
        entry: spec.entry,
        payload: spec.payload,
        priority: spec.priority,
        outlivePartition: spec.outlivePartition,
        retry: spec.retry
          ? { maxAttempts: spec.retry.maxAttempts, initialBackoffMs: Number(spec.retry.initialBackoffMs), maxBackoffMs: Number(spec.retry.maxBackoffMs) }
          : { ...DEFAULT_RETRY },
        misfire: spec.misfire ?? "fire-once",
        whenConstrained: spec.whenConstrained ?? "postpone",
        nextFire: firstOccurrence(trigger, call.now),
        // A push URL is stable per (partition, task name): registering the same push task
        // again (a fresh start after a crash, a restart) keeps it; cancelling revokes it.
        pushToken: spec.trigger.tag === "push" ? (existing?.pushToken ?? newPushToken()) : undefined,
        registeredAt: call.now,
        ...(spec.trigger.tag === "push" && spec.receiveCredentials ? { receiveCredentials: true } : {}),
      };
      call.tasks.set(spec.name, record);
      call.upserts.set(spec.name, record);
      call.removals.delete(spec.name);
      return taskInfo(record);
    },
    cancel(name: string): boolean {
      const call = current();
      if (!call.tasks.delete(name)) return false;
      call.upserts.delete(name);
      call.removals.add(name);
      return true;
    },
    list(): TaskInfo[] {
      return [...current().tasks.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(taskInfo);
    },
  };
}
