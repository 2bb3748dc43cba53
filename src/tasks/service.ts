// The background-task service: keeps every registered timer armed in the one timer loop;
// when one comes due, plans its delivery (misfire policy, constrained budget) and hands
// the events to the dispatcher, then moves the task on to its next occurrence. It also
// turns pushes and manual fires into deliveries, and finds the partition an event goes to:
// provisioning a fresh one for a task that outlived its own.
import type { PushRequest } from "../../wit/index.ts";
import type { ActivationBudget } from "../budget/budget.ts";
import type { Delivery, DeliveryKind, DeliveryRef } from "../delivery/delivery.ts";
import { newDeliveryId, type Dispatcher } from "../delivery/dispatcher.ts";
import type { PartitionManager } from "../partitions/manager.ts";
import type { PartitionRecord } from "../partitions/partition.ts";
import type { Clock } from "../scheduler/clock.ts";
import type { TimerLoop } from "../scheduler/timer-loop.ts";
import { planFire, type Misfire, type MisfireOptions } from "./misfire.ts";
import type { TaskRegistry } from "./registry.ts";
import type { TaskRecord } from "./task.ts";
import { DormantError } from "../../runtime/index.ts";

export interface TaskServiceOptions {
  registry: TaskRegistry;
  partitions: Pick<PartitionManager, "has" | "list" | "activate" | "create" | "hold" | "prewarm">;
  dispatcher: Dispatcher;
  timers: Pick<TimerLoop, "arm" | "disarm" | "on">;
  budget: ActivationBudget;
  clock: Clock;
  misfire: MisfireOptions;
  /** How long before a timer is due its frozen partition is woken, so the event finds it live (0: woken by the event). */
  prewarmMs: number;
  onEvent?: (event: TaskServiceEvent) => void;
}

export type TaskServiceEvent =
  | ({ type: "misfire" } & Misfire & DeliveryRef)
  | ({ type: "reprovisioned"; from: string } & DeliveryRef)
  | { type: "reregistered"; partition: string }
  | { type: "error"; error: Error; partition?: string };

export interface TaskStats {
  misfires: number;
  missedOccurrences: number;
  reprovisioned: number;
  /** Frozen partitions woken ahead of a timer. */
  prewarmed: number;
}

export const TASK_TIMER = "task";

export class TaskService {
  readonly stats: TaskStats = { misfires: 0, missedOccurrences: 0, reprovisioned: 0, prewarmed: 0 };
  readonly #o: TaskServiceOptions;
  readonly #reprovisioning = new Map<string, Promise<string>>();

  constructor(options: TaskServiceOptions) {
    this.#o = options;
    options.timers.on(TASK_TIMER, (id, _armedAt, now) => this.#fire(id, now));
  }

  get registry(): TaskRegistry {
    return this.#o.registry;
  }

  /**
   * Arm every stored task, then activate each `guest`-mode partition once so it
   * re-registers its tasks (they were only in the last host's memory).
   */
  async start(): Promise<void> {
    const { registry, timers, partitions } = this.#o;
    registry.watch({
      changed: (task) => void (task.nextFire === undefined ? timers.disarm(TASK_TIMER, task.id) : timers.arm(TASK_TIMER, task.id, this.#armAt(task.nextFire))),
      removed: (task) => void timers.disarm(TASK_TIMER, task.id),
    });
    await this.reregister(partitions.list());
  }

  /** Activate each `guest`-mode partition among `records` once, so it registers its tasks again (they lived only in another host's memory). */
  async reregister(records: readonly PartitionRecord[]): Promise<void> {
    const { partitions, budget } = this.#o;
    const guestMode = records.filter((p) => p.registrations === "guest");
    // As many at once as the budget allows.
    await Promise.all(
      guestMode.map((record) =>
        budget
          .run(255, () => partitions.activate(record.id))
          .then(
            () => this.#emit({ type: "reregistered", partition: record.id }),
            (error: Error) => this.#emit({ type: "error", error, partition: record.id }),
          ),
      ),
    );
  }

  /** Deliver an HTTP request to a push task and wait for the guest's answer. */
  push(task: TaskRecord, request: PushRequest, deadlineMs: number) {
    return this.#o.dispatcher.deliverNow(
      this.#deliveryOf(task, newDeliveryId(task.partition), "push", { scheduledAt: this.#o.clock.now(), occurrences: 1, request }),
      deadlineMs,
    );
  }

  /** Accept a request for delivery later: stored before this returns, then delivered at least once. */
  pushAsync(task: TaskRecord, request: PushRequest): Promise<string> {
    return this.#o.dispatcher.enqueue(
      this.#deliveryOf(task, newDeliveryId(task.partition), "push", { scheduledAt: this.#o.clock.now(), occurrences: 1, request }),
    );
  }

  /** Fire a task now, outside its schedule (which stays as it is); returns the delivery id. */
  fireNow(taskId: string): Promise<string> {
    const task = this.#o.registry.get(taskId);
    if (!task) throw new DormantError("unknown-task", `No task ${taskId} on this host; list tasks to find its id.`);
    return this.#o.dispatcher.enqueue(this.#deliveryOf(task, newDeliveryId(task.partition), "manual", { scheduledAt: this.#o.clock.now(), occurrences: 1 }));
  }

  /** The partition an event goes to, provisioning one if its task outlived its own. */
  async route(delivery: Delivery): Promise<string> {
    const { registry, partitions } = this.#o;
    const task = registry.get(delivery.taskId);
    const partition = task?.partition ?? delivery.partition;
    if (partitions.has(partition)) return partition;
    if (!task?.provision) {
      throw new DormantError("partition-gone", `Partition ${partition} was deleted and task ${delivery.taskName} was not registered to outlive it.`);
    }
    let provisioning = this.#reprovisioning.get(partition);
    if (!provisioning) {
      provisioning = this.#reprovision(partition, task);
      this.#reprovisioning.set(partition, provisioning);
      void provisioning.finally(() => this.#reprovisioning.delete(partition)).catch(() => undefined);
    }
    return provisioning;
  }

  async #reprovision(from: string, task: TaskRecord): Promise<string> {
    const record = await this.#o.partitions.create(task.provision!, { reprovisioned: true });
    await this.#o.registry.move(from, record.id);
    this.stats.reprovisioned++;
    this.#emit({ type: "reprovisioned", from, task: task.id, name: task.name, partition: record.id });
    return record.id;
  }

  async #fire(id: string, now: number): Promise<void> {
    const task = this.#o.registry.get(id);
    const due = task?.nextFire;
    if (!task || due === undefined) return; // cancelled since it was armed
    if (due > now) {
      // Moved on since it was armed: armed again already, for its new time.
      if (due - now > this.#o.prewarmMs) return;
      // Armed early to wake its partition first: it fires on time.
      const warming = this.#prewarm(task, due);
      await this.#o.timers.arm(TASK_TIMER, id, due);
      return void (await warming);
    }
    const admission = { priority: task.priority, whenConstrained: task.whenConstrained, ref: refOf(task), scheduledAt: due };
    const verdict = this.#o.dispatcher.admit(admission, `${TASK_TIMER}:${id}`, () => this.#fire(id, this.#o.clock.now()));
    if (verdict === "postponed") return;
    // Held back by the partition's quota, the occurrence waits (its next fire is not
    // advanced), and occurrences missed meanwhile follow the misfire policy.
    const waitMs = verdict === "run" ? this.#o.dispatcher.throttle(admission.ref) : 0;
    if (waitMs > 0) return void (await this.#o.timers.arm(TASK_TIMER, id, now + waitMs));
    const plan = planFire(task, due, now, this.#o.misfire);
    if (verdict === "dropped") return this.#advance(task, plan.next);
    if (plan.misfire) {
      this.stats.misfires++;
      this.stats.missedOccurrences += plan.misfire.missed;
      this.#emit({ type: "misfire", ...plan.misfire, ...refOf(task) });
    }
    // One event after another: the partition takes them in order anyway.
    for (const event of plan.events) await this.#o.dispatcher.deliver(this.#deliveryOf(task, timerDeliveryId(task, event.scheduledAt), "timer", event));
    await this.#advance(task, plan.next);
  }

  /** When to arm a timer due at `due`: early enough to wake its partition first, when there is still time for that. */
  #armAt(due: number): number {
    const early = due - this.#o.prewarmMs;
    return early > this.#o.clock.now() ? early : due;
  }

  /**
   * Have the task's partition live when it comes due (woken now if frozen), when the
   * budget would run the task. A wake that fails is not reported here: the event meets the
   * same failure at its due time, and is retried and reported as any delivery is.
   */
  async #prewarm(task: TaskRecord, due: number): Promise<void> {
    const { partitions, budget } = this.#o;
    if (!budget.admits(task.priority) || !partitions.has(task.partition)) return;
    // Held at once (an idle check due now leaves it live), woken in its turn in the budget.
    partitions.hold(task.partition, due);
    const woken = await budget.run(task.priority, () => partitions.prewarm(task.partition)).catch(() => false);
    if (woken) this.stats.prewarmed++;
  }

  /** Move a fired task on to its next occurrence, or retire it when it has none. */
  async #advance(fired: TaskRecord, next: number | undefined): Promise<void> {
    const { registry } = this.#o;
    // The record may have been moved to a re-provisioned partition meanwhile (same
    // registration), or replaced or cancelled by the guest (then it is not ours to move on).
    const current = registry.get(fired.id);
    if (!current || current.registeredAt !== fired.registeredAt || current.nextFire !== fired.nextFire) return;
    if (next === undefined) await registry.remove(current);
    else await registry.update({ ...current, nextFire: next });
  }

  #deliveryOf(task: TaskRecord, id: string, kind: DeliveryKind, event: { scheduledAt: number; occurrences: number; request?: PushRequest }): Delivery {
    return {
      id,
      kind,
      taskId: task.id,
      taskName: task.name,
      partition: task.partition,
      entry: task.entry,
      payload: task.payload,
      priority: task.priority,
      whenConstrained: task.whenConstrained,
      retry: task.retry,
      scheduledAt: event.scheduledAt,
      occurrences: event.occurrences,
      ...(event.request ? { request: event.request } : {}),
      attempts: 0,
    };
  }

  #emit(event: TaskServiceEvent): void {
    this.#o.onEvent?.(event);
  }
}

function refOf(task: TaskRecord): DeliveryRef {
  return { task: task.id, name: task.name, partition: task.partition };
}

/** A timer occurrence's delivery: the same id for each attempt at it; like every delivery id it ends with its partition (newDeliveryId). */
function timerDeliveryId(task: TaskRecord, scheduledAt: number): string {
  return `${task.id}@${scheduledAt}.${task.partition}`;
}
