// Every operation on a store gets a deadline and one kind of failure: a driver that bounds
// each call by a timeout and turns a timeout or a backend error (a stopped Redis, a
// full disk) into a `store-unavailable` DormantError naming the store. Nothing above can
// then mistake an unsaved write for a saved one, or wait on a hung store for ever.
import type { Driver } from "unstorage";
import { DormantError, EarliestTimer, isDormantError } from "../../../runtime/index.ts";

const GUARDED = [
  "hasItem",
  "getItem",
  "getItems",
  "getItemRaw",
  "setItem",
  "setItems",
  "setItemRaw",
  "removeItem",
  "getMeta",
  "getKeys",
  "clear",
  "getEntriesRaw",
] as const;

export function guardedDriver(driver: Driver, description: string, timeoutMs: number): Driver {
  const calls = new StoreCalls(description, timeoutMs);
  const guarded: Driver = { ...driver };
  for (const name of GUARDED) {
    const op = (driver as unknown as Record<string, unknown>)[name] as ((...args: unknown[]) => unknown) | undefined;
    if (!op) continue;
    (guarded as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
      calls.guard(name, typeof args[0] === "string" ? args[0] : "", () => op.apply(driver, args));
  }
  return guarded;
}

interface Call {
  what: string;
  op: string;
  /** When the call has run past the timeout (performance.now() time). */
  dueAt: number;
  fail: (error: Error) => void;
}

/** A store's calls under way, with one timer for all their timeouts that holds the process open only while a call is under way. */
class StoreCalls {
  readonly #store: string;
  readonly #timeoutMs: number;
  readonly #calls = new Set<Call>();
  // A wall-time bound, whatever the host's clock: a real timer.
  readonly #timer = new EarliestTimer(
    () => performance.now(),
    () => this.#timeOut(),
    { referenced: false },
  );

  constructor(store: string, timeoutMs: number) {
    this.#store = store;
    this.#timeoutMs = timeoutMs;
  }

  async guard<T>(op: string, key: string, work: () => T | Promise<T>): Promise<T> {
    const what = `${op}${key ? ` ${key}` : ""}`;
    const call: Call = { what, op, dueAt: performance.now() + this.#timeoutMs, fail: () => undefined };
    this.#calls.add(call);
    if (this.#calls.size === 1) this.#timer.referenced = true;
    this.#timer.by(call.dueAt);
    try {
      return await new Promise<T>((resolve, reject) => {
        call.fail = reject;
        Promise.resolve().then(work).then(resolve, reject);
      });
    } catch (error) {
      if (isDormantError(error)) throw error;
      throw new DormantError(
        "store-unavailable",
        `The store ${this.#store} failed (${what}): ${(error as Error).message}. ` +
          "Nothing was acknowledged; check the store (is it running, is its disk full?) and retry later.",
        { cause: error, details: { store: this.#store, op } },
      );
    } finally {
      this.#calls.delete(call);
      if (this.#calls.size === 0) this.#timer.referenced = false;
    }
  }

  /** Fail the calls past their timeout; the next one due is when to look again. */
  #timeOut(): number {
    const now = performance.now();
    let next = Infinity;
    for (const call of this.#calls) {
      if (call.dueAt > now) {
        next = Math.min(next, call.dueAt);
        continue;
      }
      this.#calls.delete(call);
      call.fail(
        new DormantError(
          "store-unavailable",
          `The store ${this.#store} did not answer (${call.what}) within ${this.#timeoutMs} ms; nothing was acknowledged. ` +
            "Check that it is running and reachable; retry later.",
          { details: { store: this.#store, op: call.op } },
        ),
      );
    }
    return next;
  }
}
