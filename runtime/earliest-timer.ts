/**
 * One real timer for many due times, armed for the earliest and left armed across them: on
 * a hot path, a timer set and cleared for each request or store call cost tens of µs of
 * the main thread (24 µs on a wake just after idle; 1.1 ms of a 200-timer burst's 41).
 * When it fires, `onDue` settles whatever is due and returns the next due time (Infinity
 * for none), and the timer is armed for that.
 */
export class EarliestTimer {
  readonly #now: () => number;
  readonly #onDue: () => number;
  #timer: NodeJS.Timeout | undefined;
  #at = Infinity;
  #referenced: boolean;

  /** `now` is the clock the due times are on; an unreferenced timer does not keep the process alive. */
  constructor(now: () => number, onDue: () => number, options: { referenced: boolean }) {
    this.#now = now;
    this.#onDue = onDue;
    this.#referenced = options.referenced;
  }

  /** Fire no later than `at` (on the `now` clock). */
  by(at: number): void {
    if (at >= this.#at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(at - this.#now(), 1));
    if (!this.#referenced) this.#timer.unref();
  }

  /** Whether the armed timer keeps the process alive (a store's, only while a call is under way). */
  set referenced(referenced: boolean) {
    this.#referenced = referenced;
    if (referenced) this.#timer?.ref();
    else this.#timer?.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#at = Infinity;
    const next = this.#onDue();
    if (next < Infinity) this.by(next);
  }
}
