// A registered background task as the host keeps it: the association of a partition,
// an event source (the trigger) and a guest entry point.
import type {
  MisfirePolicy,
  RetryPolicy,
  TaskInfo,
  Trigger,
  WhenConstrained,
} from "../../wit/types/interfaces/dormant-host-background-tasks.d.ts";

import type { Durability, RegistrationMode } from "../partitions/partition.ts";

export type { MisfirePolicy, RetryPolicy, TaskInfo, Trigger, WhenConstrained };
export type { TaskSpec, TaskError } from "../../wit/types/interfaces/dormant-host-background-tasks.d.ts";

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
  /** Unix ms of the next occurrence; undefined for push tasks and spent one-shots. */
  nextFire: number | undefined;
  /** Secret path segment of a push task's URL. */
  pushToken: string | undefined;
  /** A push task that asked for the caller's `cookie` and `authorization` (WIT `receive-credentials`). */
  receiveCredentials?: boolean;
  registeredAt: number;
  /**
   * Set on a task that outlived its deleted partition: what to provision when it next
   * fires. The task keeps the old partition id until then.
   */
  provision?: PartitionProvision;
}

/** What it takes to provision a replacement for a deleted partition. */
export interface PartitionProvision {
  name: string;
  component: string;
  durability: Durability;
  registrations: RegistrationMode;
}

export function pushPath(token: string): string {
  return `/push/${token}`;
}

/** The guest's view of a task (WIT `task-info`). */
export function taskInfo(task: TaskRecord): TaskInfo {
  return {
    id: task.id,
    name: task.name,
    trigger: task.trigger,
    entry: task.entry,
    priority: task.priority,
    outlivePartition: task.outlivePartition,
    nextFire: task.nextFire === undefined ? undefined : BigInt(task.nextFire),
    pushUrl: task.pushToken === undefined ? undefined : pushPath(task.pushToken),
  };
}
