// The background-task service: keeps every registered timer armed in the one timer
// queue, and when one comes due makes its partition available — rehydrated, fresh, or
// re-provisioned for a task that outlived it — and delivers the event, at least once,
// within the activation budget.
import { randomBytes } from "node:crypto";
import type { CallOutcome, PushRequest } from "../../runtime/executor/protocol.ts";
import type { ActivationBudget } from "../budget/budget.ts";
import { backoffMs, deliveryOf, taskEventOf, type DeadLetter, type Delivery, type DeliveryKind } from "../delivery/delivery.ts";
import type { DeliveryStore } from "../delivery/delivery-store.ts";
import type { PartitionManager } from "../partitions/manager.ts";
import type { DueTimer, TimerQueue } from "../scheduler/timer-queue.ts";
import { DEFAULT_MISFIRE, planFire, type Misfire, type MisfireOptions } from "./misfire.ts";
import type { TaskRecord } from "./task.ts";

export interface TaskServiceOptions {
  manager: PartitionManager;
  queue: TimerQueue;
  deliveries: DeliveryStore;
  budget: ActivationBudget;
  clock: () => number;
  misfire?: MisfireOptions;
  onEvent?: (event: TaskServiceEvent) => void;
}

interface TaskRef {
  task: string;
  name: string;
  partition: string;
}

export type TaskServiceEvent =
  | ({ type: "delivered"; delivery: string; kind: DeliveryKind; scheduledAt: number; firedAt: number; attempt: number; ms: number; outcome: CallOutcome } & TaskRef)
  | ({ type: "misfire" } & Misfire & TaskRef)
  | ({ type: "retry-scheduled"; delivery: string; attempt: number; at: number; error: string } & TaskRef)
  | ({ type: "dead-lettered"; delivery: string; attempts: number; error: string } & TaskRef)
  | ({ type: "postponed"; priority: number; scheduledAt: number } & TaskRef)
  | ({ type: "dropped"; priority: number; scheduledAt: number } & TaskRef)
  | ({ type: "reprovisioned"; from: string } & TaskRef)
  | { type: "reregistered"; partition: string }
  | { type: "error"; error: Error; partition?: string };

/** Counters of what the service did, for metrics and the admin API. */
export interface TaskServiceStats {
  attempts: number;
  delivered: number;
  failed: number;
  retriesScheduled: number;
  deadLettered: number;
  misfires: number;
  missedOccurrences: number;
  reprovisioned: number;
  /** Postponed and dropped occurrences, by task priority. */
  postponed: Record<number, number>;
  dropped: Record<number, number>;
}

export class PartitionGoneError extends Error {
  override name = "PartitionGoneError";
}

export class UnknownTaskError extends Error {
  override name = "UnknownTaskError";
}

/** A synchronous push to a task below the threshold of a constrained budget. */
export class ConstrainedError extends Error {
  override name = "ConstrainedError";
}

/** The guest did not answer a synchronous push in time; the delivery goes on. */
export class PushDeadlineError extends Error {
  override name = "PushDeadlineError";
}

const TASK = "task:";
const RETRY = "retry:";
/** Timers taken from the queue per batch. */
const BATCH = 4096;

interface Postponed {
  timer: DueTimer;
  priority: number;
}

export class TaskService {
  readonly stats: TaskServiceStats = {
    attempts: 0,
    delivered: 0,
    failed: 0,
    retriesScheduled: 0,
    deadLettered: 0,
    misfires: 0,
    missedOccurrences: 0,
    reprovisioned: 0,
    postponed: {},
    dropped: {},
  };
  readonly #o: TaskServiceOptions & { misfire: MisfireOptions };
  /** Deliveries waiting for a retry, by id (mirrors the store). */
  readonly #pending = new Map<string, Delivery>();
  readonly #postponed = new Map<string, Postponed>();
  readonly #reprovisioning = new Map<string, Promise<string>>();
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #running = false;
  #stopBudgetWatch: (() => void) | undefined;

  constructor(options: TaskServiceOptions) {
    this.#o = { ...options, misfire: options.misfire ?? DEFAULT_MISFIRE };
  }

  get postponedCount(): number {
    return this.#postponed.size;
  }

  pendingDeliveries(): Delivery[] {
    return [...this.#pending.values()];
  }

  /**
   * Arm every stored task and pending retry, then activate each `guest`-mode partition
   * once so it re-registers its tasks (they were only in the last host's memory).
   */
  async start(): Promise<void> {
    const { manager, queue, deliveries, budget } = this.#o;
    manager.tasks.watch({
      changed: (task) => {
        if (task.nextFire === undefined) void queue.disarm(TASK + task.id);
        else this.#arm(TASK + task.id, task.nextFire);
      },
      removed: (task) => void queue.disarm(TASK + task.id),
    });
    for (const delivery of await deliveries.pending()) {
      this.#pending.set(delivery.id, delivery);
      this.#arm(RETRY + delivery.id, delivery.nextAttemptAt ?? this.#o.clock());
    }
    this.#stopBudgetWatch = budget.onChange(() => this.#budgetChanged());
    // As many at once as the budget allows.
    const guestMode = manager.list().filter((p) => p.registrations === "guest");
    await Promise.all(
      guestMode.map((record) =>
        budget.run(255, () => manager.activate(record.id)).then(
          () => this.#emit({ type: "reregistered", partition: record.id }),
          (error: Error) => this.#emit({ type: "error", error, partition: record.id }),
        ),
      ),
    );
  }

  /** Fire timers on the real clock: one `setTimeout`, for the earliest armed timer. */
  runOnRealClock(): void {
    this.#running = true;
    void this.#rearm();
  }

  /** Stop firing and wait for the deliveries under way. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stopBudgetWatch?.();
    await this.settled();
  }

  /** Fire everything due at `now`; resolves when those deliveries have finished. */
  async tick(now: number): Promise<void> {
    await this.#fireDue(now);
    await this.settled();
  }

  /** Wait until no delivery is under way. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  deadLetters(): Promise<DeadLetter[]> {
    return this.#o.deliveries.deadLetters();
  }

  /**
   * Deliver an HTTP request to a push task and wait for the guest's answer. Not retried: the caller sees a failure and decides.
   */
  async push(task: TaskRecord, request: PushRequest, deadlineMs: number): Promise<CallOutcome> {
    if (!this.#o.budget.admits(task.priority)) {
      throw new ConstrainedError(`The host is constrained to priority ${this.#o.budget.state.threshold} and above; task ${task.name} has ${task.priority}. Retry later or send it with Prefer: respond-async.`);
    }
    const delivery = deliveryOf(task, newDeliveryId(), "push", { scheduledAt: this.#o.clock(), occurrences: 1, request });
    const attempt = this.#attempt(delivery, false);
    this.#track(attempt.then(() => undefined));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PushDeadlineError(`Task ${task.name} did not answer within ${deadlineMs} ms.`)), deadlineMs);
    });
    try {
      return await Promise.race([attempt, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Accept a request for delivery later: stored before this returns, then delivered at least once. */
  async pushAsync(task: TaskRecord, request: PushRequest): Promise<string> {
    return this.#enqueue(task, request);
  }

  /** Fire a task now, outside its schedule (which stays as it is); returns the delivery id. */
  async fireNow(taskId: string): Promise<string> {
    const task = this.#o.manager.tasks.get(taskId);
    if (!task) throw new UnknownTaskError(`No task ${taskId} on this host; list tasks to find its id.`);
    return this.#enqueue(task, undefined);
  }

  async #enqueue(task: TaskRecord, request: PushRequest | undefined): Promise<string> {
    const now = this.#o.clock();
    const delivery: Delivery = { ...deliveryOf(task, newDeliveryId(), request ? "push" : "manual", { scheduledAt: now, occurrences: 1, ...(request ? { request } : {}) }), nextAttemptAt: now };
    await this.#o.deliveries.putPending(delivery);
    this.#pending.set(delivery.id, delivery);
    this.#track(this.#handle({ key: RETRY + delivery.id, at: now }, now));
    return delivery.id;
  }

  /** Put a dead letter back for delivery now, with a fresh set of attempts. */
  async retryDeadLetter(id: string): Promise<boolean> {
    const letter = await this.#o.deliveries.deadLetter(id);
    if (!letter) return false;
    const { deadAt: _deadAt, lastError: _lastError, ...delivery } = letter;
    await this.#o.deliveries.removeDeadLetter(id);
    // Attempts keep counting (the guest sees a retry), with the policy's full allowance again.
    const retry = { ...delivery.retry, maxAttempts: delivery.attempts + delivery.retry.maxAttempts };
    this.#track(this.#attempt({ ...delivery, retry }).then(() => undefined));
    return true;
  }

  async #fireDue(now: number): Promise<void> {
    for (;;) {
      const due = await this.#o.queue.takeDue(now, BATCH);
      for (const timer of due) this.#track(this.#handle(timer, now));
      if (due.length < BATCH) return;
    }
  }

  async #handle(timer: DueTimer, now: number): Promise<void> {
    try {
      if (timer.key.startsWith(TASK)) await this.#fireTask(timer.key.slice(TASK.length), timer.at, now);
      else if (timer.key.startsWith(RETRY)) await this.#retry(timer);
    } catch (error) {
      this.#emit({ type: "error", error: error as Error });
    }
  }

  async #fireTask(id: string, due: number, now: number): Promise<void> {
    const task = this.#o.manager.tasks.get(id);
    if (!task || task.nextFire !== due) return; // replaced or cancelled since it was armed
    const plan = planFire(task, due, now, this.#o.misfire);
    if (!this.#o.budget.admits(task.priority)) {
      if (task.whenConstrained === "postpone") return this.#postpone({ key: TASK + id, at: due }, task, due);
      this.#drop(task, due);
      return this.#advance(task, plan.next);
    }
    if (plan.misfire) {
      this.stats.misfires++;
      this.stats.missedOccurrences += plan.misfire.missed;
      this.#emit({ type: "misfire", ...plan.misfire, ...refOf(task) });
    }
    // One event after another: the partition takes them in order anyway.
    for (const event of plan.events) await this.#attempt(deliveryOf(task, `${id}@${event.scheduledAt}`, "timer", event));
    await this.#advance(task, plan.next);
  }

  /** Move a fired task on to its next occurrence, or retire it when it has none. */
  async #advance(fired: TaskRecord, next: number | undefined): Promise<void> {
    const tasks = this.#o.manager.tasks;
    // The record may have been moved to a re-provisioned partition meanwhile (same
    // registration), or replaced or cancelled by the guest (then it is not ours to move on).
    const current = tasks.get(fired.id);
    if (!current || current.registeredAt !== fired.registeredAt || current.nextFire !== fired.nextFire) return;
    if (next === undefined) await tasks.remove(current);
    else await tasks.update({ ...current, nextFire: next });
  }

  async #retry(timer: DueTimer): Promise<void> {
    const delivery = this.#pending.get(timer.key.slice(RETRY.length));
    if (!delivery) return;
    if (!this.#o.budget.admits(delivery.priority)) {
      if (delivery.whenConstrained === "postpone") return this.#postpone(timer, delivery, delivery.scheduledAt);
      this.#drop(delivery, delivery.scheduledAt);
      this.#pending.delete(delivery.id);
      await this.#o.deliveries.removePending(delivery.id);
      return;
    }
    await this.#attempt(delivery);
  }

  /** Hold an occurrence below a constrained budget's threshold until the constraint lifts. */
  #postpone(timer: DueTimer, what: TaskRecord | Delivery, scheduledAt: number): void {
    const { priority } = what;
    this.#postponed.set(timer.key, { timer, priority });
    this.stats.postponed[priority] = (this.stats.postponed[priority] ?? 0) + 1;
    this.#emit({ type: "postponed", priority, scheduledAt, ...refOf(what) });
  }

  /** Count and report an occurrence dropped by a constrained budget, as its spec asked. */
  #drop(what: TaskRecord | Delivery, scheduledAt: number): void {
    const { priority } = what;
    this.stats.dropped[priority] = (this.stats.dropped[priority] ?? 0) + 1;
    this.#emit({ type: "dropped", priority, scheduledAt, ...refOf(what) });
  }

  #budgetChanged(): void {
    const released = [...this.#postponed.values()].filter((p) => this.#o.budget.admits(p.priority)).sort((a, b) => b.priority - a.priority);
    const now = this.#o.clock();
    for (const { timer } of released) {
      this.#postponed.delete(timer.key);
      this.#track(this.#handle(timer, now));
    }
  }

  /** One delivery attempt; a failure schedules the next attempt or dead-letters (when `retries`). */
  async #attempt(delivery: Delivery, retries = true): Promise<CallOutcome> {
    const { manager, budget, clock } = this.#o;
    let firedAt = clock();
    let outcome: CallOutcome;
    const started = performance.now();
    let partition = delivery.partition;
    try {
      partition = await this.#partitionFor(delivery);
      outcome = await budget.run(delivery.priority, () => {
        firedAt = clock();
        return manager.deliver(partition, taskEventOf(delivery, firedAt));
      });
    } catch (error) {
      outcome = { ok: false, error: `${(error as Error).name}: ${(error as Error).message}` };
    }
    this.stats.attempts++;
    const ref = { ...refOf(delivery), partition };
    this.#emit({ type: "delivered", delivery: delivery.id, kind: delivery.kind, scheduledAt: delivery.scheduledAt, firedAt, attempt: delivery.attempts + 1, ms: performance.now() - started, outcome, ...ref });
    if (outcome.ok) {
      this.stats.delivered++;
      if (this.#pending.delete(delivery.id)) await this.#o.deliveries.removePending(delivery.id);
      return outcome;
    }
    this.stats.failed++;
    if (!retries) return outcome;
    const failed: Delivery = { ...delivery, partition, attempts: delivery.attempts + 1, lastError: outcome.error };
    const now = clock();
    if (failed.attempts >= failed.retry.maxAttempts || !manager.has(partition)) {
      const letter: DeadLetter = { ...failed, lastError: outcome.error, deadAt: now };
      this.#pending.delete(delivery.id);
      await this.#o.deliveries.bury(letter);
      this.stats.deadLettered++;
      this.#emit({ type: "dead-lettered", delivery: delivery.id, attempts: failed.attempts, error: outcome.error, ...ref });
    } else {
      failed.nextAttemptAt = now + backoffMs(failed.retry, failed.attempts);
      await this.#o.deliveries.putPending(failed);
      this.#pending.set(failed.id, failed);
      this.#arm(RETRY + failed.id, failed.nextAttemptAt);
      this.stats.retriesScheduled++;
      this.#emit({ type: "retry-scheduled", delivery: delivery.id, attempt: failed.attempts + 1, at: failed.nextAttemptAt, error: outcome.error, ...ref });
    }
    return outcome;
  }

  /** The partition to deliver to, provisioning one if the task outlived its own. */
  async #partitionFor(delivery: Delivery): Promise<string> {
    const { manager } = this.#o;
    const task = manager.tasks.get(delivery.taskId);
    const partition = task?.partition ?? delivery.partition;
    if (manager.has(partition)) return partition;
    if (!task?.provision) {
      throw new PartitionGoneError(`Partition ${partition} was deleted and task ${delivery.taskName} was not registered to outlive it.`);
    }
    let provisioning = this.#reprovisioning.get(partition);
    if (!provisioning) {
      const { provision } = task;
      provisioning = manager.reprovision(partition, provision).then((record) => {
        this.stats.reprovisioned++;
        this.#emit({ type: "reprovisioned", from: partition, ...refOf(task), partition: record.id });
        return record.id;
      });
      this.#reprovisioning.set(partition, provisioning);
      void provisioning.finally(() => this.#reprovisioning.delete(partition)).catch(() => undefined);
    }
    return provisioning;
  }

  #arm(key: string, at: number): void {
    void this.#o.queue.arm(key, at);
    if (this.#running && at < this.#timerAt) void this.#rearm();
  }

  /** Point the one real timer at the earliest armed timer. */
  async #rearm(): Promise<void> {
    const next = await this.#o.queue.nextAt();
    if (!this.#running) return;
    clearTimeout(this.#timer);
    this.#timerAt = next ?? Infinity;
    if (next === undefined) return;
    // setTimeout cannot wait longer than about 24.8 days.
    const delay = Math.min(Math.max(0, next - this.#o.clock()), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity;
      void this.#fireDue(this.#o.clock())
        .catch((error: Error) => this.#emit({ type: "error", error }))
        .finally(() => this.#rearm());
    }, delay);
  }

  #track(work: Promise<void>): void {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
  }

  #emit(event: TaskServiceEvent): void {
    this.#o.onEvent?.(event);
  }
}

export function newDeliveryId(): string {
  return `e_${randomBytes(12).toString("base64url")}`;
}

function refOf(what: TaskRecord | Delivery): TaskRef {
  return "taskId" in what ? { task: what.taskId, name: what.taskName, partition: what.partition } : { task: what.id, name: what.name, partition: what.partition };
}
