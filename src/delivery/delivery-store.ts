// Deliveries waiting for a retry, and the dead letters, in the store as JSON. A timer
// event's first attempt is not written here: until it succeeds or fails, the task's
// unadvanced next fire time is the record of it, so a crash redelivers it.
import type { Storage } from "unstorage";
import { readAllRecords, readRecord, writeRecord } from "../store/records.ts";
import type { DeadLetter, Delivery } from "./delivery.ts";

export class DeliveryStore {
  readonly #pending: Storage;
  readonly #dead: Storage;

  constructor(pending: Storage, dead: Storage) {
    this.#pending = pending;
    this.#dead = dead;
  }

  async pending(): Promise<Delivery[]> {
    return (await readAllRecords<Delivery>(this.#pending)).map((r) => r.value);
  }

  putPending(delivery: Delivery): Promise<void> {
    return writeRecord(this.#pending, delivery.id, delivery);
  }

  removePending(id: string): Promise<void> {
    return this.#pending.removeItem(id);
  }

  async deadLetters(): Promise<DeadLetter[]> {
    return (await readAllRecords<DeadLetter>(this.#dead)).map((r) => r.value).sort((a, b) => a.deadAt - b.deadAt);
  }

  async deadLetter(id: string): Promise<DeadLetter | undefined> {
    return (await readRecord<DeadLetter>(this.#dead, id))?.value;
  }

  /** Move a delivery to the dead letters (written before the pending copy is removed). */
  async bury(letter: DeadLetter): Promise<void> {
    await writeRecord(this.#dead, letter.id, letter);
    await this.#pending.removeItem(letter.id);
  }

  removeDeadLetter(id: string): Promise<void> {
    return this.#dead.removeItem(id);
  }
}
