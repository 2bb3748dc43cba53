// A push URL is stable per (partition, task name): registering the same push task again
// keeps it, cancelling revokes it, even when the task is registered again in the same call.
// This runs the executor-side `background-tasks` import as a guest's call sees it.
import { describe, expect, it } from "vitest";
import type { TaskSpec } from "../../wit/index.ts";
import { DEFAULT_TASK_LIMITS } from "../../src/tasks/limits.ts";
import { viewOf } from "../../src/tasks/task.ts";
import { backgroundTasks, effectsOf, newCallContext, type TaskCallState } from "../../src/tasks/executor/background-tasks.ts";

const push = (name: string): TaskSpec => ({ name, trigger: { tag: "push" }, entry: "push", payload: new Uint8Array(), priority: 0, outlivePartition: false });

/** One guest call on a partition holding `held`; returns what it registered and what the call did. */
function call(held: ReturnType<typeof effectsOf>["upserts"], guest: (tasks: ReturnType<typeof backgroundTasks>) => void) {
  const state: TaskCallState = { tasks: held.map(viewOf), limits: DEFAULT_TASK_LIMITS, registrations: { left: 100, perSecond: 10 } };
  const context = newCallContext("p_test", state, 1_800_000_000_000);
  guest(backgroundTasks(() => context));
  return effectsOf(context);
}

describe("push tokens", () => {
  const first = call([], (tasks) => tasks.register(push("inbox"))).upserts;

  it("keeps the token when the same push task is registered again (a fresh start after a crash)", () => {
    const again = call(first, (tasks) => tasks.register(push("inbox"))).upserts;
    expect(again[0]!.pushToken).toBe(first[0]!.pushToken);
    expect(again[0]!.id).toBe(first[0]!.id);
  });

  it("issues a new token when the task is cancelled and registered again in one call", () => {
    const effects = call(first, (tasks) => {
      tasks.cancel("inbox");
      tasks.register(push("inbox"));
    });
    expect(effects.upserts[0]!.pushToken).not.toBe(first[0]!.pushToken);
  });

  it("gives each task name its own token", () => {
    const both = call(first, (tasks) => tasks.register(push("other"))).upserts;
    expect(both[0]!.pushToken).not.toBe(first[0]!.pushToken);
  });
});
