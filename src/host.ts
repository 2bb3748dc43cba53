// Assembles a host from its parts: the store, the executors, the partition manager, the
// timer queue, the activation budget and the background-task service. This is the one
// place where implementations are chosen.
import { join, resolve } from "node:path";
import { ExecutorPool } from "../runtime/executor/pool.ts";
import type { LogLevel } from "../runtime/executor/protocol.ts";
import { ActivationBudget, type BudgetState } from "./budget/budget.ts";
import { PowerFile } from "./budget/power-file.ts";
import { DeliveryStore } from "./delivery/delivery-store.ts";
import { PartitionManager, type PartitionEvent } from "./partitions/manager.ts";
import type { PartitionLimits } from "./partitions/partition.ts";
import { HeapTimerQueue } from "./scheduler/heap-timer-queue.ts";
import { openStore, type Store } from "./store/open.ts";
import type { TaskLimits } from "./tasks/limits.ts";
import type { MisfireOptions } from "./tasks/misfire.ts";
import { TaskService, type TaskServiceEvent } from "./tasks/service.ts";

export type HostEvent = PartitionEvent | TaskServiceEvent;

export interface HostOptions {
  /** Data directory: the fs store (unless `store` names another) and the engine cache. Default `./.dormant`. */
  dataDir?: string;
  /** Store URL (`fs:<dir>`, `redis://…`); default the fs store in the data directory. */
  store?: string;
  /** Where transpiled components are cached; default `engine-cache` in the data directory. */
  engineCacheDir?: string;
  /** Executor threads; default the machine's cores. */
  executors?: number;
  idleTimeoutMs?: number;
  maxLive?: number;
  poolSize?: number;
  limits?: TaskLimits;
  /** Defaults for every partition: CPU deadline, memory and snapshot caps. */
  partitionLimits?: Partial<PartitionLimits>;
  misfire?: MisfireOptions;
  budget?: Partial<BudgetState>;
  /** A file whose content constrains the budget (see budget/power-file.ts). */
  powerFile?: string;
  /**
   * The host's clock (Unix ms). When one is injected, nothing fires on its own: the
   * caller drives time with `host.tick(now)`. Otherwise timers run on the real clock.
   */
  clock?: () => number;
  onEvent?: (event: HostEvent) => void;
  onLog?: (partition: string, level: LogLevel, message: string) => void;
}

export interface Host {
  readonly store: Store;
  readonly pool: ExecutorPool;
  readonly partitions: PartitionManager;
  readonly tasks: TaskService;
  readonly budget: ActivationBudget;
  /** Fire what is due and freeze what is idle at `now` (for an injected clock). */
  tick(now: number): Promise<void>;
  close(): Promise<void>;
}

const GUEST_BINDING = new URL("./tasks/guest-binding.ts", import.meta.url);
const JCO_ENGINE = new URL("../runtime/jco/jco-engine.ts", import.meta.url);

export async function startHost(options: HostOptions = {}): Promise<Host> {
  const dataDir = resolve(options.dataDir ?? ".dormant");
  const clock = options.clock ?? Date.now;
  const emit = (event: HostEvent) => options.onEvent?.(event);
  const store = await openStore({ dataDir, ...(options.store ? { url: options.store } : {}) });
  const pool = ExecutorPool.start({
    cacheDir: options.engineCacheDir ?? join(dataDir, "engine-cache"),
    hostModule: GUEST_BINDING,
    engineModule: JCO_ENGINE,
    ...(options.executors ? { size: options.executors } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
  });
  const partitions = await PartitionManager.open({
    pool,
    store,
    clock,
    onEvent: emit,
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.maxLive !== undefined ? { maxLive: options.maxLive } : {}),
    ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.partitionLimits ? { partitionLimits: options.partitionLimits } : {}),
  });
  const budget = new ActivationBudget(options.budget);
  const tasks = new TaskService({
    manager: partitions,
    queue: new HeapTimerQueue(),
    deliveries: new DeliveryStore(store.deliveries, store.deadLetters),
    budget,
    clock,
    onEvent: emit,
    ...(options.misfire ? { misfire: options.misfire } : {}),
  });
  const power = options.powerFile ? new PowerFile(options.powerFile, budget, (error) => emit({ type: "error", error })) : undefined;
  await power?.start();
  await tasks.start();

  let idleTimer: NodeJS.Timeout | undefined;
  if (!options.clock) {
    tasks.runOnRealClock();
    const every = Math.min(1000, Math.max(10, (options.idleTimeoutMs ?? 10_000) / 4));
    idleTimer = setInterval(() => void partitions.tick(clock()).catch((error: Error) => emit({ type: "error", error })), every);
    idleTimer.unref();
  }

  return {
    store,
    pool,
    partitions,
    tasks,
    budget,
    async tick(now) {
      await tasks.tick(now);
      await partitions.tick(now);
    },
    async close() {
      clearInterval(idleTimer);
      power?.stop();
      await tasks.stop();
      await partitions.freezeAll();
      await pool.close();
      await store.close();
    },
  };
}
