// Deliveries waiting for a retry, and the dead letters, in the store as JSON. A timer
// event's first attempt is not written here: until it succeeds or fails, the task's
// unadvanced next fire time is the record of it, so a crash redelivers it. A delivered
// event is removed at once. Dead letters are kept within bounds (per partition, per host,
// and by age); beyond them the oldest go, each reported.
import { readAllRecords, readRecord, writeRecord, type RecordMount } from "../store/records.ts";
import type { DeadLetter, Delivery } from "./delivery.ts";

export interface DeadLetterLimits {
  perPartition: number;
  host: number;
  maxAgeMs: number;
}

export type DeadLetterEvicted = {
  type: "dead-letter-evicted";
  delivery: string;
  partition: string;
  task: string;
  name: string;
  deadAt: number;
  reason: "partition-limit" | "host-limit" | "age";
};

type Entry = Pick<DeadLetterEvicted, "partition" | "task" | "name" | "deadAt">;

const entryOf = (letter: DeadLetter): Entry => ({ partition: letter.partition, task: letter.taskId, name: letter.taskName, deadAt: letter.deadAt });

export class DeliveryStore {
  readonly #pending: RecordMount;
  readonly #dead: RecordMount;
  readonly #limits: DeadLetterLimits;
  readonly #onEvict: (event: DeadLetterEvicted) => void;
  /** Every dead letter's partition and time, oldest first, read from the store once. */
  #index: Promise<Map<string, Entry>> | undefined;

  constructor(
    pending: RecordMount,
    dead: RecordMount,
    limits: DeadLetterLimits = { perPartition: Infinity, host: Infinity, maxAgeMs: Infinity },
    onEvict: (event: DeadLetterEvicted) => void = () => undefined,
  ) {
    this.#pending = pending;
    this.#dead = dead;
    this.#limits = limits;
    this.#onEvict = onEvict;
  }

  /** The stored deliveries; with `of`, only those of these partitions (a delivery's id carries its partition), reading no other. */
  async pending(of?: ReadonlySet<string>): Promise<Delivery[]> {
    const keys = of && (await this.#pending.getKeys()).filter((key) => of.has(key.slice(key.indexOf(".") + 1)));
    return (await readAllRecords<Delivery>(this.#pending, keys)).map((r) => r.value);
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

  /** Move a delivery to the dead letters (written before the pending copy is removed); the oldest beyond the bounds go. */
  async bury(letter: DeadLetter): Promise<void> {
    const index = await this.#loadIndex();
    await writeRecord(this.#dead, letter.id, letter);
    index.delete(letter.id);
    index.set(letter.id, entryOf(letter));
    await this.#pending.removeItem(letter.id);
    await this.#trim(index, letter.partition);
  }

  async removeDeadLetter(id: string): Promise<void> {
    await this.#dead.removeItem(id);
    (await this.#index)?.delete(id);
  }

  /** Remove the dead letters older than the age bound (`now`: the host's clock); returns how many went. */
  async expire(now: number, owns: (partition: string) => boolean = () => true): Promise<number> {
    const index = await this.#loadIndex();
    const old = [...index].filter(([, entry]) => now - entry.deadAt > this.#limits.maxAgeMs && owns(entry.partition)).map(([id]) => id);
    for (const id of old) await this.#evict(index, id, "age");
    return old.length;
  }

  /** How many dead letters are kept now. */
  async deadLetterCount(): Promise<number> {
    return (await this.#loadIndex()).size;
  }

  async #trim(index: Map<string, Entry>, partition: string): Promise<void> {
    const ofPartition = [...index].filter(([, entry]) => entry.partition === partition).map(([id]) => id);
    for (const id of ofPartition.slice(0, Math.max(0, ofPartition.length - this.#limits.perPartition))) await this.#evict(index, id, "partition-limit");
    for (const id of [...index.keys()].slice(0, Math.max(0, index.size - this.#limits.host))) await this.#evict(index, id, "host-limit");
  }

  async #evict(index: Map<string, Entry>, id: string, reason: DeadLetterEvicted["reason"]): Promise<void> {
    const entry = index.get(id);
    if (!entry) return; // a concurrent trim took it
    index.delete(id);
    await this.#dead.removeItem(id);
    this.#onEvict({ type: "dead-letter-evicted", delivery: id, ...entry, reason });
  }

  #loadIndex(): Promise<Map<string, Entry>> {
    this.#index ??= this.deadLetters().then((letters) => new Map(letters.map((letter) => [letter.id, entryOf(letter)])));
    // A failed read (the store away) is tried again next time.
    this.#index.catch(() => (this.#index = undefined));
    return this.#index;
  }
}
