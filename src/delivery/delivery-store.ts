// Deliveries waiting for a retry, and the dead letters, in the store. A timer event's
// first attempt is not written here: until it succeeds or fails, the task's unadvanced
// next fire time is the record of it, so a crash redelivers it.
import { deserialize, serialize } from "node:v8";
import type { Storage } from "unstorage";
import type { DeadLetter, Delivery } from "./delivery.ts";

export class DeliveryStore {
  readonly #pending: Storage;
  readonly #dead: Storage;

  constructor(pending: Storage, dead: Storage) {
    this.#pending = pending;
    this.#dead = dead;
  }

  async pending(): Promise<Delivery[]> {
    return this.#readAll<Delivery>(this.#pending);
  }

  putPending(delivery: Delivery): Promise<void> {
    return this.#pending.setItemRaw(delivery.id, serialize(delivery));
  }

  removePending(id: string): Promise<void> {
    return this.#pending.removeItem(id);
  }

  async deadLetters(): Promise<DeadLetter[]> {
    return (await this.#readAll<DeadLetter>(this.#dead)).sort((a, b) => a.deadAt - b.deadAt);
  }

  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    const raw = await this.#dead.getItemRaw<Uint8Array>(id);
    return raw ? (deserialize(Buffer.from(raw)) as DeadLetter) : undefined;
  }

  /** Move a delivery to the dead letters (written before the pending copy is removed). */
  async bury(letter: DeadLetter): Promise<void> {
    await this.#dead.setItemRaw(letter.id, serialize(letter));
    await this.#pending.removeItem(letter.id);
  }

  removeDeadLetter(id: string): Promise<void> {
    return this.#dead.removeItem(id);
  }

  async #readAll<T>(storage: Storage): Promise<T[]> {
    const values: T[] = [];
    for (const key of await storage.getKeys()) {
      const raw = await storage.getItemRaw<Uint8Array>(key);
      if (raw) values.push(deserialize(Buffer.from(raw)) as T);
    }
    return values;
  }
}
