// Assembles a host from its parts and is the one place where implementations are chosen:
// the store, the engine and executors, the timer queue and clock, the registries, the
// partition lifecycle, delivery and the background-task service.
import { join, resolve, sep } from "node:path";
import { ExecutorPool, moduleUrl, type LogLevel } from "../runtime/index.ts";
import { ActivationBudget, type BudgetState } from "./budget/budget.ts";
import { PowerFile } from "./budget/power-file.ts";
import { RateLimiter, type RateLimit } from "./budget/rate-limit.ts";
import { ComponentRegistry } from "./components/registry.ts";
import { DeliveryStore } from "./delivery/delivery-store.ts";
import { Dispatcher } from "./delivery/dispatcher.ts";
import type { BacklogLimits } from "./delivery/backlog.ts";
import type { DEFAULT_RETENTION } from "./options.ts";
import type { HostEvent } from "./events.ts";
import { PartitionManager, type Unsaved } from "./partitions/manager.ts";
import type { PartitionLimits } from "./partitions/partition.ts";
import { systemClock, type Clock } from "./scheduler/clock.ts";
import { HeapTimerQueue } from "./scheduler/heap-timer-queue.ts";
import { TimerLoop } from "./scheduler/timer-loop.ts";
import { resolveHostOptions } from "./options.ts";
import { openStore, type Store } from "./store/open.ts";
import { cleanStaging } from "./store/staging.ts";
import { Retention } from "./store/retention.ts";
import { StoreWatch, type StoreHealth } from "./store/watch.ts";
import { SnapshotStore } from "./store/snapshot-store.ts";
import { taskHooks } from "./tasks/hooks.ts";
import type { TaskLimits } from "./tasks/limits.ts";
import type { MisfireOptions } from "./tasks/misfire.ts";
import { TaskRegistry } from "./tasks/registry.ts";
import { TaskService } from "./tasks/service.ts";

export type { HostEvent };

export interface HostOptions {
  /** Data directory: the fs store (unless `store` names another) and the engine cache. Default `./.dormant`. */
  dataDir?: string;
  /** Store URL (`fs:<dir>`, `redis://…`); default the fs store in the data directory. */
  store?: string;
  /**
   * Where transpiled components are cached; default `engine-cache` in the data directory.
   * A folder outside the data directory may be shared with other hosts: its size is
   * reported, but its entries are never deleted.
   */
  engineCacheDir?: string;
  /** Executor threads; default the machine's cores. */
  executors?: number;
  // Defaults: src/options.ts (HOST_DEFAULTS).
  /** Freeze a partition this long after its last event. */
  idleTimeoutMs?: number;
  /** Most partitions live at once (default 1000). */
  maxLive?: number;
  /** Pristine instances kept ready per component in each executor (default 2). */
  spareInstances?: number;
  /** Bytes of recently frozen snapshots kept in memory (default 64 MiB; 0: every wake reads the store). */
  snapshotCacheBytes?: number;
  /** What a partition may register (default DEFAULT_TASK_LIMITS). */
  taskLimits?: Partial<TaskLimits>;
  /** When an on-idle partition that stays busy is saved anyway (default after 1,000 events or 60 s). */
  checkpoint?: Partial<{ events: number; busyMs: number }>;
  /** Defaults for every partition: CPU deadline, memory and snapshot caps. */
  partitionLimits?: Partial<PartitionLimits>;
  misfire?: Partial<MisfireOptions>;
  /** Activations a partition may have from its own timers and retries (default 10/s, bursts of 50). */
  activationQuota?: RateLimit;
  /** Task registrations a partition may make (default 10/s, bursts of 100). */
  registrationQuota?: RateLimit;
  /** Stored, undelivered work a partition and the host may have (default DEFAULT_BACKLOG). */
  backlog?: Partial<BacklogLimits>;
  /** What is kept of dead letters and unused components, the engine cache's size, how often it is swept (default DEFAULT_RETENTION). */
  retention?: Partial<RetentionLimits>;
  budget?: Partial<BudgetState>;
  /** A file whose content constrains the budget (see budget/power-file.ts). */
  powerFile?: string;
  /** How long one store operation may take before it fails as `store-unavailable` (default 10 s). */
  storeTimeoutMs?: number;
  /** How often the store's presence and identity are checked (default 5 s). */
  storeCheckMs?: number;
  /** The host cannot go on (its store was wiped or replaced); default: report it and close. */
  onFatal?: (error: Error) => void;
  /** How long a close may take before it gives up on what is left (default 30 s). */
  shutdownTimeoutMs?: number;
  /** When no stored snapshot verifies: start the partition fresh (default) or refuse. */
  onUnusableSnapshot?: "fresh" | "fail";
  /** The host's clock; tests inject a FakeClock and move it, on the production path. */
  clock?: Clock;
  onEvent?: (event: HostEvent) => void;
  onLog?: (partition: string, level: LogLevel, message: string) => void;
}

export type RetentionLimits = typeof DEFAULT_RETENTION;

/** How a close went: the partitions whose state it could not save (empty when all was saved). */
export interface ShutdownReport {
  unsaved: Unsaved[];
  /** Steps that did not finish within the shutdown timeout. */
  timedOut: string[];
}

export interface Host {
  readonly clock: Clock;
  readonly store: Store;
  readonly pool: ExecutorPool;
  readonly components: ComponentRegistry;
  readonly snapshots: SnapshotStore;
  readonly registry: TaskRegistry;
  readonly partitions: PartitionManager;
  readonly deliveries: Dispatcher;
  readonly tasks: TaskService;
  readonly budget: ActivationBudget;
  /** Removes what is no longer needed and measures the disk (also on its own timer). */
  readonly retention: Retention;
  /** Resolves once no timer handler or delivery is under way. */
  settled(): Promise<void>;
  /** Whether the store answers now (and is still this host's store; a replaced one is fatal). */
  health(): Promise<StoreHealth>;
  /**
   * Stop: no timer wakes and nothing new is attempted, every live partition is frozen
   * first, then the work under way drains; all within the shutdown timeout.
   */
  close(): Promise<ShutdownReport>;
}

const STORE_TIMER = "store";
const RETENTION_TIMER = "retention";
const TASK_BINDING = moduleUrl("./tasks/executor/binding.ts", import.meta.url);
const JCO_ENGINE = moduleUrl("../runtime/jco/jco-engine.ts", import.meta.url);

export async function startHost(given: HostOptions = {}): Promise<Host> {
  const options = resolveHostOptions(given);
  const dataDir = resolve(options.dataDir);
  const clock = options.clock ?? systemClock;
  const emit = (event: HostEvent) => options.onEvent?.(event);
  // What is opened is closed again, in reverse, if a later step fails.
  const opened: (() => Promise<void> | void)[] = [];
  const closeOpened = async () => {
    for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => undefined);
  };
  try {
    const store = await openStore({ dataDir, url: options.store, timeoutMs: options.storeTimeoutMs });
    opened.push(() => store.close());
    // The data directory remembers the store's identity, unless it is the store.
    const inDataDir = store.config.kind === "fs" && store.config.dir === dataDir;
    const watch = await StoreWatch.open(store, inDataDir ? undefined : join(dataDir, "store-identity"), (event) =>
      emit(event.type === "store-unavailable" ? { type: "error", error: event.error } : event),
    );
    const engineCacheDir = options.engineCacheDir ?? join(dataDir, "engine-cache");
    await cleanStaging(engineCacheDir);
    const pool = ExecutorPool.start({
      cacheDir: engineCacheDir,
      hostModule: TASK_BINDING,
      engineModule: JCO_ENGINE,
      size: options.executors,
      onLog: options.onLog,
    });
    opened.push(() => pool.close());
    const timers = new TimerLoop(new HeapTimerQueue(), clock, { onError: (error) => emit({ type: "error", error }) });
    opened.push(() => timers.stop());
    const budget = new ActivationBudget(options.budget);
    const components = new ComponentRegistry(store.components, pool, {
      cacheDir: engineCacheDir,
      ownsCache: options.engineCacheDir === undefined || resolve(options.engineCacheDir).startsWith(dataDir + sep),
      cacheBytes: options.retention.engineCacheBytes,
      unusedMs: options.retention.unusedComponentMs,
      usersOf: (digest) => {
        const running = partitions.list().filter((p) => p.component === digest);
        return {
          partitions: running.map((p) => p.id),
          live: running.some((p) => partitions.stateOf(p.id) !== "frozen"),
          tasks: registry
            .all()
            .filter((t) => t.provision?.component === digest)
            .map((t) => t.id),
        };
      },
      now: () => clock.now(),
      onEvent: emit,
    });
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: options.snapshotCacheBytes });
    const registry = new TaskRegistry(store.registrations);
    const clockFn = () => clock.now();
    await registry.load();
    const partitions = await PartitionManager.open({
      pool,
      records: store.partitions,
      components,
      snapshots,
      clock,
      hooks: taskHooks(registry, options.taskLimits, new RateLimiter(options.registrationQuota, clockFn), options.registrationQuota.perSecond),
      timers,
      idleTimeoutMs: options.idleTimeoutMs,
      maxLive: options.maxLive,
      spareInstances: options.spareInstances,
      partitionLimits: options.partitionLimits,
      checkpoint: options.checkpoint,
      onUnusableSnapshot: options.onUnusableSnapshot,
      onEvent: emit,
    });
    const { deadLettersPerPartition: perPartition, deadLettersHost: hostLimit, deadLetterMaxAgeMs: maxAgeMs } = options.retention;
    const deliveryStore = new DeliveryStore(store.deliveries, store.deadLetters, { perPartition, host: hostLimit, maxAgeMs }, emit);
    const deliveries: Dispatcher = new Dispatcher({
      deliverer: {
        route: (delivery) => tasks.route(delivery),
        deliver: (partition, event) => partitions.deliver(partition, event),
        has: (partition) => partitions.has(partition),
      },
      store: deliveryStore,
      budget,
      clock,
      timers,
      quota: new RateLimiter(options.activationQuota, clockFn),
      backlog: options.backlog,
      onEvent: emit,
    });
    const tasks: TaskService = new TaskService({
      registry,
      partitions,
      dispatcher: deliveries,
      timers,
      budget,
      clock,
      misfire: options.misfire,
      onEvent: emit,
    });
    opened.push(() => deliveries.stop());
    const power = options.powerFile ? new PowerFile(options.powerFile, budget, (error) => emit({ type: "error", error })) : undefined;
    await power?.start();
    opened.push(() => power?.stop());
    await deliveries.start();
    await tasks.start();
    let host: Host | undefined;
    const fatal = (error: Error) => {
      emit({ type: "error", error });
      if (options.onFatal) options.onFatal(error);
      else void host?.close();
    };
    timers.on(STORE_TIMER, async () => {
      try {
        await watch.check();
      } catch (error) {
        return fatal(error as Error);
      }
      await timers.arm(STORE_TIMER, "identity", clock.now() + options.storeCheckMs);
    });
    await timers.arm(STORE_TIMER, "identity", clock.now() + options.storeCheckMs);
    const retention = new Retention({ store, snapshots, deadLetters: deliveryStore, components, now: clockFn });
    timers.on(RETENTION_TIMER, async () => {
      await retention.sweep().catch((error: Error) => emit({ type: "error", error }));
      await timers.arm(RETENTION_TIMER, "sweep", clock.now() + options.retention.sweepMs);
    });
    await timers.arm(RETENTION_TIMER, "sweep", clock.now() + options.retention.sweepMs);
    timers.start();

    const settled = async () => {
      do {
        await timers.settled();
        await deliveries.settled();
      } while (timers.busy || deliveries.busy);
    };
    host = {
      clock,
      store,
      pool,
      components,
      snapshots,
      registry,
      partitions,
      deliveries,
      tasks,
      budget,
      retention,
      settled,
      health: () => watch.check(),
      async close() {
        const deadline = performance.now() + options.shutdownTimeoutMs;
        const timedOut: string[] = [];
        const bounded = async <T>(step: string, work: Promise<T>, fallback: T): Promise<T> => {
          const result = await within(work, deadline - performance.now());
          if (result.done) return result.value;
          timedOut.push(step);
          return fallback;
        };
        // Both stop taking new work at once; waiting for what they have under way comes after the freeze.
        const timersStopped = timers.stop();
        const deliveriesStopped = deliveries.stop();
        power?.stop();
        const unsaved = await bounded("freeze", partitions.close(), undefined);
        await bounded("drain", Promise.all([timersStopped, deliveriesStopped]), undefined);
        const notFrozen = unsaved ?? partitions.liveIds().map((partition) => ({ partition, error: `not frozen within ${options.shutdownTimeoutMs} ms` }));
        // Executors and the store get a moment even when the timeout is spent, so the process can end.
        await within(pool.close(), Math.max(1000, deadline - performance.now()));
        await within(store.close(), Math.max(1000, deadline - performance.now()));
        return { unsaved: notFrozen, timedOut };
      },
    };
    return host;
  } catch (error) {
    await closeOpened();
    throw error;
  }
}

/** `work`'s value, or `{ done: false }` once `ms` have passed (the work goes on, unawaited). */
async function within<T>(work: Promise<T>, ms: number): Promise<{ done: true; value: T } | { done: false }> {
  let timer: NodeJS.Timeout | undefined;
  // A wall-time bound on shutdown, whatever the host's clock: a real timer.
  const timeout = new Promise<{ done: false }>((resolve) => (timer = setTimeout(() => resolve({ done: false }), Math.max(0, ms))));
  try {
    return await Promise.race([work.then((value) => ({ done: true as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
