// Every default of a host and of `dormant serve`, written once, and the settings table
// that drives `dormant serve`'s flags, DORMANT_* variables, config-file keys, help text
// and validation. A leaf module: it imports nothing from the host, so any layer may use it.
import { defu } from "defu";

const MiB = 2 ** 20;

/** Deeply frozen: defu hands out the default objects themselves, so nobody may change them. */
function frozen<T extends object>(value: T): Readonly<T> {
  for (const inner of Object.values(value)) if (typeof inner === "object" && inner !== null) frozen(inner);
  return Object.freeze(value);
}

export const DEFAULT_DATA_DIR = "./.dormant";
/** How long one store operation may take (store/open.ts). */
export const DEFAULT_STORE_TIMEOUT_MS = 10_000;
/** What a partition may register (tasks/limits.ts). */
export const DEFAULT_TASK_LIMITS = frozen({ maxTasks: 1000, minIntervalMs: 1000, maxPayloadBytes: 64 * 1024, maxAttempts: 100 });
/** What one partition may use (partitions/partition.ts). */
export const DEFAULT_PARTITION_LIMITS = frozen({ cpuDeadlineMs: 5000, memoryBytes: 256 * MiB, snapshotBytes: 64 * MiB });
/** Late timer occurrences (tasks/misfire.ts). */
export const DEFAULT_MISFIRE = frozen({ graceMs: 60_000, fireAllCap: 100 });
/** The activation budget's starting state (budget/budget.ts). */
export const DEFAULT_BUDGET = frozen({ maxConcurrent: 64, constrained: false, threshold: 128 });
/** Stored, undelivered work (async pushes, manual fires, retries) a partition and the host may have (delivery/backlog.ts). */
export const DEFAULT_BACKLOG = frozen({ perPartition: 1000, perPartitionBytes: 64 * MiB, host: 20_000, hostBytes: 512 * MiB });
/**
 * What is kept of finished work and unused things (store/retention.ts): dead letters per
 * partition and per host and for how long, how long a component no partition or task uses
 * is kept, the engine cache's size, and how often the sweep runs.
 */
export const DEFAULT_RETENTION = frozen({
  deadLettersPerPartition: 100,
  deadLettersHost: 10_000,
  deadLetterMaxAgeMs: 7 * 24 * 3_600_000,
  unusedComponentMs: 7 * 24 * 3_600_000,
  engineCacheBytes: 1024 * MiB,
  sweepMs: 10 * 60_000,
});
/** The HTTP surface's limits and its doors (http/app.ts). */
export const HTTP_DEFAULTS = frozen({
  maxBodyBytes: 1 * MiB,
  maxComponentBytes: 64 * MiB,
  pushRate: { perSecond: 100, burst: 200 },
  pushDeadlineMs: 10_000,
  guestCsp: "sandbox",
  adminHostnames: [] as string[],
  trustProxy: false,
  sessionTtlMs: 12 * 3_600_000,
  authFailures: { perSecond: 1 / 6, burst: 10 },
});

/** A cluster's shape (cluster/membership.ts): fixed when its schema is created, and the same on every host. */
export const CLUSTER_DEFAULTS = frozen({ shards: 64, ttlMs: 10_000 });

/** A host's defaults, by HostOptions name. Executors default to one per core (the pool decides). */
export const HOST_DEFAULTS = frozen({
  dataDir: DEFAULT_DATA_DIR,
  idleTimeoutMs: 10_000,
  maxLive: 1000,
  /** Spare pristine instances kept per component. */
  spareInstances: 2,
  /** Recently frozen snapshots kept in memory, so a wake reads no disk; the most recent also uncompressed, in at most half of it, so their wake inflates nothing. */
  snapshotCacheBytes: 64 * MiB,
  taskLimits: DEFAULT_TASK_LIMITS,
  partitionLimits: DEFAULT_PARTITION_LIMITS,
  misfire: DEFAULT_MISFIRE,
  /** A frozen partition is woken this long before its timer is due, so the event finds it live (0: woken by the event). */
  prewarmMs: 1000,
  budget: DEFAULT_BUDGET,
  /** Activations a partition may have from its own timers and retries. */
  activationQuota: { perSecond: 10, burst: 50 },
  /** Task registrations a partition may make. */
  registrationQuota: { perSecond: 10, burst: 100 },
  backlog: DEFAULT_BACKLOG,
  retention: DEFAULT_RETENTION,
  /** An on-idle partition that stays busy is saved after this many events, or this long after its first unsaved one. */
  checkpoint: { events: 1000, busyMs: 60_000 },
  onUnusableSnapshot: "fresh" as "fresh" | "fail",
  /** How long one store operation may take before it fails as store-unavailable. */
  storeTimeoutMs: DEFAULT_STORE_TIMEOUT_MS,
  /** How often the store's presence and identity are checked. */
  storeCheckMs: 5_000,
  /** How long a close may take: freeze, drain, then whatever is left is given up and named. */
  shutdownTimeoutMs: 30_000,
  /** Without a URL the host is alone; with one, these settings shape the cluster. */
  cluster: CLUSTER_DEFAULTS,
});

/** `dormant serve`'s defaults, by ServeOptions name. */
export const SERVE_DEFAULTS = frozen({ ...HOST_DEFAULTS, port: 8787, hostname: "127.0.0.1", adminPort: 8788, adminHostname: "127.0.0.1", http: HTTP_DEFAULTS });

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type HostDefaults = typeof HOST_DEFAULTS;

/**
 * Host options with every default filled in (an undefined option never overrides a
 * default), checked once. Pass HostOptions; what has no default passes through.
 */
export function resolveHostOptions<T extends DeepPartial<HostDefaults>>(input: T): Omit<T, keyof HostDefaults> & HostDefaults {
  const options = defu(input, HOST_DEFAULTS) as Omit<T, keyof HostDefaults> & HostDefaults;
  for (const [name, value, min] of [
    ["idleTimeoutMs", options.idleTimeoutMs, 0],
    ["maxLive", options.maxLive, 1],
    ["prewarmMs", options.prewarmMs, 0],
    ["spareInstances", options.spareInstances, 0],
    ["snapshotCacheBytes", options.snapshotCacheBytes, 0],
    ["partitionLimits.cpuDeadlineMs", options.partitionLimits.cpuDeadlineMs, 1],
    ["taskLimits.maxTasks", options.taskLimits.maxTasks, 0],
    ["shutdownTimeoutMs", options.shutdownTimeoutMs, 1],
    ["checkpoint.events", options.checkpoint.events, 1],
    ["checkpoint.busyMs", options.checkpoint.busyMs, 1],
    ["storeTimeoutMs", options.storeTimeoutMs, 1],
    ["storeCheckMs", options.storeCheckMs, 1],
    ["retention.deadLettersPerPartition", options.retention.deadLettersPerPartition, 1],
    ["retention.deadLettersHost", options.retention.deadLettersHost, 1],
    ["retention.deadLetterMaxAgeMs", options.retention.deadLetterMaxAgeMs, 1],
    ["retention.unusedComponentMs", options.retention.unusedComponentMs, 0],
    ["retention.engineCacheBytes", options.retention.engineCacheBytes, 0],
    ["retention.sweepMs", options.retention.sweepMs, 1],
  ] as const) {
    if (!Number.isInteger(value) || value < min) throw new RangeError(`options: ${name} must be a whole number of at least ${min}; got ${String(value)}.`);
  }
  return options;
}

// ---- `dormant serve` settings ----

/** How a setting's value is written and checked. */
export interface Kind {
  /** What the help shows after the flag. */
  arg: string;
  /** A flag's or variable's text as a value (left as text when it is not one, for `problem` to name). */
  fromText(text: string): unknown;
  /** What is wrong with a value ("must be …"), or undefined when it is valid. */
  problem(value: unknown): string | undefined;
}

function integer(arg: string, min: number, max = Number.MAX_SAFE_INTEGER): Kind {
  return {
    arg,
    fromText: (text) => (/^\d+$/.test(text.trim()) ? Number(text) : text),
    problem: (value) =>
      typeof value !== "number" || !Number.isSafeInteger(value) || value < 0
        ? "must be a whole number"
        : value < min
          ? `must be at least ${min}`
          : value > max
            ? `must be at most ${max}`
            : undefined,
  };
}

const positive: Kind = {
  arg: "N",
  fromText: (text) => (text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text),
  problem: (value) => (typeof value === "number" && Number.isFinite(value) && value > 0 ? undefined : "must be a number above 0"),
};

const text = (arg: string): Kind => ({
  arg,
  fromText: (t) => t,
  problem: (value) => (typeof value === "string" && value !== "" ? undefined : "must be a non-empty string"),
});

export interface Setting {
  /** Config-file key; nested keys are dotted ("tasks.maxTasks" is `{"tasks": {"maxTasks": …}}`). */
  key: string;
  /** Long flag, without the dashes; none for a secret, which a flag would show in `ps`. */
  flag?: string;
  env: string;
  kind: Kind;
  help: string;
  /** Where the value goes in ServeOptions (dotted), when not at `key`; its default is read from SERVE_DEFAULTS there. */
  option?: string;
  /** The option holds value × scale (a setting in MiB, an option in bytes). */
  scale?: number;
  /** What happens without a value, when SERVE_DEFAULTS has no default for it. */
  unset?: string;
}

/** A comma-separated list of names. */
const names: Kind = {
  arg: "A,B",
  fromText: (t) =>
    t
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== ""),
  problem: (value) => (Array.isArray(value) && value.every((v) => typeof v === "string" && v !== "") ? undefined : "must be a list of names"),
};

const yesNo: Kind = {
  arg: "true|false",
  fromText: (t) => (/^(1|true|yes)$/i.test(t) ? true : /^(0|false|no)$/i.test(t) ? false : t),
  problem: (value) => (typeof value === "boolean" ? undefined : "must be true or false"),
};

const ms = integer("MS", 0);
const count = integer("N", 1);
const bytes = integer("BYTES", 1);

export const SETTINGS: readonly Setting[] = [
  { key: "dataDir", flag: "data-dir", env: "DORMANT_DATA_DIR", kind: text("DIR"), help: "Data directory: fs store and engine cache" },
  {
    key: "store",
    flag: "store",
    env: "DORMANT_STORE",
    kind: text("URL"),
    help: "Store URL, e.g. redis://127.0.0.1:6379/0?prefix=dormant or postgres://postgres@127.0.0.1:5432/dormant",
    unset: "fs in the data directory",
  },
  { key: "port", flag: "port", env: "DORMANT_PORT", kind: integer("N", 0, 65535), help: "Port (0 picks a free one)" },
  { key: "host", flag: "host", env: "DORMANT_HOST", kind: text("ADDR"), help: "Address to listen on", option: "hostname" },
  { key: "adminPort", flag: "admin-port", env: "DORMANT_ADMIN_PORT", kind: integer("N", 0, 65535), help: "Port of the status page, admin API and metrics" },
  { key: "adminHost", flag: "admin-host", env: "DORMANT_ADMIN_HOST", kind: text("ADDR"), help: "Address the admin port listens on", option: "adminHostname" },
  {
    key: "http.adminHostnames",
    flag: "admin-hostnames",
    env: "DORMANT_ADMIN_HOSTNAMES",
    kind: names,
    help: "Host names the admin port answers to besides localhost and IP addresses (behind a proxy)",
    unset: "none",
  },
  { key: "http.trustProxy", flag: "trust-proxy", env: "DORMANT_TRUST_PROXY", kind: yesNo, help: "Take the client address and host from X-Forwarded-For/-Host" },
  {
    key: "metricsToken",
    env: "DORMANT_METRICS_TOKEN",
    kind: text("TOKEN"),
    help: "Token required to read /metrics (no flag: it would show in ps)",
    unset: "open on the admin port",
  },
  { key: "idleTimeoutMs", flag: "idle-timeout", env: "DORMANT_IDLE_TIMEOUT_MS", kind: ms, help: "Freeze partitions idle this long" },
  {
    key: "shutdownTimeoutMs",
    flag: "shutdown-timeout",
    env: "DORMANT_SHUTDOWN_TIMEOUT_MS",
    kind: integer("MS", 1),
    help: "How long SIGTERM may take to freeze live partitions and drain; then it exits, naming what was not saved",
  },
  {
    key: "checkpoint.events",
    flag: "checkpoint-events",
    env: "DORMANT_CHECKPOINT_EVENTS",
    kind: count,
    help: "An on-idle partition that stays busy is saved after this many events (a kill loses at most these)",
  },
  {
    key: "checkpoint.busyMs",
    flag: "checkpoint-busy",
    env: "DORMANT_CHECKPOINT_BUSY_MS",
    kind: integer("MS", 1),
    help: "… or this long after its first unsaved event, whichever comes first",
  },
  { key: "executors", flag: "executors", env: "DORMANT_EXECUTORS", kind: count, help: "Executor threads", unset: "one per core" },
  {
    key: "powerFile",
    flag: "power-file",
    env: "DORMANT_POWER_FILE",
    kind: text("PATH"),
    help: 'Budget from a file: "normal" | "constrained [threshold]"',
    unset: "none",
  },
  {
    key: "snapshotCacheMiB",
    flag: "snapshot-cache",
    env: "DORMANT_SNAPSHOT_CACHE_MIB",
    kind: integer("MIB", 0),
    help: "Recently frozen snapshots kept in memory, so a warm wake reads no disk (0: none)",
    option: "snapshotCacheBytes",
    scale: MiB,
  },
  {
    key: "prewarmMs",
    flag: "prewarm",
    env: "DORMANT_PREWARM_MS",
    kind: ms,
    help: "Wake a frozen partition this long before its timer is due, so the timer fires on time (0: when due)",
  },
  { key: "maxLive", flag: "max-live", env: "DORMANT_MAX_LIVE", kind: count, help: "Partitions live at once; beyond it the least recently used freeze" },
  {
    key: "maxConcurrent",
    flag: "max-concurrent",
    env: "DORMANT_MAX_CONCURRENT",
    kind: count,
    help: "Deliveries running at once",
    option: "budget.maxConcurrent",
  },
  {
    key: "cpuDeadlineMs",
    flag: "cpu-deadline",
    env: "DORMANT_CPU_DEADLINE_MS",
    kind: integer("MS", 1),
    help: "Time one activation or event may run",
    option: "partitionLimits.cpuDeadlineMs",
  },
  {
    key: "memoryLimitMiB",
    flag: "memory-limit",
    env: "DORMANT_MEMORY_LIMIT_MIB",
    kind: integer("MIB", 1),
    help: "Linear memory per partition",
    option: "partitionLimits.memoryBytes",
    scale: MiB,
  },
  {
    key: "snapshotLimitBytes",
    flag: "snapshot-limit",
    env: "DORMANT_SNAPSHOT_LIMIT_BYTES",
    kind: bytes,
    help: "Largest snapshot",
    option: "partitionLimits.snapshotBytes",
  },
  { key: "tasks.maxTasks", flag: "max-tasks", env: "DORMANT_MAX_TASKS", kind: integer("N", 0), help: "Tasks per partition", option: "taskLimits.maxTasks" },
  {
    key: "tasks.minIntervalMs",
    flag: "min-interval",
    env: "DORMANT_MIN_INTERVAL_MS",
    kind: ms,
    help: "Shortest period of a task",
    option: "taskLimits.minIntervalMs",
  },
  {
    key: "tasks.maxPayloadBytes",
    flag: "max-payload",
    env: "DORMANT_MAX_PAYLOAD_BYTES",
    kind: integer("BYTES", 0),
    help: "Payload of a task",
    option: "taskLimits.maxPayloadBytes",
  },
  {
    key: "tasks.maxAttempts",
    flag: "max-attempts",
    env: "DORMANT_MAX_ATTEMPTS",
    kind: count,
    help: "Attempts a task's retry policy may ask",
    option: "taskLimits.maxAttempts",
  },
  { key: "http.maxBodyBytes", flag: "max-body", env: "DORMANT_MAX_BODY_BYTES", kind: bytes, help: "Push request body" },
  { key: "http.maxComponentBytes", flag: "max-component", env: "DORMANT_MAX_COMPONENT_BYTES", kind: bytes, help: "Uploaded component" },
  { key: "http.pushRate.perSecond", flag: "push-rate", env: "DORMANT_PUSH_RATE", kind: positive, help: "Push requests per second, per push URL" },
  { key: "http.pushRate.burst", flag: "push-burst", env: "DORMANT_PUSH_BURST", kind: count, help: "Burst of push requests, per push URL" },
  {
    key: "http.pushDeadlineMs",
    flag: "push-deadline",
    env: "DORMANT_PUSH_DEADLINE_MS",
    kind: integer("MS", 1),
    help: "How long a synchronous push waits for the guest",
  },
  { key: "http.guestCsp", flag: "guest-csp", env: "DORMANT_GUEST_CSP", kind: text("POLICY"), help: "Content-Security-Policy added to every guest reply" },
  { key: "http.sessionTtlMs", flag: "session-ttl", env: "DORMANT_SESSION_TTL_MS", kind: integer("MS", 1000), help: "How long a status-page sign-in lasts" },
  {
    key: "activationQuota.perSecond",
    flag: "activation-rate",
    env: "DORMANT_ACTIVATION_RATE",
    kind: positive,
    help: "Activations per second a partition may have from its own timers and retries",
  },
  { key: "activationQuota.burst", flag: "activation-burst", env: "DORMANT_ACTIVATION_BURST", kind: count, help: "Burst of a partition's own activations" },
  {
    key: "registrationQuota.perSecond",
    flag: "registration-rate",
    env: "DORMANT_REGISTRATION_RATE",
    kind: positive,
    help: "Task registrations per second a partition may make",
  },
  { key: "registrationQuota.burst", flag: "registration-burst", env: "DORMANT_REGISTRATION_BURST", kind: count, help: "Burst of a partition's registrations" },
  {
    key: "cluster",
    flag: "cluster",
    env: "DORMANT_CLUSTER",
    kind: text("URL"),
    help: "Join a cluster of hosts sharing this PostgreSQL database (postgres://user@host/db?schema=name), which is also the store",
    option: "cluster.url",
    unset: "a single host",
  },
  {
    key: "clusterTtl",
    flag: "cluster-ttl",
    env: "DORMANT_CLUSTER_TTL_MS",
    kind: integer("MS", 1000),
    help: "How long a silent host keeps its partitions before others take them over (the same on every host)",
    option: "cluster.ttlMs",
  },
  {
    key: "clusterShards",
    flag: "cluster-shards",
    env: "DORMANT_CLUSTER_SHARDS",
    kind: integer("N", 1, 4096),
    help: "Shards the partitions are spread over, fixed when the cluster is created",
    option: "cluster.shards",
  },
  {
    key: "clusterAdvertise",
    flag: "cluster-advertise",
    env: "DORMANT_CLUSTER_ADVERTISE",
    kind: text("URL"),
    help: "The push URL other hosts forward to (when this host listens on 0.0.0.0 or behind NAT)",
    option: "cluster.advertise",
    unset: "the push listener's address",
  },
  {
    key: "storeTimeoutMs",
    flag: "store-timeout",
    env: "DORMANT_STORE_TIMEOUT_MS",
    kind: integer("MS", 1),
    help: "How long one store operation may take; then it fails (503 naming the store), never acknowledged",
  },
  {
    key: "storeCheckMs",
    flag: "store-check",
    env: "DORMANT_STORE_CHECK_MS",
    kind: integer("MS", 100),
    help: "How often the store's presence (/healthz) and identity (a wiped store stops the host) are checked",
  },
  {
    key: "backlog.perPartition",
    flag: "max-pending",
    env: "DORMANT_MAX_PENDING",
    kind: count,
    help: "Deliveries waiting per partition (async pushes, fires, retries); beyond it async pushes get 429",
  },
  {
    key: "backlog.perPartitionBytes",
    flag: "max-pending-bytes",
    env: "DORMANT_MAX_PENDING_BYTES",
    kind: bytes,
    help: "Bytes of deliveries waiting per partition; beyond it async pushes get 429",
  },
  {
    key: "backlog.host",
    flag: "max-host-pending",
    env: "DORMANT_MAX_HOST_PENDING",
    kind: count,
    help: "Deliveries waiting on the host; beyond it async pushes get 503",
  },
  {
    key: "backlog.hostBytes",
    flag: "max-host-pending-bytes",
    env: "DORMANT_MAX_HOST_PENDING_BYTES",
    kind: bytes,
    help: "Bytes of deliveries waiting on the host; beyond it async pushes get 503",
  },
  {
    key: "retention.deadLettersPerPartition",
    flag: "max-dead-letters",
    env: "DORMANT_MAX_DEAD_LETTERS",
    kind: count,
    help: "Dead letters kept per partition; beyond it the oldest go (logged and counted)",
  },
  {
    key: "retention.deadLettersHost",
    flag: "max-host-dead-letters",
    env: "DORMANT_MAX_HOST_DEAD_LETTERS",
    kind: count,
    help: "Dead letters kept on the host; beyond it the oldest go",
  },
  {
    key: "retention.deadLetterMaxAgeMs",
    flag: "dead-letter-max-age",
    env: "DORMANT_DEAD_LETTER_MAX_AGE_MS",
    kind: integer("MS", 1),
    help: "Dead letters older than this go",
  },
  {
    key: "retention.unusedComponentMs",
    flag: "unused-component-ttl",
    env: "DORMANT_UNUSED_COMPONENT_TTL_MS",
    kind: ms,
    help: "A component no partition or task uses is removed after this long (0: only by dormant components remove)",
  },
  {
    key: "engineCacheMiB",
    flag: "engine-cache",
    env: "DORMANT_ENGINE_CACHE_MIB",
    kind: integer("MIB", 0),
    help: "Size of the engine cache (transpiled components); beyond it those of frozen partitions go, least recently used first",
    option: "retention.engineCacheBytes",
    scale: MiB,
  },
  {
    key: "retention.sweepMs",
    flag: "retention-sweep",
    env: "DORMANT_RETENTION_SWEEP_MS",
    kind: integer("MS", 1000),
    help: "How often old snapshots, dead letters, unused components and the engine cache are trimmed and disk use measured",
  },
];

/** The value at a dotted path. */
export function getPath(object: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((at, name) => (typeof at === "object" && at !== null ? (at as Record<string, unknown>)[name] : undefined), object);
}

/** Sets the value at a dotted path, making the objects on the way. */
export function setPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const names = path.split(".");
  const last = names.pop()!;
  let at = object;
  for (const name of names) at = (at[name] ??= {}) as Record<string, unknown>;
  at[last] = value;
}

/** Where a setting goes in ServeOptions. */
export const optionOf = (setting: Setting): string => setting.option ?? setting.key;

/** A setting's default as the help shows it. */
export function defaultOf(setting: Setting): string {
  const value = getPath(SERVE_DEFAULTS, optionOf(setting));
  return setting.unset ?? (typeof value === "number" ? String(value / (setting.scale ?? 1)) : String(value));
}
