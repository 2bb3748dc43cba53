// Delivers events to partitions, at least once: one attempt at a time within the
// activation budget; a failed attempt is retried after a backoff (stored first, so a
// restart keeps it) and dead-lettered when its attempts run out. Below a constrained
// budget's threshold, work is postponed until the constraint lifts, or dropped, as the
// event asks. What a partition is, and how an event finds one, is the Deliverer's business.
import type { CallOutcome, TaskEvent } from "../../runtime/index.ts";
import type { ActivationBudget } from "../budget/budget.ts";
import type { RateLimiter } from "../budget/rate-limit.ts";
import type { Clock } from "../scheduler/clock.ts";
import type { TimerLoop } from "../scheduler/timer-loop.ts";
import { backoffMs, refOf, taskEventOf, type DeadLetter, type Delivery, type DeliveryKind, type DeliveryRef } from "./delivery.ts";
import type { DeliveryStore } from "./delivery-store.ts";
import { Backlog, weightOf, type BacklogLimits } from "./backlog.ts";
import { DEFAULT_BACKLOG } from "../options.ts";
import { randomText } from "../random.ts";
import { DormantError, isDormantError } from "../../runtime/index.ts";

/** What the dispatcher needs of the partitions: testable without executors. */
export interface Deliverer {
  /** The partition to deliver to now (an event's task may have moved); throws when there is none. */
  route(delivery: Delivery): Promise<string>;
  deliver(partition: string, event: TaskEvent): Promise<CallOutcome>;
  /** Whether the partition still exists: a failed delivery to a deleted one is dead-lettered at once. */
  has(partition: string): boolean;
}

export type DeliveryEvent =
  | ({
      type: "delivered";
      delivery: string;
      kind: DeliveryKind;
      scheduledAt: number;
      firedAt: number;
      attempt: number;
      ms: number;
      outcome: CallOutcome;
    } & DeliveryRef)
  | ({ type: "retry-scheduled"; delivery: string; attempt: number; at: number; error: string } & DeliveryRef)
  | ({ type: "dead-lettered"; delivery: string; attempts: number; error: string } & DeliveryRef)
  | ({ type: "postponed"; priority: number; scheduledAt: number } & DeliveryRef)
  | ({ type: "dropped"; priority: number; scheduledAt: number } & DeliveryRef)
  | ({ type: "throttled"; waitMs: number } & DeliveryRef)
  | { type: "error"; error: Error; partition?: string };

export interface DeliveryStats {
  attempts: number;
  delivered: number;
  failed: number;
  retriesScheduled: number;
  deadLettered: number;
  /** Postponed and dropped occurrences, by priority. */
  postponed: Record<number, number>;
  dropped: Record<number, number>;
  /** Activations held back by their partition's quota. */
  throttled: number;
}

/** What a constrained budget asks of an event: its priority and what to do below the threshold. */
export interface Admission {
  priority: number;
  whenConstrained: "postpone" | "drop";
  ref: DeliveryRef;
  scheduledAt: number;
}

export interface DispatcherOptions {
  deliverer: Deliverer;
  store: DeliveryStore;
  budget: ActivationBudget;
  clock: Clock;
  timers: Pick<TimerLoop, "arm" | "disarm" | "on">;
  /** Activations each partition may have from its own timers and retries (pushes have their per-URL rate). */
  quota: RateLimiter;
  /** Bounds on stored, undelivered work; beyond them enqueue refuses (default DEFAULT_BACKLOG). */
  backlog?: BacklogLimits;
  /** Which stored deliveries are this host's at start: every one (default), or none until adopted (a cluster host). */
  load?: "all" | "adopted";
  onEvent?: (event: DeliveryEvent) => void;
}

export const RETRY_TIMER = "retry";

export class Dispatcher {
  readonly stats: DeliveryStats = { attempts: 0, delivered: 0, failed: 0, retriesScheduled: 0, deadLettered: 0, postponed: {}, dropped: {}, throttled: 0 };
  readonly #o: DispatcherOptions;
  /** Deliveries waiting for a retry, by id (mirrors the store). */
  readonly #pending = new Map<string, Delivery>();
  /** The same deliveries, counted against their bounds. */
  readonly backlog: Backlog;
  readonly #postponed = new Map<string, { priority: number; resume: () => Promise<void> }>();
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Attempts waiting for a slot in the budget, by partition. */
  readonly #queued = new Map<string, number>();
  #stopBudgetWatch: (() => void) | undefined;
  /** Set by stop(): stored work stays stored for the next start, and nothing new is attempted. */
  #stopping = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.backlog = new Backlog(options.backlog ?? DEFAULT_BACKLOG);
    options.timers.on(RETRY_TIMER, (id) => this.#retryDue(id));
  }

  /** Arm every stored retry (or, on a cluster host, none until their partitions are adopted) and follow the budget. */
  async start(): Promise<void> {
    if ((this.#o.load ?? "all") === "all") await this.#arm(await this.#o.store.pending());
    this.#stopBudgetWatch = this.#o.budget.onChange(() => this.#budgetChanged());
  }

  /** Take over the stored deliveries of partitions this host now holds, and arm them. */
  async adopt(partitions: ReadonlySet<string>): Promise<void> {
    await this.#arm((await this.#o.store.pending(partitions)).filter((delivery) => partitions.has(delivery.partition) && !this.#pending.has(delivery.id)));
  }

  /** Forget the deliveries of partitions another host holds now: they stay stored, for it. */
  release(partitions: ReadonlySet<string>): void {
    for (const [id, delivery] of this.#pending) {
      if (!partitions.has(delivery.partition)) continue;
      this.#forget(id);
      this.#postponed.delete(`${RETRY_TIMER}:${id}`);
      void this.#o.timers.disarm(RETRY_TIMER, id);
    }
  }

  async #arm(deliveries: Delivery[]): Promise<void> {
    for (const delivery of deliveries) {
      this.#keep(delivery);
      await this.#o.timers.arm(RETRY_TIMER, delivery.id, delivery.nextAttemptAt ?? this.#o.clock.now());
    }
  }

  /** Attempt nothing more (what is stored stays for the next start) and wait for attempts under way. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#stopBudgetWatch?.();
    await this.settled();
  }

  get busy(): boolean {
    return this.#inFlight.size > 0;
  }

  /** Resolves once no delivery is under way. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Whether an attempt to deliver to the partition waits for a slot in the budget. */
  expects(partition: string): boolean {
    return this.#queued.has(partition);
  }

  get postponedCount(): number {
    return this.#postponed.size;
  }

  pendingDeliveries(): Delivery[] {
    return [...this.#pending.values()];
  }

  deadLetters(): Promise<DeadLetter[]> {
    return this.#o.store.deadLetters();
  }

  /**
   * Whether work may run under the budget now. If not, it is postponed (`resume` runs when
   * the constraint lifts, highest priority first) or dropped, as the work asks; both are counted.
   */
  admit(what: Admission, key: string, resume: () => Promise<void>): "run" | "postponed" | "dropped" {
    if (this.#o.budget.admits(what.priority)) return "run";
    const { priority, scheduledAt, ref } = what;
    const counts = what.whenConstrained === "postpone" ? this.stats.postponed : this.stats.dropped;
    counts[priority] = (counts[priority] ?? 0) + 1;
    if (what.whenConstrained === "postpone") {
      this.#postponed.set(key, { priority, resume });
      this.#emit({ type: "postponed", priority, scheduledAt, ...ref });
      return "postponed";
    }
    this.#emit({ type: "dropped", priority, scheduledAt, ...ref });
    return "dropped";
  }

  /**
   * Take one activation from the partition's quota: 0 when the work may go now, else how
   * long to hold it back (counted and reported). No trigger kind gets past it, however
   * often it re-registers itself.
   */
  throttle(ref: DeliveryRef): number {
    const waitMs = this.#o.quota.takeMs(ref.partition);
    if (waitMs > 0) {
      this.stats.throttled++;
      this.#emit({ type: "throttled", waitMs, ...ref });
    }
    return waitMs;
  }

  /** Deliver once and wait for the guest's answer; not retried: the caller sees a failure and decides. */
  async deliverNow(delivery: Delivery, deadlineMs: number): Promise<CallOutcome> {
    if (this.#stopping) throw new DormantError("partition-unavailable", `The host is shutting down; send task ${delivery.taskName}'s request again shortly.`);
    if (!this.#o.budget.admits(delivery.priority)) {
      const { threshold } = this.#o.budget.state;
      throw new DormantError(
        "constrained",
        `The host is constrained to priority ${threshold} and above; ` +
          `task ${delivery.taskName} has ${delivery.priority}. Retry later or send it with Prefer: respond-async.`,
      );
    }
    const attempt = this.#attempt(delivery, { retries: false });
    this.#track(attempt);
    // A caller's wait is wall time, not the host's schedule: a real timer, whatever the clock.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DormantError("push-deadline", `Task ${delivery.taskName} did not answer within ${deadlineMs} ms.`)), deadlineMs);
    });
    try {
      return await Promise.race([attempt, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Accept an event for delivery: stored before this returns, then delivered at least once.
   * Refused (`partition-unavailable` with `details.backlog`) when its partition's or the host's backlog is full.
   */
  async enqueue(delivery: Delivery): Promise<string> {
    const queued = { ...delivery, nextAttemptAt: this.#o.clock.now() };
    this.backlog.check(queued.partition, weightOf(queued), queued.nextAttemptAt);
    // Counted before the write, so that concurrent requests cannot pass the bound together.
    this.backlog.add(queued);
    try {
      await this.#o.store.putPending(queued);
    } catch (error) {
      this.backlog.remove(queued.id);
      throw error;
    }
    this.#keep(queued);
    this.#track(this.#retryDue(queued.id));
    return queued.id;
  }

  /** Deliver an event whose first attempt is recorded elsewhere (a timer's unadvanced next fire time). */
  deliver(delivery: Delivery): Promise<CallOutcome> {
    return this.#attempt(delivery, { retries: true });
  }

  /** Put a dead letter back for delivery now, with a fresh set of attempts. */
  async retryDeadLetter(id: string): Promise<boolean> {
    const letter = await this.#o.store.deadLetter(id);
    if (!letter) return false;
    const { deadAt: _deadAt, lastError: _lastError, ...delivery } = letter;
    await this.#o.store.removeDeadLetter(id);
    // Attempts keep counting (the guest sees a retry), with the policy's full allowance again.
    const retry = { ...delivery.retry, maxAttempts: delivery.attempts + delivery.retry.maxAttempts };
    this.#track(this.#attempt({ ...delivery, retry }, { retries: true }));
    return true;
  }

  async #retryDue(id: string): Promise<void> {
    const delivery = this.#pending.get(id);
    if (!delivery || this.#stopping) return;
    const verdict = this.admit(admissionOf(delivery), `${RETRY_TIMER}:${id}`, () => this.#retryDue(id));
    if (verdict === "dropped") {
      this.#forget(id);
      await this.#o.store.removePending(id);
    }
    if (verdict !== "run") return;
    const waitMs = delivery.kind === "push" ? 0 : this.throttle(refOf(delivery));
    if (waitMs > 0) await this.#o.timers.arm(RETRY_TIMER, id, this.#o.clock.now() + waitMs);
    else await this.#attempt(delivery, { retries: true });
  }

  #budgetChanged(): void {
    const released = [...this.#postponed].filter(([, p]) => this.#o.budget.admits(p.priority)).sort(([, a], [, b]) => b.priority - a.priority);
    for (const [key, { resume }] of released) {
      this.#postponed.delete(key);
      this.#track(resume().catch((error: Error) => this.#emit({ type: "error", error })));
    }
  }

  /** One attempt; with `retries`, a failure schedules the next attempt or dead-letters. */
  async #attempt(delivery: Delivery, { retries }: { retries: boolean }): Promise<CallOutcome> {
    const { deliverer, budget, clock } = this.#o;
    let firedAt = clock.now();
    let outcome: CallOutcome;
    const started = performance.now();
    let partition = delivery.partition;
    let hostFault: Error | undefined;
    try {
      partition = await deliverer.route(delivery);
      outcome = await this.#inBudget(delivery.priority, partition, () => {
        firedAt = clock.now();
        return deliverer.deliver(partition, taskEventOf(delivery, firedAt));
      });
    } catch (error) {
      outcome = { ok: false, error: `${(error as Error).name}: ${(error as Error).message}` };
      // The host's own faults (an unreachable store, a stopping host) are not the guest's: a caller waiting on the answer is told so.
      if (isDormantError(error, "store-unavailable", "partition-unavailable", "lease-lost")) hostFault = error;
    }
    this.stats.attempts++;
    const ref = { ...refOf(delivery), partition };
    const ms = performance.now() - started;
    this.#emit({
      type: "delivered",
      delivery: delivery.id,
      kind: delivery.kind,
      scheduledAt: delivery.scheduledAt,
      firedAt,
      attempt: delivery.attempts + 1,
      ms,
      outcome,
      ...ref,
    });
    if (outcome.ok) {
      this.stats.delivered++;
      if (this.#forget(delivery.id)) await this.#o.store.removePending(delivery.id);
      return outcome;
    }
    this.stats.failed++;
    if (!retries && hostFault) throw hostFault;
    // A cluster host whose partition moved away mid-attempt: its stored record is the new owner's to deliver.
    if (hostFault && !this.#o.deliverer.has(partition)) {
      this.#forget(delivery.id);
      return outcome;
    }
    // An attempt refused because the host is stopping is no attempt: it is kept, as it was, for the next start.
    const attempts = delivery.attempts + (this.#stopping ? 0 : 1);
    if (retries) await this.#failed({ ...delivery, partition, attempts, lastError: outcome.error }, outcome.error, ref);
    return outcome;
  }

  /** Run an attempt in the budget; while it waits for a slot its partition expects it (see `expects`). */
  #inBudget<T>(priority: number, partition: string, work: () => Promise<T>): Promise<T> {
    this.#countQueued(partition, 1);
    return this.#o.budget.run(priority, () => (this.#countQueued(partition, -1), work()));
  }

  #countQueued(partition: string, by: number): void {
    const count = (this.#queued.get(partition) ?? 0) + by;
    if (count === 0) this.#queued.delete(partition);
    else this.#queued.set(partition, count);
  }

  async #failed(failed: Delivery, error: string, ref: DeliveryRef): Promise<void> {
    const now = this.#o.clock.now();
    if (failed.attempts >= failed.retry.maxAttempts || !this.#o.deliverer.has(failed.partition)) {
      this.#forget(failed.id);
      await this.#o.store.bury({ ...failed, lastError: error, deadAt: now });
      this.stats.deadLettered++;
      this.#emit({ type: "dead-lettered", delivery: failed.id, attempts: failed.attempts, error, ...ref });
      return;
    }
    failed.nextAttemptAt = now + backoffMs(failed.retry, failed.attempts);
    await this.#o.store.putPending(failed);
    this.#keep(failed);
    await this.#o.timers.arm(RETRY_TIMER, failed.id, failed.nextAttemptAt);
    this.stats.retriesScheduled++;
    this.#emit({ type: "retry-scheduled", delivery: failed.id, attempt: failed.attempts + 1, at: failed.nextAttemptAt, error, ...ref });
  }

  #keep(delivery: Delivery): void {
    this.#pending.set(delivery.id, delivery);
    this.backlog.add(delivery);
  }

  #forget(id: string): boolean {
    this.backlog.remove(id);
    return this.#pending.delete(id);
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((error: Error) => this.#emit({ type: "error", error }));
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }

  #emit(event: DeliveryEvent): void {
    this.#o.onEvent?.(event);
  }
}

function admissionOf(delivery: Delivery): Admission {
  return { priority: delivery.priority, whenConstrained: delivery.whenConstrained, ref: refOf(delivery), scheduledAt: delivery.scheduledAt };
}

/** A delivery's id carries its partition after a dot, so a cluster can tell whose shard its stored record is in (cluster/shards.ts). */
export function newDeliveryId(partition: string): string {
  return `e_${randomText(12, "base64url")}.${partition}`;
}
