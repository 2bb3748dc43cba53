// The host's record of every partition's tasks, persisted per partition. Values are
// encoded with V8's serializer: task records carry BigInts and byte arrays.
import { deserialize, serialize } from "node:v8";
import type { Storage } from "unstorage";
import type { TaskEffects } from "./guest-binding.ts";
import type { TaskRecord } from "./task.ts";

export class TaskRegistry {
  readonly #storage: Storage;
  readonly #byPartition = new Map<string, Map<string, TaskRecord>>();

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  /** Read every partition's tasks from storage (at host start). */
  async load(): Promise<void> {
    for (const key of await this.#storage.getKeys()) {
      const raw = await this.#storage.getItemRaw<Uint8Array>(key);
      if (!raw) continue;
      const tasks = deserialize(Buffer.from(raw)) as TaskRecord[];
      this.#byPartition.set(key, new Map(tasks.map((task) => [task.name, task])));
    }
  }

  tasksOf(partition: string): TaskRecord[] {
    return [...(this.#byPartition.get(partition)?.values() ?? [])];
  }

  all(): TaskRecord[] {
    return [...this.#byPartition.values()].flatMap((tasks) => [...tasks.values()]);
  }

  /** Commit what a successful call did to its partition's tasks. */
  async apply(partition: string, effects: TaskEffects): Promise<void> {
    if (effects.upserts.length === 0 && effects.removals.length === 0) return;
    let tasks = this.#byPartition.get(partition);
    if (!tasks) this.#byPartition.set(partition, (tasks = new Map()));
    for (const name of effects.removals) tasks.delete(name);
    for (const task of effects.upserts) tasks.set(task.name, task);
    await this.#persist(partition);
  }

  async removePartition(partition: string): Promise<void> {
    this.#byPartition.delete(partition);
    await this.#storage.removeItem(partition);
  }

  async #persist(partition: string): Promise<void> {
    const tasks = this.tasksOf(partition);
    if (tasks.length === 0) await this.#storage.removeItem(partition);
    else await this.#storage.setItemRaw(partition, serialize(tasks));
  }
}
