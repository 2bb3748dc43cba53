import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutorPool, type ExecutorPoolOptions, type TaskEvent } from "../../runtime/index.ts";
import type { TaskCallState } from "../../src/tasks/executor/background-tasks.ts";
import { DEFAULT_TASK_LIMITS } from "../../src/tasks/limits.ts";

export const HOST_MODULE = new URL("../../src/tasks/executor/binding.ts", import.meta.url);
export const JCO_ENGINE = new URL("../../runtime/jco/jco-engine.ts", import.meta.url);

export async function startPool(options: Partial<ExecutorPoolOptions> = {}): Promise<ExecutorPool> {
  const cacheDir = options.cacheDir ?? (await mkdtemp(join(tmpdir(), "dormant-engine-")));
  return ExecutorPool.start({ size: 2, hostModule: HOST_MODULE, engineModule: JCO_ENGINE, ...options, cacheDir });
}

export function noTasks(): TaskCallState {
  return { tasks: [], limits: DEFAULT_TASK_LIMITS, registrations: { left: 1000, perSecond: 10 } };
}

export function event(entry: string, payload = "", extra: Partial<TaskEvent> = {}): TaskEvent {
  return {
    taskId: "t_test",
    taskName: entry,
    entry,
    payload: new TextEncoder().encode(payload),
    scheduledAt: 0n,
    firedAt: 0n,
    attempt: 1,
    occurrences: 1,
    ...extra,
  };
}

export function bodyText(body: Uint8Array | undefined): string {
  return new TextDecoder().decode(body ?? new Uint8Array());
}

/** Generous limits for direct executor calls. */
export const LIMITS = { deadlineMs: 60_000, memoryBytes: 2 ** 31 };
