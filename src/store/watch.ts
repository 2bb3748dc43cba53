// Whether the store is there, and still the same store. At first start a random identity
// is written into the store and remembered in the data directory; each check reads it
// back. Unreachable means unhealthy (it recovers by itself when the store answers again);
// a store that answers without the identity, or with another one, was wiped or replaced:
// the host must stop rather than write into it as if nothing had happened.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Store } from "./open.ts";
import { DormantError } from "../../runtime/index.ts";

export const IDENTITY_KEY = "store-identity";

export type StoreEvent =
  | { type: "store-unavailable"; store: string; error: Error }
  | { type: "store-recovered"; store: string; /** What works again, when not the whole store. */ detail?: string };

export type StoreHealth = { ok: true } | { ok: false; error: string };

export class StoreWatch {
  readonly #store: Store;
  readonly #id: string;
  readonly #emit: (event: StoreEvent) => void;
  #healthy = true;
  #checking: Promise<StoreHealth> | undefined;

  private constructor(store: Store, id: string, emit: (event: StoreEvent) => void) {
    this.#store = store;
    this.#id = id;
    this.#emit = emit;
  }

  /**
   * The store's identity, written at its first start. `localFile` (in the data directory,
   * when the store is elsewhere) remembers it, so that a store which comes back empty is
   * refused at start too.
   */
  static async open(store: Store, localFile: string | undefined, emit: (event: StoreEvent) => void = () => undefined): Promise<StoreWatch> {
    const remembered = localFile
      ? await readFile(localFile, "utf8").then(
          (text) => text.trim(),
          () => undefined,
        )
      : undefined;
    let id = await store.root.getItem<string>(IDENTITY_KEY);
    if (typeof id !== "string" || id === "") {
      if (remembered) throw lost(store.description, remembered, undefined, localFile);
      id = `s_${randomBytes(12).toString("base64url")}`;
      await store.root.setItem(IDENTITY_KEY, id);
    } else if (remembered && remembered !== id) {
      throw lost(store.description, remembered, id, localFile);
    }
    if (localFile && remembered !== id) {
      await mkdir(dirname(localFile), { recursive: true, mode: 0o700 });
      await writeFile(localFile, `${id}\n`, { mode: 0o600 });
    }
    return new StoreWatch(store, id, emit);
  }

  get id(): string {
    return this.#id;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /**
   * Read the identity back (concurrent checks share one read). Resolves unhealthy while the
   * store does not answer; throws `store-unavailable` when it answers as another store.
   */
  check(): Promise<StoreHealth> {
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #check(): Promise<StoreHealth> {
    let found: unknown;
    try {
      found = await this.#store.root.getItem(IDENTITY_KEY);
    } catch (error) {
      if (this.#healthy) this.#emit({ type: "store-unavailable", store: this.#store.description, error: error as Error });
      this.#healthy = false;
      return { ok: false, error: (error as Error).message };
    }
    if (found !== this.#id) throw lost(this.#store.description, this.#id, typeof found === "string" ? found : undefined);
    if (!this.#healthy) this.#emit({ type: "store-recovered", store: this.#store.description });
    this.#healthy = true;
    return { ok: true };
  }
}

function lost(store: string, expected: string, found: string | undefined, localFile?: string): DormantError<"store-unavailable"> {
  const now = found ? `holds another identity (${found})` : "holds no identity";
  const fix = localFile
    ? `Restore its data, or point --store at the right one; to start over on an empty store on purpose, delete ${localFile}.`
    : "Restore its data or point --store at the right one, then start the host again.";
  return new DormantError(
    "store-unavailable",
    `The store ${store} is not the one this host was using (identity ${expected}); it now ${now}: it was wiped or replaced. ` +
      `Stopping, so that nothing is written into it as if it held this host's partitions and tasks. ${fix}`,
    { details: { store, lost: true } },
  );
}
