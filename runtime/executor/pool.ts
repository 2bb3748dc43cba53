// The main thread's handle on the executors: a fixed set of worker threads, each hosting
// some partitions. Requests are messages; nothing here runs guest code.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { PreparedComponent } from "../engine.ts";
import { isCompiled, moduleUrl } from "../module-url.ts";
import { enableWasmFeatures } from "../wasm-features.ts";
import type { ActivateResult, ActivationReason, CallLimits, CallResult, FromWorker, LogLevel, Request, SnapshotResult, TaskEvent } from "./protocol.ts";
import { transferList } from "./protocol.ts";
import type { ExecutorData } from "./worker.ts";
import { DormantError, fromErrorData } from "../errors.ts";

export interface ExecutorPoolOptions {
  /** Worker threads to start; default: the machine's cores. */
  size?: number | undefined;
  /** Where the engine caches prepared components. */
  cacheDir: string;
  /** Module (URL) exporting `createEngine`: the engine every executor runs guests on. */
  engineModule: URL;
  /** Module (URL) exporting `createHostBinding`: the host side of the world. */
  hostModule: URL;
  onLog?: ((partition: string, level: LogLevel, message: string) => void) | undefined;
  /** Called when an executor dies; the partitions it hosted are no longer live. */
  onExecutorLost?: (partitions: string[], error: Error) => void;
}

export interface ActivateOptions {
  component: PreparedComponent;
  snapshot?: Uint8Array;
  reason: ActivationReason;
  host: unknown;
  now: number;
  /** Pristine instances to keep ready for this component in the chosen executor. */
  spareInstances: number;
  limits: CallLimits;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

const WORKER = moduleUrl("./worker.ts", import.meta.url);

/** Compiled, the worker is a plain module; from the sources (tests, bench) it registers tsx first. */
function startWorker(workerData: ExecutorData): Worker {
  if (isCompiled(WORKER)) return new Worker(WORKER, { workerData });
  // A worker's `--import` runs too late for its own entry module, so an eval'd bootstrap
  // registers tsx (a devDependency: only the sources need it) and then loads the executor.
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

class Executor {
  readonly pending = new Map<number, Pending>();
  readonly partitions = new Set<string>();
  /** Digests of the components this executor has compiled. */
  readonly compiled = new Set<string>();
  readonly worker: Worker;

  constructor(data: ExecutorData, onMessage: (executor: Executor, message: FromWorker) => void, onExit: (executor: Executor, error: Error) => void) {
    this.worker = startWorker(data);
    this.worker.on("message", (message: FromWorker) => onMessage(this, message));
    this.worker.on("error", (error) => onExit(this, error));
    this.worker.on("exit", (code) => onExit(this, new DormantError("executor-lost", `Executor exited with code ${code}.`)));
  }
}

export class ExecutorPool {
  readonly #options: ExecutorPoolOptions;
  readonly #executors: Executor[] = [];
  readonly #home = new Map<string, Executor>();
  #nextId = 1;
  #turn = 0;
  #closing = false;

  private constructor(options: ExecutorPoolOptions) {
    this.#options = options;
  }

  static start(options: ExecutorPoolOptions): ExecutorPool {
    enableWasmFeatures();
    const pool = new ExecutorPool(options);
    const size = Math.max(1, options.size ?? availableParallelism());
    for (let i = 0; i < size; i++) pool.#executors.push(pool.#spawn());
    return pool;
  }

  get size(): number {
    return this.#executors.length;
  }

  /** Validate and prepare component bytes (in an executor: transpiling is heavy). */
  prepare(bytes: Uint8Array): Promise<PreparedComponent> {
    const executor = this.#executors[this.#turn++ % this.#executors.length]!;
    return this.#send(executor, { op: "prepare", bytes }) as Promise<PreparedComponent>;
  }

  async activate(partition: string, options: ActivateOptions): Promise<ActivateResult & { executor: number }> {
    if (this.#home.has(partition)) throw new Error(`Partition ${partition} is already live.`);
    const executor = this.#leastLoaded();
    executor.partitions.add(partition);
    this.#home.set(partition, executor);
    const { limits, ...rest } = options;
    try {
      // Compiling is the host's work, not the guest's: it happens before the deadline starts.
      if (!executor.compiled.has(options.component.digest)) {
        await this.#send(executor, { op: "compile", component: options.component });
        executor.compiled.add(options.component.digest);
      }
      const request = { op: "activate" as const, partition, ...rest, memoryLimit: limits.memoryBytes };
      const result = (await this.#send(executor, request, transferList(options.snapshot), this.#deadline(partition, limits, "on-activate"))) as ActivateResult;
      return { ...result, executor: this.#executors.indexOf(executor) };
    } catch (error) {
      this.#forget(partition);
      throw error;
    }
  }

  async call(partition: string, event: TaskEvent, host: unknown, now: number, limits: CallLimits): Promise<CallResult> {
    const executor = this.#homeOf(partition);
    try {
      const request = { op: "call" as const, partition, event, host, now, memoryLimit: limits.memoryBytes };
      return (await this.#send(executor, request, [], this.#deadline(partition, limits, `task ${event.taskName}`))) as CallResult;
    } catch (error) {
      // After a trap (or a lost executor) the instance is gone.
      this.#forget(partition);
      throw error;
    }
  }

  /** Snapshot a live partition (it stays live). */
  snapshot(partition: string): Promise<SnapshotResult> {
    return this.#send(this.#homeOf(partition), { op: "snapshot", partition }) as Promise<SnapshotResult>;
  }

  async drop(partition: string): Promise<void> {
    const executor = this.#home.get(partition);
    if (!executor) return;
    this.#forget(partition);
    await this.#send(executor, { op: "drop", partition });
  }

  /** Who to tell when an executor dies: the partitions it hosted are no longer live. */
  setExecutorLostHandler(handler: (partitions: string[], error: Error) => void): void {
    this.#options.onExecutorLost = handler;
  }

  isLive(partition: string): boolean {
    return this.#home.has(partition);
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#executors.map((executor) => executor.worker.terminate()));
  }

  #homeOf(partition: string): Executor {
    const executor = this.#home.get(partition);
    if (!executor) throw new DormantError("partition-not-live", `Partition ${partition} is not live; activate it first.`);
    return executor;
  }

  #forget(partition: string): void {
    this.#home.get(partition)?.partitions.delete(partition);
    this.#home.delete(partition);
  }

  /** An idle executor if there is one (a busy one may be running a long call), then the one hosting fewest partitions. */
  #leastLoaded(): Executor {
    const load = (executor: Executor) => (executor.pending.size > 0 ? 1_000_000 : 0) + executor.partitions.size;
    return this.#executors.reduce((best, executor) => (load(executor) < load(best) ? executor : best));
  }

  #deadline(partition: string, limits: CallLimits, what: string): { ms: number; error: () => Error } {
    return {
      ms: limits.deadlineMs,
      error: () =>
        new DormantError(
          "guest-deadline",
          `Partition ${partition} ran past its ${limits.deadlineMs} ms deadline in ${what}; ` +
            `its executor was stopped and replaced, and it comes back from its last snapshot.`,
        ),
    };
  }

  /**
   * Send a request. With a deadline, a request still running when it passes fails with
   * the deadline's error and the executor is terminated: a runaway guest cannot be
   * interrupted any other way. The executor's other partitions come back from snapshots.
   */
  #send(executor: Executor, request: Request, transfer: ArrayBufferLike[] = [], deadline?: { ms: number; error: () => Error }): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (deadline) {
        timer = setTimeout(() => {
          if (!executor.pending.delete(id)) return;
          reject(deadline.error());
          // Replace it now, so nothing more is sent to a worker on its way out.
          this.#retire(executor, new DormantError("executor-lost", "its executor was stopped: another partition there ran past its deadline"));
          void executor.worker.terminate();
        }, deadline.ms);
      }
      executor.pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      executor.worker.postMessage({ id, request }, transfer as never);
    });
  }

  #spawn(): Executor {
    const data: ExecutorData = { cacheDir: this.#options.cacheDir, engineModule: this.#options.engineModule.href, hostModule: this.#options.hostModule.href };
    return new Executor(
      data,
      (executor, message) => this.#onMessage(executor, message),
      (executor, error) => this.#retire(executor, error),
    );
  }

  #onMessage(executor: Executor, message: FromWorker): void {
    if (message.type === "log") {
      this.#options.onLog?.(message.partition, message.level, message.message);
      return;
    }
    const pending = executor.pending.get(message.id);
    if (!pending) return;
    executor.pending.delete(message.id);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(fromErrorData(message.error));
  }

  /** Take a dead or doomed executor out of service: fail its requests, forget its partitions, start a replacement. */
  #retire(executor: Executor, error: Error): void {
    const index = this.#executors.indexOf(executor);
    if (index < 0) return;
    const lost = new DormantError("executor-lost", `An executor stopped (${error.message}); the partitions it hosted will come back from their snapshots.`);
    for (const pending of executor.pending.values()) pending.reject(lost);
    executor.pending.clear();
    const partitions = [...executor.partitions];
    for (const partition of partitions) this.#home.delete(partition);
    if (this.#closing) return;
    this.#executors[index] = this.#spawn();
    this.#options.onExecutorLost?.(partitions, lost);
  }
}
