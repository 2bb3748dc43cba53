// A registered background task as the host keeps it: the association of a partition,
// an event source (the trigger) and a guest entry point. Records hold plain numbers: the
// WIT's u64 values are converted where they cross into the guest (tasks/executor/), so
// records are stored as JSON.
import type { MisfirePolicy, Trigger as WitTrigger, TaskInfo, WhenConstrained } from "../../wit/index.ts";
import type { RetryPolicy } from "../delivery/delivery.ts";
import type { PartitionSpec } from "../partitions/partition.ts";

export type { MisfirePolicy, RetryPolicy, WhenConstrained };

/** A trigger with its times in plain milliseconds. */
export type Trigger =
  { tag: "at"; val: number } | { tag: "after"; val: number } | { tag: "every"; val: number } | Extract<WitTrigger, { tag: "cron" | "push" }>;

export interface TaskRecord {
  id: string;
  partition: string;
  name: string;
  trigger: Trigger;
  entry: string;
  payload: Uint8Array;
  priority: number;
  outlivePartition: boolean;
  retry: RetryPolicy;
  misfire: MisfirePolicy;
  whenConstrained: WhenConstrained;
  /** Unix ms of the next occurrence; absent for push tasks and spent one-shots. */
  nextFire?: number | undefined;
  /** Secret path segment of a push task's URL. */
  pushToken?: string | undefined;
  /** A push task that asked for the caller's `cookie` and `authorization` (WIT `receive-credentials`). */
  receiveCredentials?: boolean;
  registeredAt: number;
  /**
   * Set on a task that outlived its deleted partition: what to provision when it next
   * fires. The task keeps the old partition id until then.
   */
  provision?: PartitionSpec;
}

/**
 * What an executor gets to see of a partition's tasks during a call: enough to answer
 * `list`, keep ids across re-registration and count against the quota, and no payloads.
 */
export type TaskView = Pick<TaskRecord, "id" | "name" | "trigger" | "entry" | "priority" | "outlivePartition" | "nextFire" | "pushToken">;

export function viewOf(task: TaskRecord): TaskView {
  const { id, name, trigger, entry, priority, outlivePartition, nextFire, pushToken } = task;
  return { id, name, trigger, entry, priority, outlivePartition, nextFire, pushToken };
}

export function pushPath(token: string): string {
  return `/push/${token}`;
}

/** The guest's view of a task (WIT `task-info`): the edge where times become u64 again. */
export function taskInfo(task: TaskView): TaskInfo {
  return {
    id: task.id,
    name: task.name,
    trigger: witTrigger(task.trigger),
    entry: task.entry,
    priority: task.priority,
    outlivePartition: task.outlivePartition,
    nextFire: task.nextFire === undefined ? undefined : BigInt(task.nextFire),
    pushUrl: task.pushToken === undefined ? undefined : pushPath(task.pushToken),
  };
}

export function recordTrigger(trigger: WitTrigger): Trigger {
  switch (trigger.tag) {
    case "at":
    case "after":
    case "every":
      return { tag: trigger.tag, val: Number(trigger.val) };
    default:
      return trigger;
  }
}

function witTrigger(trigger: Trigger): WitTrigger {
  switch (trigger.tag) {
    case "at":
    case "after":
    case "every":
      return { tag: trigger.tag, val: BigInt(trigger.val) };
    default:
      return trigger;
  }
}
