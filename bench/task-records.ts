// Task records as a guest's registration would leave them, inserted host-side by the
// benchmarks (the WAT guest cannot build a task spec itself).
import { newPushToken, newTaskId } from "../src/tasks/executor/background-tasks.ts";
import { DEFAULT_RETRY } from "../src/tasks/limits.ts";
import type { TaskRecord } from "../src/tasks/task.ts";

function taskRecord(
  partition: string,
  name: string,
  now: number,
  fields: Pick<TaskRecord, "trigger" | "entry" | "priority" | "nextFire" | "pushToken">,
): TaskRecord {
  return {
    id: newTaskId(),
    partition,
    name,
    payload: new Uint8Array(),
    outlivePartition: false,
    retry: { ...DEFAULT_RETRY },
    misfire: "fire-once",
    whenConstrained: "postpone",
    registeredAt: now,
    ...fields,
  };
}

/** A one-shot timer due at `at`, delivered to the guest's `tick` entry. */
export function timerTask(partition: string, name: string, at: number, now: number): TaskRecord {
  return taskRecord(partition, name, now, { trigger: { tag: "at", val: at }, entry: "tick", priority: 0, nextFire: at, pushToken: undefined });
}

/** A push task named `inbox`, delivered to the guest's `push` entry. */
export function pushTask(partition: string, now: number): TaskRecord {
  return taskRecord(partition, "inbox", now, { trigger: { tag: "push" }, entry: "push", priority: 100, nextFire: undefined, pushToken: newPushToken() });
}

/**
 * `armed` one-shot timers over `partitions` (round robin), due from `start` on, spread
 * evenly over `spreadMs`, named `<prefix><n>`: each partition's records, ready for `registry.apply`.
 */
export function spreadTimers(
  partitions: readonly string[],
  armed: number,
  start: number,
  spreadMs: number,
  now: number,
  prefix = "t",
): Map<string, TaskRecord[]> {
  const perPartition = new Map<string, TaskRecord[]>();
  for (let i = 0; i < armed; i++) {
    const partition = partitions[i % partitions.length]!;
    let tasks = perPartition.get(partition);
    if (!tasks) perPartition.set(partition, (tasks = []));
    tasks.push(timerTask(partition, `${prefix}${i}`, start + Math.floor((i * spreadMs) / armed), now));
  }
  return perPartition;
}
