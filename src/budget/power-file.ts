// A power-state input: a file whose content switches the budget. `constrained` (or
// `constrained <threshold>`) constrains the host; `normal`, an empty file or no file lifts
// the constraint. A device's power daemon, a deploy script or an operator can write it.
import { readFile } from "node:fs/promises";
import { unwatchFile, watchFile } from "node:fs";
import type { ActivationBudget, BudgetState } from "./budget.ts";
import { DormantError } from "../../runtime/index.ts";

/** Parse the file's text into a budget change. */
function parsePowerState(text: string, path: string): Partial<BudgetState> {
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0 || (words.length === 1 && words[0] === "normal")) return { constrained: false };
  if (words[0] === "constrained" && words.length <= 2) {
    if (words.length === 1) return { constrained: true };
    const threshold = Number(words[1]);
    if (Number.isInteger(threshold) && threshold >= 0 && threshold <= 255) return { constrained: true, threshold };
  }
  throw new DormantError("power-file", `${path} says ${JSON.stringify(text.slice(0, 60))}; write "normal", "constrained" or "constrained <priority 0-255>".`);
}

export class PowerFile {
  readonly #path: string;
  readonly #budget: ActivationBudget;
  readonly #onError: (error: Error) => void;

  constructor(path: string, budget: ActivationBudget, onError: (error: Error) => void) {
    this.#path = path;
    this.#budget = budget;
    this.#onError = onError;
  }

  /** Apply the file now, then whenever it changes (polled, so it works for any writer). */
  async start(intervalMs = 1000): Promise<void> {
    await this.check();
    watchFile(this.#path, { interval: intervalMs, persistent: false }, () => void this.check());
  }

  stop(): void {
    unwatchFile(this.#path);
  }

  /** Read the file and apply it to the budget; a bad file is reported and changes nothing. */
  async check(): Promise<void> {
    try {
      const text = await readFile(this.#path, "utf8").catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return "";
        throw error;
      });
      const change = parsePowerState(text, this.#path);
      const state = this.#budget.state;
      if (change.constrained !== state.constrained || (change.threshold !== undefined && change.threshold !== state.threshold)) {
        this.#budget.set(change);
      }
    } catch (error) {
      this.#onError(error as Error);
    }
  }
}
