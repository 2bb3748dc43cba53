/**
 * Opens Dormant's storage from a store URL.
 *
 * The embedded default is a directory on disk written through the crash-safe
 * fs-atomic driver; Redis or PostgreSQL can be selected for shared deployments
 * (PostgreSQL is the one a cluster of hosts shares, with fenced writes). Everything
 * above this file sees only unstorage `Storage` mounts, so the backend is a
 * deployment choice, not a code path.
 *
 * The fs store is one process's: it holds its directory's lock (drivers/fs-lock.ts) from
 * open to close, and a second opener fails at once with `store-locked`.
 */
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createStorage, prefixStorage, type Driver, type Storage } from "unstorage";
import redisDriver from "unstorage/drivers/redis";
import { DEFAULT_DATA_DIR, DEFAULT_STORE_TIMEOUT_MS } from "../options.ts";
import fsAtomicDriver from "./drivers/fs-atomic.ts";
import { guardedDriver } from "./drivers/guarded.ts";
import type { Fence, PostgresConfig, PostgresStore } from "./drivers/postgres.ts";
import { entriesOneByOne, type RawEntry, type RecordMount } from "./records.ts";
import type { StoreEvent } from "./watch.ts";
import { DormantError } from "../../runtime/index.ts";

export interface Store {
  /** Root unstorage instance; mounts below. */
  readonly root: Storage;
  readonly snapshots: Storage;
  readonly registrations: RecordMount;
  readonly components: Storage;
  readonly partitions: RecordMount;
  /** Deliveries waiting for a retry. */
  readonly deliveries: RecordMount;
  readonly deadLetters: RecordMount;
  /** A cluster's index of push tokens (digest → partition), so any host can route a push. */
  readonly pushTokens: Storage;
  /** Human-readable location, without credentials, e.g. "fs:/abs/.dormant". */
  readonly description: string;
  /** Where the store is, as its URL said. */
  readonly config: StoreConfig;
  /** For a PostgreSQL store: its pool, schema and tables, for the cluster layer's own queries. */
  readonly postgres?: Omit<PostgresStore, "driver"> | undefined;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /**
   * Store URL: absent, `fs:<dir>`, `file:<url>`, a plain path, `redis://host:port[/db][?prefix=name]`,
   * or `postgres://[user[:password]@]host[:port]/database[?schema=name]`.
   */
  url?: string | undefined;
  /** Data directory for the fs store when `url` is absent (default `./.dormant`). */
  dataDir?: string;
  /** How long one store operation may take before it fails as `store-unavailable` (default 10 s). */
  timeoutMs?: number;
  /** The shard lease each write needs (PostgreSQL only): see src/store/drivers/postgres.ts. */
  fence?: ((key: string) => Fence | undefined) | undefined;
  /** What the store finds wrong outside any one operation, and when it is right again: an fs store's record journal it cannot fold. */
  onEvent?: ((event: StoreEvent) => void) | undefined;
}

export type StoreConfig =
  { kind: "fs"; dir: string; description: string } | { kind: "redis"; connectionUrl: string; db: number; prefix: string; description: string } | PostgresConfig;

const EXAMPLES =
  `Supported: a directory path, "fs:<dir>", "file:///abs/dir", "redis://host:port[/db][?prefix=name]" ` +
  `or "postgres://[user[:password]@]host[:port]/database[?schema=name]" ` +
  `(e.g. --store fs:./.dormant, --store redis://127.0.0.1:6379/0?prefix=dormant or --store postgres://postgres@127.0.0.1:5432/dormant).`;

/** The store URL could not be understood; nothing was opened. */
export function storeConfigError(url: string, problem: string): DormantError<"store-config"> {
  return new DormantError("store-config", `Invalid store URL ${JSON.stringify(url)}: ${problem}. ${EXAMPLES}`, { details: { url } });
}

export const DEFAULT_REDIS_PREFIX = "dormant";
const REDIS_PREFIX_RE = /^[A-Za-z0-9_.-]{1,128}$/;
export const DEFAULT_POSTGRES_SCHEMA = "dormant";
/** A plain identifier, so it needs no quoting to be typed in psql (PostgreSQL folds unquoted names to lower case). */
const POSTGRES_SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;
/** At least two letters, so Windows drive letters ("C:\data") read as paths. */
const SCHEME_RE = /^([a-zA-Z][a-zA-Z0-9+.-]+):/;

function fsConfig(dir: string): StoreConfig {
  const abs = resolve(dir);
  return { kind: "fs", dir: abs, description: `fs:${abs}` };
}

/** Parses a store URL without touching the backend. */
export function parseStoreUrl(url: string | undefined, dataDir = DEFAULT_DATA_DIR): StoreConfig {
  const text = url?.trim() ?? "";
  if (text === "") return fsConfig(dataDir);

  const scheme = SCHEME_RE.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return fsConfig(text);

  switch (scheme) {
    case "fs": {
      let rest = text.slice(scheme.length + 1);
      if (rest.startsWith("///")) rest = rest.slice(2);
      else if (rest.startsWith("//")) {
        throw storeConfigError(text, `"fs://" needs an absolute path ("fs:///abs/dir") or use "fs:<dir>"`);
      }
      return fsConfig(rest === "" ? dataDir : rest);
    }
    case "file":
      try {
        return fsConfig(fileURLToPath(text));
      } catch (err) {
        throw storeConfigError(text, `not a valid file URL (${(err as Error).message})`);
      }
    case "redis":
    case "rediss":
      return parseRedisUrl(text);
    case "postgres":
    case "postgresql":
      return parsePostgresUrl(text);
    default:
      throw storeConfigError(text, `unsupported scheme "${scheme}:"`);
  }
}

function parseRedisUrl(text: string): StoreConfig {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw storeConfigError(text, "it is not a well-formed URL");
  }
  if (u.hostname === "") throw storeConfigError(text, "the Redis host is missing");
  const port = u.port === "" ? 6379 : Number(u.port);

  const dbText = u.pathname.replace(/^\//, "");
  if (dbText !== "" && !/^\d{1,5}$/.test(dbText)) {
    throw storeConfigError(text, `the database "/${dbText}" must be a number such as /0`);
  }
  const db = dbText === "" ? 0 : Number(dbText);

  for (const key of u.searchParams.keys()) {
    if (key !== "prefix") {
      throw storeConfigError(text, `unknown query parameter "${key}" (only "prefix" is supported)`);
    }
  }
  const prefix = u.searchParams.get("prefix") ?? DEFAULT_REDIS_PREFIX;
  if (!REDIS_PREFIX_RE.test(prefix)) {
    throw storeConfigError(text, `the prefix ${JSON.stringify(prefix)} must match ${REDIS_PREFIX_RE}`);
  }

  // ioredis merges query parameters into its options, so hand it the URL
  // without ours. Credentials stay in the connection URL only.
  const auth = u.username || u.password ? `${u.username}${u.password ? `:${u.password}` : ""}@` : "";
  const hostPort = `${u.hostname}:${port}`;
  return {
    kind: "redis",
    connectionUrl: `${u.protocol}//${auth}${hostPort}/${db}`,
    db,
    prefix,
    description: `${u.protocol}//${hostPort}/${db} (prefix ${prefix})`,
  };
}

function parsePostgresUrl(text: string): PostgresConfig {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw storeConfigError(text, "it is not a well-formed URL");
  }
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw storeConfigError(text, `the ${what} is not validly percent-encoded`);
    }
  };
  if (u.hostname === "") throw storeConfigError(text, "the PostgreSQL host is missing");
  const port = u.port === "" ? 5432 : Number(u.port);
  const database = decode(u.pathname.replace(/^\//, ""), "database name");
  if (database === "" || database.includes("/")) {
    throw storeConfigError(text, `name one database after the host, e.g. postgres://${u.host}/dormant`);
  }
  for (const key of u.searchParams.keys()) {
    if (key !== "schema") throw storeConfigError(text, `unknown query parameter "${key}" (only "schema" is supported)`);
  }
  const schema = u.searchParams.get("schema") ?? DEFAULT_POSTGRES_SCHEMA;
  if (!POSTGRES_SCHEMA_RE.test(schema)) {
    throw storeConfigError(text, `the schema ${JSON.stringify(schema)} must match ${POSTGRES_SCHEMA_RE} (lower-case letters, digits and "_")`);
  }
  const hostPort = `${u.hostname}:${port}`;
  return {
    kind: "postgres",
    // URL keeps IPv6 literals bracketed; pg wants the bare address.
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    database,
    user: u.username === "" ? undefined : decode(u.username, "user name"),
    password: u.password === "" ? undefined : decode(u.password, "password"),
    schema,
    description: `postgres://${hostPort}/${database} (schema ${schema})`,
  };
}

export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const config = parseStoreUrl(options.url, options.dataDir);
  const timeoutMs = options.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  if (options.fence && config.kind !== "postgres") {
    throw new DormantError(
      "store-config",
      `Fenced writes need a PostgreSQL store; ${config.description} cannot refuse a stale lease. Use --store postgres://….`,
    );
  }
  let driver: Driver;
  let postgres: Store["postgres"];
  if (config.kind === "postgres") {
    const { openPostgres } = await import("./drivers/postgres.ts");
    const { driver: pgDriver, ...rest } = await openPostgres(config, { timeoutMs, fence: options.fence });
    driver = pgDriver;
    postgres = rest;
  } else {
    driver = config.kind === "fs" ? await openFs(config.dir, foldReporter(config.description, options.onEvent)) : await openRedis(config);
  }
  const guarded = guardedDriver(driver, config.description, timeoutMs);
  const store = storeOver(createStorage({ driver: guarded }), guarded, config, postgres);
  try {
    await markFormat(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/**
 * The layout of what a store holds, kept in it under FORMAT_KEY. Raise it with any change an
 * earlier version would misread (a snapshot it cannot find looks to it like a partition never
 * frozen, which it would start fresh): a host refuses a store of a newer format, saying so,
 * marks one that has no marker yet with its own, and raises an older one's to its own before
 * it writes anything an older version would misread.
 *
 * 1: one snapshot head per partition under `head`, blobs under their seq.
 * 2: snapshot heads and blobs in slots written in place (snapshot-store.ts), which reads format 1 too.
 */
export const STORE_FORMAT = 2;
const FORMAT_KEY = "store-format";

async function markFormat(store: Store): Promise<void> {
  const found = await store.root.getItem<unknown>(FORMAT_KEY);
  if (found === null || found === undefined) return store.root.setItem(FORMAT_KEY, STORE_FORMAT);
  if (typeof found !== "number" || !Number.isSafeInteger(found) || found < 1) {
    throw new DormantError(
      "store-config",
      `The store ${store.description} has an unreadable format marker (${JSON.stringify(found)} under "${FORMAT_KEY}"). ` +
        `Set it to the format the store was written in (${STORE_FORMAT} for this version), or restore it from a backup.`,
    );
  }
  if (found > STORE_FORMAT) {
    throw new DormantError(
      "store-config",
      `The store ${store.description} was written by a newer Dormant (store format ${found}; this version reads format ${STORE_FORMAT}). ` +
        `Run that newer version on it, or start this one on another store.`,
    );
  }
  if (found < STORE_FORMAT) await store.root.setItem(FORMAT_KEY, STORE_FORMAT);
}

/** Mounts whose records a host reads all at once at start: on the fs store they are packed into bucket files (fs-packed.ts). */
const PACKED_MOUNTS = ["partitions", "registrations"];

/** What a driver may add to read many records at once (fs-atomic, postgres, and Redis below). */
interface BulkDriver extends Driver {
  getEntriesRaw?(prefix: string, keys?: readonly string[]): Promise<RawEntry[]>;
}

/** How often a fold of a record journal that keeps failing is reported again. */
export const FOLD_REPORT_MS = 60_000;

/**
 * Folds of a record journal that fail (fs-packed.ts), reported as the store being unavailable
 * when they start failing, then at most once a minute while they do, and as recovered once one works.
 */
export function foldReporter(store: string, emit: ((event: StoreEvent) => void) | undefined) {
  const failing = new Map<string, { since: number; reported: number }>();
  return (dir: string, error?: Error): void => {
    const known = failing.get(dir);
    if (!error) {
      if (known) emit?.({ type: "store-recovered", store, detail: `the record journal in ${dir} is folded into its buckets again` });
      failing.delete(dir);
      return;
    }
    if (known && Date.now() - known.reported < FOLD_REPORT_MS) return;
    const since = known?.since ?? Date.now();
    failing.set(dir, { since, reported: Date.now() });
    const message =
      `The store ${store} cannot fold the record journal in ${dir} into its bucket files (failing since ${new Date(since).toISOString()}): ${error.message}. ` +
      `Nothing is lost: the journal keeps every change and grows until a fold works, tried again every second while records change. ` +
      `Free disk space, or make ${dir} writable again.`;
    emit?.({ type: "store-unavailable", store, error: new DormantError("store-unavailable", message, { cause: error, details: { store, path: dir } }) });
  };
}

async function openFs(dir: string, onFold: (dir: string, error?: Error) => void): Promise<Driver> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DormantError(
      "store-unavailable",
      `Cannot use ${dir} as the data directory: ${(err as Error).message}. Pick a writable directory with --store fs:<dir>.`,
      { cause: err },
    );
  }
  // defineDriver's type keeps only unstorage's methods; fs-atomic adds prepare.
  const driver = fsAtomicDriver({ base: dir, packed: PACKED_MOUNTS, onFold }) as Driver & { prepare(): Promise<void> };
  await driver.prepare();
  return driver;
}

async function openRedis(config: Extract<StoreConfig, { kind: "redis" }>): Promise<Driver> {
  // Connect eagerly so a wrong URL or a stopped server fails here with a clear
  // message instead of on the first snapshot.
  // Commands fail while the connection is down, and are never sent again after it comes
  // back: a write the host reported as failed must not land later behind its back.
  const driver = redisDriver({
    url: config.connectionUrl,
    base: config.prefix,
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
  });
  const client = driver.getInstance?.();
  if (!client) throw new DormantError("store-unavailable", "unstorage's redis driver exposed no client instance.");
  let lastError: Error | undefined;
  const onError = (err: Error): void => {
    lastError = err;
  };
  client.on("error", onError);
  try {
    await client.connect();
  } catch (err) {
    // The listener stays attached so the discarded client cannot emit an
    // unhandled "error" while it winds down.
    client.disconnect();
    const reason = lastError?.message ?? (err as Error).message;
    throw new DormantError(
      "store-unavailable",
      `Cannot connect to Redis at ${config.description}: ${reason}. ` + `Check that the server is running and reachable, and that the URL is right.`,
      { cause: lastError ?? err },
    );
  }
  // Once connected, let ioredis report later connection errors itself.
  client.off("error", onError);
  return { ...driver, getEntriesRaw: (prefix, keys) => redisEntries(driver, prefix, keys) } satisfies BulkDriver;
}

/** Keys read per MGET. */
const REDIS_BATCH = 1000;

/** Many records in one MGET per thousand; raw values are stored as unstorage writes them ("base64:…" or plain text). */
async function redisEntries(driver: Driver, prefix: string, keys?: readonly string[]): Promise<RawEntry[]> {
  const names = keys ? [...keys] : (await driver.getKeys(prefix, {})).map((key) => key.slice(prefix.length));
  const found: RawEntry[] = [];
  for (let at = 0; at < names.length; at += REDIS_BATCH) {
    const batch = names.slice(at, at + REDIS_BATCH);
    const values = await driver.getItems!(
      batch.map((key) => ({ key: prefix + key })),
      {},
    );
    values.forEach(({ value }, i) => {
      if (typeof value !== "string") return;
      const bytes = value.startsWith("base64:") ? Buffer.from(value.slice("base64:".length), "base64") : Buffer.from(value, "utf8");
      found.push({ key: batch[i]!, value: bytes });
    });
  }
  return found;
}

function storeOver(root: Storage, driver: BulkDriver, config: StoreConfig, postgres: Store["postgres"]): Store {
  let closing: Promise<void> | undefined;
  const records = (name: string): RecordMount => {
    const mount = prefixStorage(root, name);
    const bulk = driver.getEntriesRaw;
    return Object.assign(mount, {
      entries: (keys?: readonly string[]) => (bulk ? bulk.call(driver, `${name}:`, keys) : entriesOneByOne(mount, keys)),
    });
  };
  return {
    root,
    snapshots: prefixStorage(root, "snapshots"),
    registrations: records("registrations"),
    components: prefixStorage(root, "components"),
    partitions: records("partitions"),
    deliveries: records("deliveries"),
    deadLetters: records("dead-letters"),
    pushTokens: prefixStorage(root, "push-tokens"),
    description: config.description,
    config,
    postgres,
    close() {
      closing ??= root.dispose();
      return closing;
    },
  };
}
