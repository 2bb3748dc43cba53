// Assembles a host from its parts: the store, the executors, the partition manager.
// This is the one place where implementations are chosen.
import { join, resolve } from "node:path";
import { ExecutorPool } from "../runtime/executor/pool.ts";
import type { LogLevel } from "../runtime/executor/protocol.ts";
import { openStore, type Store } from "./store/open.ts";
import { PartitionManager, type PartitionEvent } from "./partitions/manager.ts";

export interface HostOptions {
  /** Data directory: the fs store (unless `store` names another) and the engine cache. Default `./.dormant`. */
  dataDir?: string;
  /** Store URL (`fs:<dir>`, `redis://…`); default the fs store in the data directory. */
  store?: string;
  /** Executor threads; default the machine's cores. */
  executors?: number;
  idleTimeoutMs?: number;
  maxLive?: number;
  poolSize?: number;
  clock?: () => number;
  onEvent?: (event: PartitionEvent) => void;
  onLog?: (partition: string, level: LogLevel, message: string) => void;
}

export interface Host {
  readonly store: Store;
  readonly pool: ExecutorPool;
  readonly partitions: PartitionManager;
  close(): Promise<void>;
}

const GUEST_BINDING = new URL("./tasks/guest-binding.ts", import.meta.url);

export async function startHost(options: HostOptions = {}): Promise<Host> {
  const dataDir = resolve(options.dataDir ?? ".dormant");
  const store = await openStore({ dataDir, ...(options.store ? { url: options.store } : {}) });
  const pool = ExecutorPool.start({
    cacheDir: join(dataDir, "engine-cache"),
    hostModule: GUEST_BINDING,
    ...(options.executors ? { size: options.executors } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
  });
  const partitions = await PartitionManager.open({
    pool,
    store,
    clock: options.clock ?? Date.now,
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.maxLive !== undefined ? { maxLive: options.maxLive } : {}),
    ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  return {
    store,
    pool,
    partitions,
    async close() {
      await partitions.freezeAll();
      await pool.close();
      await store.close();
    },
  };
}
