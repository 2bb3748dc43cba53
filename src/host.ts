// Assembles a host from its parts and is the one place where implementations are chosen:
// the store, the engine and executors, the timer queue and clock, the registries, the
// partition lifecycle, delivery and the background-task service.
import { join, resolve } from "node:path";
import { ExecutorPool, moduleUrl, type LogLevel } from "../runtime/index.ts";
import { ActivationBudget, type BudgetState } from "./budget/budget.ts";
import { PowerFile } from "./budget/power-file.ts";
import { RateLimiter, type RateLimit } from "./budget/rate-limit.ts";
import { ComponentRegistry } from "./components/registry.ts";
import { DeliveryStore } from "./delivery/delivery-store.ts";
import { Dispatcher } from "./delivery/dispatcher.ts";
import type { HostEvent } from "./events.ts";
import { PartitionManager } from "./partitions/manager.ts";
import type { PartitionLimits } from "./partitions/partition.ts";
import { systemClock, type Clock } from "./scheduler/clock.ts";
import { HeapTimerQueue } from "./scheduler/heap-timer-queue.ts";
import { TimerLoop } from "./scheduler/timer-loop.ts";
import { resolveHostOptions } from "./options.ts";
import { openStore, type Store } from "./store/open.ts";
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
  /** Where transpiled components are cached; default `engine-cache` in the data directory. */
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
  /** Defaults for every partition: CPU deadline, memory and snapshot caps. */
  partitionLimits?: Partial<PartitionLimits>;
  misfire?: Partial<MisfireOptions>;
  /** Activations a partition may have from its own timers and retries (default 10/s, bursts of 50). */
  activationQuota?: RateLimit;
  /** Task registrations a partition may make (default 10/s, bursts of 100). */
  registrationQuota?: RateLimit;
  budget?: Partial<BudgetState>;
  /** A file whose content constrains the budget (see budget/power-file.ts). */
  powerFile?: string;
  /** When no stored snapshot verifies: start the partition fresh (default) or refuse. */
  onUnusableSnapshot?: "fresh" | "fail";
  /** The host's clock; tests inject a FakeClock and move it, on the production path. */
  clock?: Clock;
  onEvent?: (event: HostEvent) => void;
  onLog?: (partition: string, level: LogLevel, message: string) => void;
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
  /** Resolves once no timer handler or delivery is under way. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

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
    const store = await openStore({ dataDir, ...(options.store ? { url: options.store } : {}) });
    opened.push(() => store.close());
    const pool = ExecutorPool.start({
      cacheDir: options.engineCacheDir ?? join(dataDir, "engine-cache"),
      hostModule: TASK_BINDING,
      engineModule: JCO_ENGINE,
      ...(options.executors ? { size: options.executors } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
    });
    opened.push(() => pool.close());
    const timers = new TimerLoop(new HeapTimerQueue(), clock, { onError: (error) => emit({ type: "error", error }) });
    opened.push(() => timers.stop());
    const budget = new ActivationBudget(options.budget);
    const components = new ComponentRegistry(store.components, pool);
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
      onUnusableSnapshot: options.onUnusableSnapshot,
      onEvent: emit,
    });
    const deliveries: Dispatcher = new Dispatcher({
      deliverer: {
        route: (delivery) => tasks.route(delivery),
        deliver: (partition, event) => partitions.deliver(partition, event),
        has: (partition) => partitions.has(partition),
      },
      store: new DeliveryStore(store.deliveries, store.deadLetters),
      budget,
      clock,
      timers,
      quota: new RateLimiter(options.activationQuota, clockFn),
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
    timers.start();

    const settled = async () => {
      do {
        await timers.settled();
        await deliveries.settled();
      } while (timers.busy || deliveries.busy);
    };
    return {
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
      settled,
      async close() {
        await timers.stop();
        await deliveries.stop();
        power?.stop();
        await partitions.freezeAll();
        await pool.close();
        await store.close();
      },
    };
  } catch (error) {
    await closeOpened();
    throw error;
  }
}
