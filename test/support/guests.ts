// Which build of an example guest a test runs: the same source on either JS engine.
// A test matrix over engines: `describe.each(JS_ENGINES)("on %s", (engine) => { … deploy("counter", { engine }) … })`.
import { inject } from "vitest";
import { JS_ENGINES, type JsEngine } from "../../runtime/toolchain/js-engines.ts";
import type { GuestFlavour } from "../setup/build-guests.ts";

export { JS_ENGINES, type JsEngine };

/** An example guest by source: the JS ones come in one build per engine. */
export type Guest = "counter" | "counter-v2" | "recorder" | "wat" | "refuses-upgrade";

export interface GuestChoice {
  /** The JS engine; default `DEFAULT_TEST_ENGINE`. */
  engine?: JsEngine;
}

/**
 * The engine of tests that name none. The tests that predate QuickJS guests ran on
 * StarlingMonkey; `DORMANT_TEST_ENGINE=quickjs` runs them all on QuickJS instead.
 */
export const DEFAULT_TEST_ENGINE: JsEngine = process.env.DORMANT_TEST_ENGINE === "quickjs" ? "quickjs" : "starlingmonkey";

/** The flavour name of a guest build, as the global setup provides it. */
export function guestFlavour(guest: Guest, { engine = DEFAULT_TEST_ENGINE }: GuestChoice = {}): GuestFlavour {
  if (guest === "wat" || guest === "refuses-upgrade") return guest;
  return engine === "quickjs" ? `${guest}-qjs` : guest;
}

/** Path of the built component. */
export function guestFile(guest: Guest, choice: GuestChoice = {}): string {
  return inject("guests")[guestFlavour(guest, choice)];
}
