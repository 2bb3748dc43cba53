// Deployed components: their bytes in the store (so any host can load them) and their
// prepared form in the engine's cache.
import type { Storage } from "unstorage";
import type { ExecutorPool, PreparedComponent } from "../../runtime/index.ts";
import { DormantError } from "../../runtime/index.ts";

export class ComponentRegistry {
  readonly #storage: Storage;
  readonly #pool: ExecutorPool;
  readonly #prepared = new Map<string, Promise<PreparedComponent>>();

  constructor(storage: Storage, pool: ExecutorPool) {
    this.#storage = storage;
    this.#pool = pool;
  }

  /** Validate and store component bytes; returns its prepared handle (digest included). */
  async add(bytes: Uint8Array): Promise<PreparedComponent> {
    const prepared = await this.#pool.prepare(bytes);
    const key = keyOf(prepared.digest);
    if (!(await this.#storage.hasItem(key))) await this.#storage.setItemRaw(key, bytes);
    this.#prepared.set(prepared.digest, Promise.resolve(prepared));
    return prepared;
  }

  /** Digests of every stored component. */
  async list(): Promise<string[]> {
    return (await this.#storage.getKeys()).map((key) => `sha256:${key}`);
  }

  /** The prepared handle of a stored component, preparing it again after a restart. */
  get(digest: string): Promise<PreparedComponent> {
    let prepared = this.#prepared.get(digest);
    if (!prepared) {
      prepared = this.#storage.getItemRaw<Uint8Array>(keyOf(digest)).then((bytes) => {
        if (!bytes) throw new DormantError("unknown-component", `Component ${digest} is not deployed on this host; deploy it first.`);
        return this.#pool.prepare(new Uint8Array(bytes));
      });
      this.#prepared.set(digest, prepared);
      prepared.catch(() => this.#prepared.delete(digest));
    }
    return prepared;
  }
}

function keyOf(digest: string): string {
  return digest.replace(/^sha256:/, "");
}
