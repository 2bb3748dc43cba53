// The host's record of every partition's tasks. Tasks of `host`-mode partitions are
// persisted per partition, as JSON; those of `guest`-mode partitions are a volatile copy
// that the guest rebuilds when the host starts.
import { hash, timingSafeEqual } from "node:crypto";
import type { Storage } from "unstorage";
import type { PartitionSpec, RegistrationMode } from "../partitions/partition.ts";
import { readAllRecords, writeRecord, type RecordMount } from "../store/records.ts";
import type { TaskEffects } from "./executor/background-tasks.ts";
import { DEFAULT_RETRY } from "./limits.ts";
import { viewOf, type TaskRecord, type TaskView } from "./task.ts";

// Held once for every task that has them (most do): a host with 100,000 partitions keeps one
// empty payload and one default retry policy, not one per task. Frozen, so no one changes them for all.
const NO_PAYLOAD = Object.freeze(new Uint8Array(0));
const SHARED_DEFAULT_RETRY = Object.freeze({ ...DEFAULT_RETRY });

function shareCommonParts(task: TaskRecord): void {
  if (task.payload?.byteLength === 0) task.payload = NO_PAYLOAD;
  const { maxAttempts, initialBackoffMs, maxBackoffMs } = task.retry ?? {};
  if (maxAttempts === DEFAULT_RETRY.maxAttempts && initialBackoffMs === DEFAULT_RETRY.initialBackoffMs && maxBackoffMs === DEFAULT_RETRY.maxBackoffMs) {
    task.retry = SHARED_DEFAULT_RETRY;
  }
}

/** Told of every task whose next fire time was set, changed or cleared, or that was registered anew. */
export interface TaskWatcher {
  changed(task: TaskRecord): void;
  removed(task: TaskRecord): void;
}

export class TaskRegistry {
  readonly #storage: RecordMount;
  readonly #byPartition = new Map<string, Map<string, TaskRecord>>();
  readonly #byId = new Map<string, TaskRecord>();
  readonly #byPushToken = new Map<string, TaskRecord>();
  readonly #volatile = new Set<string>();
  #watcher: TaskWatcher | undefined;
  /** Push token digest → partition, shared by a cluster's hosts so any of them can route a push (absent on a single host). */
  readonly #tokenIndex: Storage | undefined;
  /** The digests this host wrote to the token index, by partition. */
  readonly #indexed = new Map<string, Set<string>>();

  constructor(storage: RecordMount, tokenIndex?: Storage) {
    this.#storage = storage;
    this.#tokenIndex = tokenIndex;
  }

  /** Read the persisted tasks from storage (at host start), migrating old encodings. */
  async load(): Promise<void> {
    for (const { value } of await readAllRecords<TaskRecord[]>(this.#storage)) {
      for (const task of value) this.#put(task);
    }
  }

  /** Read the stored tasks of partitions this host takes over (a cluster host gaining their shard); the watcher arms them. */
  async adopt(partitions: readonly string[]): Promise<void> {
    const stored = new Map((await readAllRecords<TaskRecord[]>(this.#storage, partitions)).map(({ key, value }) => [key, value]));
    for (const partition of partitions) {
      const tasks = stored.get(partition) ?? [];
      for (const task of tasks) this.#put(task);
      if (this.#tokenIndex) this.#indexed.set(partition, new Set(tokenDigests(tasks)));
    }
  }

  /** Forget partitions' tasks without touching storage: another host holds them now. The watcher disarms them. */
  release(partitions: Iterable<string>): void {
    for (const partition of partitions) {
      for (const task of this.tasksOf(partition)) this.#delete(task);
      this.#volatile.delete(partition);
      this.#indexed.delete(partition);
    }
  }

  /** The partition a push token belongs to, from the cluster's shared index (another host may hold it). */
  async partitionOfToken(token: string): Promise<string | undefined> {
    const partition = await this.#tokenIndex?.getItem<string>(digestOf(token));
    return typeof partition === "string" ? partition : undefined;
  }

  watch(watcher: TaskWatcher): void {
    this.#watcher = watcher;
    for (const task of this.#byId.values()) watcher.changed(task);
  }

  /** Set where a partition's registrations live; `guest` ones are never written to storage. */
  setMode(partition: string, mode: RegistrationMode): void {
    if (mode === "guest") this.#volatile.add(partition);
    else this.#volatile.delete(partition);
  }

  get(id: string): TaskRecord | undefined {
    return this.#byId.get(id);
  }

  /**
   * The push task whose URL carries this token. Looked up by the token's digest, then
   * compared in constant time: how long it takes says nothing about how close a guess was.
   */
  byPushToken(token: string): TaskRecord | undefined {
    const task = this.#byPushToken.get(digestOf(token));
    if (!task?.pushToken) return undefined;
    const [given, expected] = [Buffer.from(token), Buffer.from(task.pushToken)];
    return given.length === expected.length && timingSafeEqual(given, expected) ? task : undefined;
  }

  tasksOf(partition: string): TaskRecord[] {
    return [...(this.#byPartition.get(partition)?.values() ?? [])];
  }

  /** What an executor sees of a partition's tasks; made for each call (a few objects), not kept for every partition. */
  viewsOf(partition: string): TaskView[] {
    return this.tasksOf(partition).map(viewOf);
  }

  all(): TaskRecord[] {
    return [...this.#byId.values()];
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Commit what a successful call did to its partition's tasks. */
  async apply(partition: string, effects: Pick<TaskEffects, "upserts" | "removals">): Promise<void> {
    if (effects.upserts.length === 0 && effects.removals.length === 0) return;
    for (const name of effects.removals) {
      const task = this.#byPartition.get(partition)?.get(name);
      if (task) this.#delete(task);
    }
    for (const task of effects.upserts) this.#put({ ...task, partition });
    await this.#persist(partition);
  }

  /** Replace one task's record in its partition (a new next fire time). */
  async update(task: TaskRecord): Promise<void> {
    this.#put(task);
    await this.#persist(task.partition);
  }

  async remove(task: TaskRecord): Promise<void> {
    if (this.#byId.get(task.id) !== task) return;
    this.#delete(task);
    await this.#persist(task.partition);
  }

  /**
   * Forget a deleted partition's tasks, except those flagged to outlive it: they stay,
   * marked with what to provision when they next fire.
   */
  async removePartition(partition: string, provision: PartitionSpec): Promise<void> {
    for (const task of this.tasksOf(partition)) {
      if (task.outlivePartition) this.#put({ ...task, provision });
      else this.#delete(task);
    }
    await this.#persist(partition);
  }

  /** Move a deleted partition's surviving tasks to the partition provisioned for them. */
  async move(from: string, to: string): Promise<void> {
    // Same tasks, same ids and times: their armed timers stay as they are.
    for (const task of this.tasksOf(from)) {
      this.#delete(task, false);
      const { provision: _provision, ...moved } = task;
      this.#put({ ...moved, partition: to }, false);
    }
    await this.#persist(from);
    await this.#persist(to);
  }

  #put(task: TaskRecord, notify = true): void {
    let tasks = this.#byPartition.get(task.partition);
    if (!tasks) this.#byPartition.set(task.partition, (tasks = new Map()));
    const replaced = tasks.get(task.name);
    if (replaced && replaced.id !== task.id) this.#delete(replaced);
    const previous = this.#byId.get(task.id);
    if (previous?.pushToken !== undefined) this.#byPushToken.delete(digestOf(previous.pushToken));
    shareCommonParts(task);
    tasks.set(task.name, task);
    this.#byId.set(task.id, task);
    if (task.pushToken !== undefined) this.#byPushToken.set(digestOf(task.pushToken), task);
    const moved = previous?.nextFire !== task.nextFire || previous?.registeredAt !== task.registeredAt;
    if (notify && moved) this.#watcher?.changed(task);
  }

  #delete(task: TaskRecord, notify = true): void {
    const tasks = this.#byPartition.get(task.partition);
    tasks?.delete(task.name);
    if (tasks?.size === 0) this.#byPartition.delete(task.partition);
    this.#byId.delete(task.id);
    if (task.pushToken !== undefined) this.#byPushToken.delete(digestOf(task.pushToken));
    if (notify) this.#watcher?.removed(task);
  }

  async #persist(partition: string): Promise<void> {
    const tasks = this.tasksOf(partition);
    await this.#index(partition, tasks);
    if (this.#volatile.has(partition)) return;
    if (tasks.length === 0) await this.#storage.removeItem(partition);
    else await writeRecord(this.#storage, partition, tasks);
  }

  /** Bring the shared token index in line with a partition's push tasks (guest-mode ones too: their URLs must route). */
  async #index(partition: string, tasks: TaskRecord[]): Promise<void> {
    const index = this.#tokenIndex;
    if (!index) return;
    const now = new Set(tokenDigests(tasks));
    const before = this.#indexed.get(partition) ?? new Set<string>();
    for (const digest of now) if (!before.has(digest)) await index.setItem(digest, partition);
    for (const digest of before) if (!now.has(digest)) await index.removeItem(digest);
    if (now.size > 0) this.#indexed.set(partition, now);
    else this.#indexed.delete(partition);
  }
}

function digestOf(token: string): string {
  // The one-shot hash: a host digests every push token it holds when it starts.
  return hash("sha256", token, "base64url");
}

function tokenDigests(tasks: readonly TaskRecord[]): string[] {
  return tasks.flatMap((task) => (task.pushToken === undefined ? [] : [digestOf(task.pushToken)]));
}
