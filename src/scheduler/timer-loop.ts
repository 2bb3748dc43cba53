// The host's one timer loop: it sleeps until the earliest armed timer, claims what is
// due, hands each timer to the handler of its kind, and acks it when the handler is done.
// Tests drive it through a FakeClock, on the same path as production.
import type { Clock, TimerHandle } from "./clock.ts";
import type { ClaimedTimer, TimerQueue } from "./timer-queue.ts";

/** Handles one due timer of a kind; `due` is the instant it was armed for. */
export type TimerHandler = (id: string, due: number, now: number) => Promise<void>;

export interface TimerLoopOptions {
  /** Timers claimed per batch. */
  batch?: number;
  /** How long a claim is held before another host may take the timer (extended while its handler runs). */
  leaseMs?: number;
  onError?: (error: Error) => void;
}

/**
 * A suspended machine does not advance timers, and setTimeout cannot wait past ~24.8
 * days: never sleep longer than this without looking at the clock again (as croner does).
 */
export const MAX_SLEEP_MS = 30_000;

export class TimerLoop {
  readonly #queue: TimerQueue;
  readonly #clock: Clock;
  readonly #handlers = new Map<string, TimerHandler>();
  readonly #batch: number;
  readonly #leaseMs: number;
  readonly #onError: (error: Error) => void;
  /** Claims whose handlers are running, with their lease expiry. */
  readonly #claims = new Map<ClaimedTimer, number>();
  readonly #work = new Set<Promise<void>>();
  #handle: TimerHandle | undefined;
  #wakeAt = Infinity;
  #running = false;
  #waking: Promise<void> | undefined;
  #again = false;

  constructor(queue: TimerQueue, clock: Clock, options: TimerLoopOptions = {}) {
    this.#queue = queue;
    this.#clock = clock;
    this.#batch = options.batch ?? 4096;
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Who handles timers of `kind` (keys are `kind:id`). */
  on(kind: string, handler: TimerHandler): void {
    this.#handlers.set(kind, handler);
  }

  /** Arm a timer; a failure to arm is reported, never thrown at a caller that cannot wait. */
  arm(kind: string, id: string, at: number): Promise<void> {
    return this.#queue.arm(`${kind}:${id}`, at).then(
      () => {
        if (this.#running && at < this.#wakeAt) this.#sleepUntil(at);
      },
      (error: Error) => this.#onError(error),
    );
  }

  disarm(kind: string, id: string): Promise<void> {
    return this.#queue.disarm(`${kind}:${id}`).catch((error: Error) => this.#onError(error));
  }

  start(): void {
    this.#running = true;
    this.#wake();
  }

  /** Stop waking and wait for the handlers under way. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    await this.settled();
  }

  get busy(): boolean {
    return this.#waking !== undefined || this.#work.size > 0;
  }

  /** Resolves once no wake or handler is under way. */
  async settled(): Promise<void> {
    while (this.#waking || this.#work.size > 0) {
      await this.#waking;
      await Promise.allSettled([...this.#work]);
    }
  }

  #wake(): void {
    if (this.#waking) {
      this.#again = true;
      return;
    }
    this.#waking = (async () => {
      do {
        this.#again = false;
        await this.#claimAndRun().catch((error: Error) => this.#onError(error));
      } while (this.#again);
      await this.#reschedule();
    })().finally(() => {
      this.#waking = undefined;
    });
  }

  async #claimAndRun(): Promise<void> {
    const now = this.#clock.now();
    // Claims held across a wake keep their leases, before anything due is claimed.
    for (const [timer, expires] of this.#claims) {
      if (expires - now > this.#leaseMs / 2) continue;
      this.#claims.set(timer, now + this.#leaseMs);
      if (!(await this.#queue.extend(timer, now + this.#leaseMs))) this.#claims.delete(timer);
    }
    for (;;) {
      const due = await this.#queue.claimDue(now, this.#batch, this.#leaseMs);
      for (const timer of due) this.#run(timer, now);
      if (due.length < this.#batch) break;
    }
  }

  #run(timer: ClaimedTimer, now: number): void {
    const split = timer.key.indexOf(":");
    const handler = this.#handlers.get(timer.key.slice(0, split));
    this.#claims.set(timer, now + this.#leaseMs);
    const work = (handler ? handler(timer.key.slice(split + 1), timer.at, now) : Promise.resolve())
      .catch((error: Error) => this.#onError(error))
      .then(() => this.#queue.ack(timer))
      .catch((error: Error) => this.#onError(error))
      .finally(() => {
        this.#claims.delete(timer);
        this.#work.delete(work);
      });
    this.#work.add(work);
  }

  async #reschedule(): Promise<void> {
    const next = await this.#queue.nextAt().catch((error: Error) => (this.#onError(error), this.#clock.now() + MAX_SLEEP_MS));
    if (next === undefined && this.#claims.size === 0) {
      this.#clock.clearTimeout(this.#handle);
      this.#handle = undefined;
      this.#wakeAt = Infinity;
      return;
    }
    this.#sleepUntil(next ?? Infinity);
  }

  #sleepUntil(at: number): void {
    if (!this.#running) return;
    const now = this.#clock.now();
    let wakeAt = Math.min(at, now + MAX_SLEEP_MS);
    if (this.#claims.size > 0) wakeAt = Math.min(wakeAt, now + this.#leaseMs / 3);
    this.#clock.clearTimeout(this.#handle);
    this.#wakeAt = wakeAt;
    this.#handle = this.#clock.setTimeout(
      () => {
        this.#handle = undefined;
        this.#wakeAt = Infinity;
        this.#wake();
      },
      Math.max(0, wakeAt - now),
    );
  }
}
