// Every operation on a store gets a deadline and one kind of failure: a driver that races
// each call against a timeout and turns a timeout or a backend error (a stopped Redis, a
// full disk) into a `store-unavailable` DormantError naming the store. Nothing above can
// then mistake an unsaved write for a saved one, or wait on a hung store for ever.
import type { Driver } from "unstorage";
import { DormantError, isDormantError } from "../../../runtime/index.ts";

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
  const guarded: Driver = { ...driver };
  for (const name of GUARDED) {
    const op = (driver as unknown as Record<string, unknown>)[name] as ((...args: unknown[]) => unknown) | undefined;
    if (!op) continue;
    (guarded as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
      guard(description, timeoutMs, name, typeof args[0] === "string" ? args[0] : "", () => op.apply(driver, args));
  }
  return guarded;
}

async function guard<T>(store: string, timeoutMs: number, op: string, key: string, work: () => T | Promise<T>): Promise<T> {
  const what = `${op}${key ? ` ${key}` : ""}`;
  let timer: NodeJS.Timeout | undefined;
  // A wall-time bound on one store call, whatever the host's clock: a real timer.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DormantError(
            "store-unavailable",
            `The store ${store} did not answer (${what}) within ${timeoutMs} ms; nothing was acknowledged. ` +
              "Check that it is running and reachable; retry later.",
            { details: { store, op } },
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([Promise.resolve().then(work), timeout]);
  } catch (error) {
    if (isDormantError(error)) throw error;
    throw new DormantError(
      "store-unavailable",
      `The store ${store} failed (${what}): ${(error as Error).message}. ` +
        "Nothing was acknowledged; check the store (is it running, is its disk full?) and retry later.",
      { cause: error, details: { store, op } },
    );
  } finally {
    clearTimeout(timer);
  }
}
