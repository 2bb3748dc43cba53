// The host's activation budget (seed claim 20): how many deliveries may run at once,
// and whether the host is constrained — then only tasks at or above a priority threshold
// run. Waiting deliveries are started highest priority first, then in arrival order.
import { DEFAULT_BUDGET } from "../options.ts";
import { DormantError } from "../../runtime/index.ts";

export interface BudgetState {
  /** Deliveries running at once across all partitions. */
  maxConcurrent: number;
  /** Under a constraint only tasks with priority >= `threshold` run. */
  constrained: boolean;
  threshold: number;
}

interface Waiter {
  priority: number;
  start: () => void;
}

export class ActivationBudget {
  #state: BudgetState;
  #running = 0;
  readonly #waiting: Waiter[] = [];
  readonly #listeners = new Set<(state: BudgetState) => void>();

  constructor(state: Partial<BudgetState> = {}) {
    this.#state = checked({ ...DEFAULT_BUDGET, ...state });
  }

  get state(): BudgetState {
    return { ...this.#state };
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Change the budget; listeners hear of it (postponed work runs when a constraint lifts). */
  set(change: Partial<BudgetState>): BudgetState {
    this.#state = checked({ ...this.#state, ...change });
    this.#startWaiting();
    for (const listener of this.#listeners) listener(this.state);
    return this.state;
  }

  onChange(listener: (state: BudgetState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Whether a task of this priority may run now. */
  admits(priority: number): boolean {
    return !this.#state.constrained || priority >= this.#state.threshold;
  }

  /** Run `work` once a slot is free, ahead of waiting work of lower priority. */
  async run<T>(priority: number, work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#state.maxConcurrent) {
      await new Promise<void>((start) => {
        // After every waiter of its priority or above (usually the last place: no sort per waiter).
        let at = this.#waiting.length;
        while (at > 0 && this.#waiting[at - 1]!.priority < priority) at--;
        this.#waiting.splice(at, 0, { priority, start });
      });
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      this.#running--;
      this.#startWaiting();
    }
  }

  #startWaiting(): void {
    while (this.#running < this.#state.maxConcurrent && this.#waiting.length > 0) {
      this.#running++;
      this.#waiting.shift()!.start();
    }
  }
}

function checked(state: BudgetState): BudgetState {
  if (!Number.isInteger(state.maxConcurrent) || state.maxConcurrent < 1) {
    throw new DormantError("invalid-field", `maxConcurrent must be a whole number of at least 1 (got ${state.maxConcurrent}).`);
  }
  if (!Number.isInteger(state.threshold) || state.threshold < 0 || state.threshold > 255) {
    throw new DormantError("invalid-field", `threshold must be a priority from 0 to 255 (got ${state.threshold}).`);
  }
  if (typeof state.constrained !== "boolean") {
    throw new DormantError("invalid-field", `constrained must be true or false (got ${String(state.constrained)}).`);
  }
  return state;
}
