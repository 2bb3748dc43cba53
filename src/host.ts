// Assembles a host from its parts and is the one place where implementations are chosen:
// the store, the engine and executors, the timer queue and clock, the registries, the
// partition lifecycle, delivery and the background-task service.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join, resolve, sep } from "node:path";
import { DormantError, ExecutorPool, moduleUrl, type LogLevel } from "../runtime/index.ts";
import { ActivationBudget, type BudgetState } from "./budget/budget.ts";
import { PowerFile } from "./budget/power-file.ts";
import { RateLimiter, type RateLimit } from "./budget/rate-limit.ts";
import { ComponentRegistry } from "./components/registry.ts";
import { DeliveryStore } from "./delivery/delivery-store.ts";
import { Dispatcher } from "./delivery/dispatcher.ts";
import type { BacklogLimits } from "./delivery/backlog.ts";
import type { DEFAULT_RETENTION } from "./options.ts";
import type { HostEvent } from "./events.ts";
import { Membership, type ClusterSettings, type ShardOwner } from "./cluster/membership.ts";
import { ensureClusterSchema } from "./cluster/schema.ts";
import { partitionOfKey, shardOf } from "./cluster/shards.ts";
import { newPartitionId, PartitionManager, type Unsaved } from "./partitions/manager.ts";
import type { PartitionLimits, PartitionRecord } from "./partitions/partition.ts";
import { systemClock, type Clock } from "./scheduler/clock.ts";
import { HeapTimerQueue } from "./scheduler/heap-timer-queue.ts";
import { TimerLoop } from "./scheduler/timer-loop.ts";
import { resolveHostOptions } from "./options.ts";
import { openStore, type Store } from "./store/open.ts";
import { readAllRecords } from "./store/records.ts";
import { cleanStaging } from "./store/staging.ts";
import { Retention } from "./store/retention.ts";
import { StoreWatch, type StoreEvent, type StoreHealth } from "./store/watch.ts";
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
  /** Wake a frozen partition this long before its timer is due, so the event finds it live (default 1 s; 0: woken by the event). */
  prewarmMs?: number;
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
  /**
   * Join a cluster of hosts that share the store, which must then be PostgreSQL: partitions
   * are spread over shards leased to the hosts (see docs/cluster.md). Absent: this host owns everything in its store.
   */
  cluster?: Partial<ClusterSettings> & {
    /** The cluster's PostgreSQL database (postgres://…), which is also the store; absent: a single host. */
    url?: string;
    /** This host's id in the cluster (default from the machine's name and the process). */
    host?: string;
    /** The push URL other hosts forward to (default the push listener's address). */
    advertise?: string;
  };
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
  /** On a cluster host: its membership and leases. It joins once its listeners are up (`join`). */
  readonly cluster?: ClusterHost;
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

export interface ClusterHost {
  readonly membership: Membership;
  /** Join with the addresses other hosts forward this host's requests to; takes a share of the shards. */
  join(addresses: { address: string; adminAddress: string }): Promise<void>;
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
    // What the caller gave, with the cluster's defaults: resolveHostOptions types only what has a default.
    const clusterOptions: NonNullable<HostOptions["cluster"]> & ClusterSettings = { ...given.cluster, ...options.cluster };
    const clustered = clusterOptions.url !== undefined;
    if (clustered && options.store !== undefined && options.store !== clusterOptions.url) {
      throw new DormantError(
        "cluster-config",
        `A cluster host's store is the cluster's database: give --cluster ${clusterOptions.url} alone, without --store ${options.store}.`,
      );
    }
    const hostId = clusterOptions.host ?? `h_${hostname()}_${process.pid}_${randomBytes(3).toString("hex")}`;
    let membership: Membership | undefined;
    // On a cluster host every write of a partition's data carries the epoch of its shard's lease; the store refuses a stale one.
    const fence = (key: string) => {
      const partition = partitionOfKey(key);
      if (partition === undefined) return undefined;
      // Before the host has joined, or for a shard it does not hold, no epoch matches: the write is refused.
      return { shard: shardOf(partition, clusterOptions.shards), owner: hostId, epoch: membership?.epochOf(partition) ?? -1 };
    };
    // What the store finds wrong by itself (its identity check, a record journal it cannot fold) is reported as an error.
    const storeEvent = (event: StoreEvent) => emit(event.type === "store-unavailable" ? { type: "error", error: event.error } : event);
    const store = await openStore({
      dataDir,
      url: clusterOptions.url ?? options.store,
      timeoutMs: options.storeTimeoutMs,
      onEvent: storeEvent,
      ...(clustered ? { fence } : {}),
    });
    opened.push(() => store.close());
    if (clustered && store.config.kind !== "postgres") {
      throw new DormantError(
        "cluster-config",
        `A cluster's hosts share one PostgreSQL store, but this host's store is ${store.description}. Start every host with --cluster postgres://…`,
      );
    }
    // The data directory remembers the store's identity, unless it is the store.
    const inDataDir = store.config.kind === "fs" && store.config.dir === dataDir;
    const watch = await StoreWatch.open(store, inDataDir ? undefined : join(dataDir, "store-identity"), storeEvent);
    const engineCacheDir = options.engineCacheDir ?? join(dataDir, "engine-cache");
    await cleanStaging(engineCacheDir);
    const pool = ExecutorPool.start({
      cacheDir: engineCacheDir,
      hostModule: TASK_BINDING,
      engineModule: JCO_ENGINE,
      size: options.executors,
      maxLive: options.maxLive,
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
      // Other hosts' partitions are only in the shared store.
      ...(clustered ? { storedUsers: () => partitionsByComponent(store.partitions) } : {}),
      now: () => clock.now(),
      onEvent: emit,
    });
    const snapshots = new SnapshotStore(store.snapshots, { cacheBytes: options.snapshotCacheBytes });
    const registry = new TaskRegistry(store.registrations, clustered ? store.pushTokens : undefined);
    const clockFn = () => clock.now();
    // A cluster host loads the partitions of the shards it is granted, when it is granted them.
    // Registrations and partition records are read side by side: each is one bulk read.
    const registrationsLoaded = clustered ? Promise.resolve() : registry.load();
    const load = clustered ? "adopted" : "all";
    const opening = PartitionManager.open({
      pool,
      records: store.partitions,
      components,
      snapshots,
      clock,
      hooks: taskHooks(registry, options.taskLimits, new RateLimiter(options.registrationQuota, clockFn), options.registrationQuota.perSecond),
      timers,
      idleTimeoutMs: options.idleTimeoutMs,
      expecting: (partition) => deliveries.expects(partition),
      maxLive: options.maxLive,
      spareInstances: options.spareInstances,
      partitionLimits: options.partitionLimits,
      checkpoint: options.checkpoint,
      onUnusableSnapshot: options.onUnusableSnapshot,
      load,
      // A partition is created in a shard this host holds, so whichever host is asked can create it.
      ...(clustered ? { newId: () => idInHeldShard(membership!) } : {}),
      onEvent: emit,
    });
    const [partitions] = await Promise.all([opening, registrationsLoaded]);
    const { deadLettersPerPartition: perPartition, deadLettersHost: hostLimit, deadLetterMaxAgeMs: maxAgeMs } = options.retention;
    const deliveryStore = new DeliveryStore(store.deliveries, store.deadLetters, { perPartition, host: hostLimit, maxAgeMs }, emit);
    const deliveries: Dispatcher = new Dispatcher({
      deliverer: {
        route: (delivery) => (membership?.check(delivery.partition), tasks.route(delivery)),
        deliver: (partition, event) => (membership?.check(partition), partitions.deliver(partition, event)),
        has: (partition) => partitions.has(partition),
      },
      store: deliveryStore,
      budget,
      clock,
      timers,
      quota: new RateLimiter(options.activationQuota, clockFn),
      backlog: options.backlog,
      load,
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
      prewarmMs: options.prewarmMs,
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
    const retention = new Retention({
      store,
      snapshots,
      deadLetters: deliveryStore,
      components,
      now: clockFn,
      ...(clustered ? { owns: (partition: string) => membership?.owns(partition) ?? false } : {}),
    });
    timers.on(RETENTION_TIMER, async () => {
      await retention.sweep().catch((error: Error) => emit({ type: "error", error }));
      await timers.arm(RETENTION_TIMER, "sweep", clock.now() + options.retention.sweepMs);
    });
    await timers.arm(RETENTION_TIMER, "sweep", clock.now() + options.retention.sweepMs);
    timers.start();

    let cluster: ClusterHost | undefined;
    const sql = store.postgres;
    if (clustered && sql) {
      const settings = { shards: clusterOptions.shards, ttlMs: clusterOptions.ttlMs };
      await ensureClusterSchema(sql.pool, sql.schema, sql.tables, settings);
      const inShards = (ids: string[], shards: ReadonlySet<number>) => ids.filter((id) => shards.has(membership!.shardOf(id)));
      const owner: ShardOwner = {
        async adopt(shards, takenOver) {
          const ids = inShards(await store.partitions.getKeys(), shards);
          const records = await partitions.adopt(ids);
          await registry.adopt(ids);
          await deliveries.adopt(new Set(ids));
          if (takenOver.size > 0) {
            // Counted, because these are the only events a cluster may deliver twice: the lost host may have run them unrecorded.
            const lapsed = inShards(ids, takenOver);
            const now = clock.now();
            const overdueTimers = lapsed.flatMap((id) => registry.tasksOf(id)).filter((task) => task.nextFire !== undefined && task.nextFire <= now).length;
            const pendingDeliveries = deliveries.pendingDeliveries().filter((delivery) => takenOver.has(membership!.shardOf(delivery.partition))).length;
            emit({ type: "takeover", shards: [...takenOver], overdueTimers, pendingDeliveries });
          }
          await tasks.reregister(records);
        },
        async release(shards, how) {
          const ids = inShards(
            partitions.list().map((record) => record.id),
            shards,
          );
          deliveries.release(new Set(ids));
          registry.release(ids);
          await partitions.release(ids, { save: how === "handover" });
        },
        liveByShard() {
          const live = new Map<number, number>();
          for (const id of partitions.liveIds()) {
            const shard = membership!.shardOf(id);
            live.set(shard, (live.get(shard) ?? 0) + 1);
          }
          return live;
        },
      };
      membership = new Membership({ pool: sql.pool, schema: sql.schema, tables: sql.tables, host: hostId, ...settings, owner, timers, clock, onEvent: emit });
      const joined = membership;
      const advertise = clusterOptions.advertise;
      cluster = { membership: joined, join: (addresses) => joined.start(advertise ? { ...addresses, address: advertise } : addresses) };
      opened.push(() => joined.close());
    }

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
      ...(cluster ? { cluster } : {}),
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
        // A cluster host hands its shards over (their partitions saved first) at once, not after its leases run out.
        if (membership) await bounded("handover", membership.leave(), undefined);
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

/** Every stored partition's id, by the component it runs. */
async function partitionsByComponent(records: Store["partitions"]): Promise<Map<string, string[]>> {
  const byComponent = new Map<string, string[]>();
  for (const { value: record } of await readAllRecords<PartitionRecord>(records)) {
    byComponent.set(record.component, [...(byComponent.get(record.component) ?? []), record.id]);
  }
  return byComponent;
}

/** A new partition id whose shard this host holds. */
function idInHeldShard(membership: Membership): string {
  if (membership.heldShards().length > 0) {
    // Ids are random, so each try lands in a held shard with probability held/shards.
    for (let i = 0; i < 100 * membership.settings.shards; i++) {
      const id = newPartitionId();
      if (membership.owns(id)) return id;
    }
  }
  throw new DormantError("partition-unavailable", `Host ${membership.host} holds no shard of the cluster right now; retry in a moment or ask another host.`);
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
