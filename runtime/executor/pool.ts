// The main thread's handle on the executors: a fixed set of worker threads, each hosting
// some partitions. Requests are messages; nothing here runs guest code.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { PreparedComponent } from "../engine.ts";
import { isCompiled, moduleUrl } from "../module-url.ts";
import { enableWasmFeatures } from "../wasm-features.ts";
import type {
  ActivateResult,
  ActivationReason,
  CallLimits,
  CallResult,
  CallsResult,
  Envelope,
  FromWorker,
  LogLevel,
  LogLine,
  Request,
  SnapshotResult,
  TaskEvent,
  UpgradeResult,
} from "./protocol.ts";
import { transferList } from "./protocol.ts";
import type { ExecutorData } from "./worker.ts";
import { DormantError, fromErrorData } from "../errors.ts";
import { RunningSlot, absoluteNow, canInterrupt, interrupt, watchWorkers } from "./interrupt.ts";
import { Quarantine } from "./quarantine.ts";
import { EarliestTimer } from "../earliest-timer.ts";

export interface ExecutorPoolOptions {
  /** Worker threads to start; default: the machine's cores. */
  size?: number | undefined;
  /** Partitions the host keeps live at most: an executor keeps released instances as spares up to its share (see the executor's `release`). */
  maxLive?: number | undefined;
  /** How long an executor stays idle before the spares kept for that share go (default SPARE_TRIM_MS). */
  spareTrimMs?: number | undefined;
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
  /** The event that woke the partition: handled in the same request once it is active (see `ActivateResult.first`). */
  event?: TaskEvent;
  /** Restore without `on-activate`: the partition never stopped (see the request's `resume`). */
  resume?: boolean;
}

/** An activation as the pool hands it back. */
export interface Activated extends Omit<ActivateResult, "first"> {
  executor: number;
  /** The carried event's result, or why it failed (the partition is then no longer live). */
  first?: Called;
}

/** One event of a `calls` request, as the pool hands it back. */
export type Called = { ok: true; result: CallResult } | { ok: false; error: Error };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  deadline?: Deadline;
  /** When the executor's watchdog looks at this request next (absolute ms). */
  checkAt?: number;
}

interface Deadline {
  partition: string;
  ms: number;
  /** Host time the request was sent at (quarantine runs on the host's clock). */
  now: number;
  /** The error, by the phase the request was in (see `RunningSlot.phase`). */
  error: (phase: number) => Error;
}

/** Partitions remembered by the executor they last froze on (see `#frozeOn`); the oldest are forgotten first. */
const FROZE_ON_MAX = 4096;

/** A minute idle, and an executor lets go the spares it kept beyond its own budget. */
const SPARE_TRIM_MS = 60_000;

/** How long an interrupted executor has to confirm it dropped the runaway before it is replaced. */
const RECOVER_MS = 2000;

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
  /** Releases not yet answered: pending, but no guest runs for them. */
  releases = 0;
  readonly partitions = new Set<string>();
  /** Digests of the components this executor has compiled. */
  readonly compiled = new Set<string>();
  readonly worker: Worker;
  readonly running: RunningSlot;
  /** Requests sent during this turn of the event loop, posted together at its end (see `Envelope`). */
  outbox: Envelope[] = [];
  transfers: ArrayBufferLike[] = [];
  /**
   * One timer for all the deadlines of this executor's requests, checked lazily: a queued
   * request is looked at again after a whole deadline, a running one when its own deadline
   * passes (see `ExecutorPool.#checkDeadlines`). Unreferenced: a pending request's worker
   * keeps the process alive.
   */
  readonly watchdog: EarliestTimer;

  constructor(
    data: ExecutorData,
    onMessage: (executor: Executor, message: FromWorker) => void,
    onExit: (executor: Executor, error: Error) => void,
    onDeadlines: (executor: Executor) => number,
  ) {
    this.running = new RunningSlot(data.running);
    this.watchdog = new EarliestTimer(absoluteNow, () => onDeadlines(this), { referenced: false });
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
  /**
   * The executor each recently frozen partition gave its instance back to: it keeps that
   * instance as it froze (see the executor's `release`), so a wake there restores nothing.
   */
  readonly #frozeOn = new Map<string, Executor>();
  #nextId = 1;
  readonly #quarantine = new Quarantine();
  #turn = 0;
  #closing = false;
  #size = 1;

  private constructor(options: ExecutorPoolOptions) {
    this.#options = options;
  }

  static start(options: ExecutorPoolOptions): ExecutorPool {
    enableWasmFeatures();
    watchWorkers();
    const pool = new ExecutorPool(options);
    pool.#size = Math.max(1, options.size ?? availableParallelism());
    for (let i = 0; i < pool.#size; i++) pool.#executors.push(pool.#spawn());
    return pool;
  }

  get size(): number {
    return this.#size;
  }

  /** Validate and prepare component bytes (in an executor: transpiling is heavy). */
  prepare(bytes: Uint8Array): Promise<PreparedComponent> {
    const executor = this.#executors[this.#turn++ % this.#executors.length]!;
    return this.#send(executor, { op: "prepare", bytes }) as Promise<PreparedComponent>;
  }

  /**
   * Make a partition live in the least loaded executor. With an `event`, the executor
   * handles it right after `on-activate`, in the same request: its result (or failure) is
   * `first`. A deadline then fails the whole request; past `on-activate` its error says
   * `details.phase: "call"`.
   */
  async activate(partition: string, options: ActivateOptions): Promise<Activated> {
    if (this.#home.has(partition)) throw new Error(`Partition ${partition} is already live.`);
    this.#quarantine.check(partition, options.now);
    const executor = this.#leastLoaded(this.#frozeOn.get(partition));
    this.#frozeOn.delete(partition);
    executor.partitions.add(partition);
    this.#home.set(partition, executor);
    const { limits, ...rest } = options;
    try {
      await this.#compile(executor, options.component, limits);
      const request = { op: "activate" as const, partition, ...rest, memoryLimit: limits.memoryBytes };
      const event = options.event;
      const deadline = this.#deadline(partition, limits, options.now, (phase) =>
        phase === 1 && event ? { what: `task ${event.taskName}`, details: { phase: "call" } } : { what: "on-activate" },
      );
      const { first, ...result } = (await this.#send(executor, request, transferList(options.snapshot), deadline)) as ActivateResult;
      const activated: Activated = { ...result, executor: this.#executors.indexOf(executor) };
      if (first) activated.first = this.#settled(partition, [first])[0];
      return activated;
    } catch (error) {
      this.#forget(partition);
      throw error;
    }
  }

  /**
   * Make a frozen partition live on a new component version (see the executor's `upgrade`):
   * `from` is the version it ran and its latest snapshot. On failure nothing is live.
   */
  async upgrade(
    partition: string,
    options: Omit<ActivateOptions, "reason" | "snapshot" | "spareInstances"> & { from: { component: PreparedComponent; snapshot?: Uint8Array } },
  ): Promise<UpgradeResult> {
    if (this.#home.has(partition)) throw new Error(`Partition ${partition} is live; freeze it before upgrading.`);
    const executor = this.#leastLoaded();
    executor.partitions.add(partition);
    this.#home.set(partition, executor);
    const { limits, ...rest } = options;
    try {
      for (const component of [options.from.component, options.component]) await this.#compile(executor, component, limits);
      const request = { op: "upgrade" as const, partition, ...rest, memoryLimit: limits.memoryBytes };
      const deadline = this.#deadline(partition, limits, options.now, () => ({ what: "its upgrade" }));
      return (await this.#send(executor, request, transferList(options.from.snapshot), deadline)) as UpgradeResult;
    } catch (error) {
      this.#forget(partition);
      throw error;
    }
  }

  /** One event for a live partition; a trap (or a lost executor) rejects, and the instance is gone. */
  async call(partition: string, event: TaskEvent, host: unknown, now: number, limits: CallLimits): Promise<CallResult> {
    const [outcome] = await this.calls(partition, [event], host, now, limits);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.result;
  }

  /**
   * Events for a live partition, in one request: each sees what the one before it left,
   * and each has the whole deadline. They run as far as they go (see `CallsResult`): after
   * a trap the instance is gone. A deadline, or a lost executor, rejects the whole request;
   * a deadline's error names the event it stopped (`details.index`).
   */
  async calls(partition: string, events: TaskEvent[], host: unknown, now: number, limits: CallLimits): Promise<Called[]> {
    const executor = this.#homeOf(partition);
    try {
      const request = { op: "calls" as const, partition, events, host, now, memoryLimit: limits.memoryBytes };
      const deadline = this.#deadline(partition, limits, now, (phase) => ({
        what: `task ${events[phase]?.taskName}`,
        details: { phase: "call", index: phase },
      }));
      return this.#settled(partition, (await this.#send(executor, request, [], deadline)) as CallsResult);
    } catch (error) {
      this.#forget(partition);
      throw error;
    }
  }

  /** Snapshot a live partition (it stays live). */
  snapshot(partition: string): Promise<SnapshotResult> {
    return this.#send(this.#homeOf(partition), { op: "snapshot", partition }) as Promise<SnapshotResult>;
  }

  /**
   * Release a partition's instance. Nothing waits for the executor's answer: a later
   * request on the same executor queues behind the release, one on another executor does
   * not touch it, and a release cannot fail. A thread round trip saved on every freeze.
   */
  drop(partition: string): Promise<void> {
    const executor = this.#home.get(partition);
    if (!executor) return Promise.resolve();
    this.#forget(partition);
    this.#frozeOn.delete(partition);
    this.#frozeOn.set(partition, executor);
    if (this.#frozeOn.size > FROZE_ON_MAX) this.#frozeOn.delete(this.#frozeOn.keys().next().value!);
    executor.releases++;
    this.#send(executor, { op: "drop", partition })
      .catch(() => undefined)
      .finally(() => executor.releases--);
    return Promise.resolve();
  }

  /** Who to tell when an executor dies: the partitions it hosted are no longer live. */
  setExecutorLostHandler(handler: (partitions: string[], error: Error) => void): void {
    this.#options.onExecutorLost = handler;
  }

  /** Calls stopped at their deadline and quarantines begun, since the pool started. */
  get runaways(): { runaways: number; quarantined: number } {
    return { ...this.#quarantine.counts };
  }

  isLive(partition: string): boolean {
    return this.#home.has(partition);
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#executors.map((executor) => executor.worker.terminate()));
  }

  /** Events as the executor reported them: after a trap (always the last) the instance is gone; else the partition behaved. */
  #settled(partition: string, results: CallsResult): Called[] {
    if (results.at(-1)?.ok === false) this.#forget(partition);
    else this.#quarantine.behaved(partition);
    return results.map((called) => (called.ok ? called : { ok: false, error: fromErrorData(called.error) }));
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

  /**
   * `preferred` if it is idle and still in service; else an idle executor if there is one (a
   * busy one may be running a long call), then the one hosting fewest partitions.
   */
  #leastLoaded(preferred?: Executor): Executor {
    const busy = (executor: Executor) => executor.pending.size > executor.releases;
    if (preferred && !busy(preferred) && this.#executors.includes(preferred)) return preferred;
    const load = (executor: Executor) => (busy(executor) ? 1_000_000 : 0) + executor.partitions.size;
    return this.#executors.reduce((best, executor) => (load(executor) < load(best) ? executor : best));
  }

  /**
   * Have the executor compile a component, once: compiling is the host's work, not the
   * guest's, so it happens before a request's deadline starts. One compiled variant per
   * memory cap: the cap is each memory's maximum (see CompileOptions).
   */
  async #compile(executor: Executor, component: PreparedComponent, limits: CallLimits): Promise<void> {
    const variant = `${component.digest}@${limits.memoryBytes}`;
    if (executor.compiled.has(variant)) return;
    await this.#send(executor, { op: "compile", component, memoryLimit: limits.memoryBytes });
    executor.compiled.add(variant);
  }

  /** A request's deadline; `during` names the guest call that ran past it, by the request's phase (see `RunningSlot.phase`). */
  #deadline(partition: string, limits: CallLimits, now: number, during: (phase: number) => { what: string; details?: Record<string, unknown> }): Deadline {
    return {
      partition,
      ms: limits.deadlineMs,
      now,
      error: (phase) => {
        const { what, details } = during(phase);
        return new DormantError(
          "guest-deadline",
          `Partition ${partition} ran past its ${limits.deadlineMs} ms deadline in ${what}; the call was stopped, and the partition comes back from its last snapshot.`,
          details ? { details } : {},
        );
      },
    };
  }

  /**
   * Send a request. With a deadline, the guest may run that long from when its executor
   * starts the request (time queued behind other requests does not count); a request still
   * running then fails with the deadline's error and is stopped (see `#stop`).
   */
  #send(executor: Executor, request: Request, transfer: ArrayBufferLike[] = [], deadline?: Deadline): Promise<unknown> {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 0x7fff_fff0) + 1; // ids live in an Int32 slot shared with the executor
    return new Promise((resolve, reject) => {
      // An idle executor is woken at once; what follows in the same turn goes with the next post.
      const idle = executor.pending.size === 0 && executor.outbox.length === 0;
      const pending: Pending = { resolve, reject };
      executor.pending.set(id, pending);
      if (deadline) {
        pending.deadline = deadline;
        pending.checkAt = absoluteNow() + deadline.ms;
        executor.watchdog.by(pending.checkAt);
      }
      if (idle) return executor.worker.postMessage([{ id, request }], transfer as never);
      if (executor.outbox.length === 0) setImmediate(() => this.#post(executor));
      executor.outbox.push({ id, request });
      executor.transfers.push(...transfer);
    });
  }

  /** Stop the requests past their deadlines (see `#stop`); the next one due is when to look again. */
  #checkDeadlines(executor: Executor): number {
    const now = absoluteNow();
    let next = Infinity;
    for (const [id, pending] of executor.pending) {
      const { deadline, checkAt } = pending;
      if (!deadline || checkAt === undefined) continue;
      if (checkAt > now) {
        next = Math.min(next, checkAt);
        continue;
      }
      // The phase is read before the claim: an executor that moves on to the carried event
      // just then must not have on-activate's overrun blamed on the event.
      const phase = executor.running.phase();
      const startedAt = executor.running.startedAt(id);
      const left = startedAt === undefined ? deadline.ms : startedAt + deadline.ms - now;
      if (left > 0 || !executor.running.claim(id)) {
        pending.checkAt = now + Math.max(left, 1);
        next = Math.min(next, pending.checkAt);
        continue;
      }
      executor.pending.delete(id);
      pending.reject(deadline.error(phase));
      this.#stop(executor, deadline);
    }
    return this.#executors.includes(executor) ? next : Infinity;
  }

  #post(executor: Executor): void {
    const { outbox, transfers } = executor;
    executor.outbox = [];
    executor.transfers = [];
    if (this.#executors.includes(executor)) executor.worker.postMessage(outbox, transfers as never);
  }

  /**
   * Stop a runaway request (claimed in the executor's running slot). Interrupted, it costs
   * only itself: the executor drops that one instance and its other partitions keep their
   * live state. Where it cannot be interrupted, or does not confirm within RECOVER_MS, the
   * executor is terminated and replaced, and its partitions come back from snapshots.
   */
  #stop(executor: Executor, deadline: Deadline): void {
    this.#forget(deadline.partition);
    const until = this.#quarantine.ranAway(deadline.partition, deadline.now + deadline.ms);
    const quarantine = until === undefined ? "" : `; it ran away repeatedly and is quarantined until ${new Date(until).toISOString()}`;
    this.#options.onLog?.(deadline.partition, "warn", `stopped at its ${deadline.ms} ms deadline${quarantine}`);
    const terminate = (): void => {
      this.#retire(executor, new DormantError("executor-lost", "its executor was stopped: another partition there ran past its deadline"));
      void executor.worker.terminate();
    };
    if (!canInterrupt(executor.worker) || !interrupt(executor.worker)) return terminate();
    const recovered = this.#send(executor, { op: "recover" });
    const backstop = setTimeout(terminate, RECOVER_MS);
    recovered.then(
      () => clearTimeout(backstop),
      () => clearTimeout(backstop),
    );
  }

  #spawn(): Executor {
    const data: ExecutorData = {
      cacheDir: this.#options.cacheDir,
      engineModule: this.#options.engineModule.href,
      hostModule: this.#options.hostModule.href,
      running: new SharedArrayBuffer(16),
      liveShare: Math.ceil((this.#options.maxLive ?? 0) / this.#size),
      spareTrimMs: this.#options.spareTrimMs ?? SPARE_TRIM_MS,
    };
    return new Executor(
      data,
      (executor, message) => this.#onMessage(executor, message),
      (executor, error) => this.#retire(executor, error),
      (executor) => this.#checkDeadlines(executor),
    );
  }

  #onMessage(executor: Executor, message: FromWorker): void {
    if (message.type === "logs") return this.#log(message.logs);
    for (const response of message.responses) {
      this.#log(response.logs);
      const pending = executor.pending.get(response.id);
      if (!pending) continue;
      executor.pending.delete(response.id);
      if (response.ok) pending.resolve(response.value);
      else pending.reject(fromErrorData(response.error));
    }
  }

  #log(lines: LogLine[] | undefined): void {
    for (const line of lines ?? []) this.#options.onLog?.(line.partition, line.level, line.message);
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
