// The host's one clock. Everything that asks the time or waits for it goes through a
// Clock, so a test can swap in a FakeClock and drive the same code production runs.
export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

export interface Clock {
  /** Unix milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

interface FakeTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that moves only when told. Timers fire in due order when the clock is set past
 * them; a timer set for the current instant fires on the next turn of the event loop,
 * as a real zero-delay timeout would.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, FakeTimer>();
  #soon: Promise<void> | undefined;

  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: ++this.#seq, at: this.#now + Math.max(0, ms), seq: this.#seq, fn };
    this.#timers.set(timer.id, timer);
    if (timer.at <= this.#now) this.#fireSoon();
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle && typeof handle === "object" && "id" in handle) this.#timers.delete(handle.id as number);
  }

  /** Move the clock to `at` (never backwards), firing every timer due by then in order. */
  set(at: number): void {
    this.#now = Math.max(this.#now, at);
    this.#fireDue();
  }

  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  /** A machine suspend: wall time moves on by `ms`, while pending timers wait that much longer. */
  suspend(ms: number): void {
    this.#now += ms;
    for (const timer of this.#timers.values()) timer.at += ms;
  }

  /** Whether a timer is due now and not yet fired. */
  get pending(): boolean {
    for (const timer of this.#timers.values()) if (timer.at <= this.#now) return true;
    return false;
  }

  /** When the earliest pending timer is due; undefined when none is pending. */
  get next(): number | undefined {
    let next: number | undefined;
    for (const timer of this.#timers.values()) if (next === undefined || timer.at < next) next = timer.at;
    return next;
  }

  /** Resolves once timers due now have fired. */
  async flushed(): Promise<void> {
    while (this.#soon) await this.#soon;
  }

  #fireSoon(): void {
    this.#soon ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.#soon = undefined;
        this.#fireDue();
        resolve();
      }),
    );
  }

  #fireDue(): void {
    for (;;) {
      let next: FakeTimer | undefined;
      for (const timer of this.#timers.values()) {
        if (timer.at <= this.#now && (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) next = timer;
      }
      if (!next) return;
      this.#timers.delete(next.id);
      next.fn();
    }
  }
}
