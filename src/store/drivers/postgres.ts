/**
 * unstorage driver for PostgreSQL, the store hosts of a cluster share.
 *
 * Use from the cluster layer:
 *
 *   const pg = await openPostgres(config, { timeoutMs, fence });
 *   pg.driver        // unstorage Driver over `<schema>.kv` (wrap it in guardedDriver, as openStore does)
 *   pg.pool          // the pg.Pool it uses: run lease and membership queries on it
 *   pg.tables.shards // `"<schema>".shards`, quoted and qualified, ready to put in SQL
 *   await pg.driver.dispose?.()  // ends the pool
 *
 * Everything lives in one schema (`?schema=` in the URL, default `dormant`), created at
 * open if missing, under an advisory lock so hosts starting together create it once:
 *
 *   kv(key text collate "C" primary key, value bytea not null)   every store item; strings as UTF-8
 *   meta(key text primary key, value jsonb)                       "schema-version": SCHEMA_VERSION
 *   shards(shard integer primary key, owner text, epoch bigint not null default 0, expires_at timestamptz)
 *   members(host text primary key, address text not null, admin_address text not null, started_at, heartbeat_at, expires_at timestamptz not null)
 *   (the cluster layer, src/cluster/, fills shards and reads and writes both)
 *
 * Fencing: `fence(key)` names the shard lease a write of that key needs. A fenced
 * setItem/setItemRaw/removeItem is one statement that applies only while `shards` holds
 * that row with that owner and epoch, and throws `lease-lost` (nothing written) when not.
 * The statement takes the shard row FOR SHARE, so a takeover that bumps the epoch waits
 * for writes already checked against the old one, and a write queued behind a takeover
 * rechecks against the new epoch: no write lands under a lease that was already lost.
 * Keys the fence does not name (and `clear`) write without a check.
 */
import pg from "pg";
import { defineDriver, type Driver } from "unstorage";
import { DormantError } from "../../../runtime/index.ts";

/** Version of the tables this code reads and writes; a newer one in the database is refused. */
export const SCHEMA_VERSION = 1;

export interface PostgresConfig {
  kind: "postgres";
  host: string;
  port: number;
  database: string;
  /** Absent: pg's default (PGUSER, else the OS user). */
  user?: string | undefined;
  password?: string | undefined;
  /** Schema holding Dormant's tables; a plain lower-case identifier. */
  schema: string;
  /** Location without credentials, e.g. `postgres://127.0.0.1:5432/dormant (schema dormant)`. */
  description: string;
}

/** The shard lease a write needs: it applies only while `shards` has this row with this owner and epoch. */
export interface Fence {
  shard: number;
  owner: string;
  epoch: number;
}

export interface PostgresOptions {
  /** Bound on one statement, set as the pool's statement_timeout (and on waiting for a connection). */
  timeoutMs: number;
  /** The lease a write of `key` needs, or undefined to write it unfenced. */
  fence?: ((key: string) => Fence | undefined) | undefined;
}

export interface PostgresStore {
  driver: Driver;
  pool: pg.Pool;
  schema: string;
  /** Quoted, schema-qualified table names. */
  tables: { kv: string; meta: string; shards: string; members: string };
}

const DRIVER_NAME = "postgres";
/** First key of the two-key advisory lock that serialises schema creation (second: the schema's hash). */
const SCHEMA_LOCK = 0x646f726d; // "dorm"

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** LIKE pattern matching every key that starts with `prefix`. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function toBuffer(value: unknown, key: string): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(
    `[${DRIVER_NAME}] Cannot store raw value for key ${JSON.stringify(key)}: expected a Uint8Array, ArrayBuffer or string, got ${typeof value}.`,
  );
}

function leaseLost(key: string, fence: Fence): DormantError<"lease-lost"> {
  return new DormantError(
    "lease-lost",
    `The write of ${JSON.stringify(key)} was refused: this host no longer holds shard ${fence.shard} at epoch ${fence.epoch} ` +
      `(another host has taken it over). Nothing was written; drop the partition here, its new owner serves it.`,
    { details: { key, shard: fence.shard, epoch: fence.epoch } },
  );
}

/** Opens the pool, connects once (so a wrong URL fails here), and creates or checks the schema. */
export async function openPostgres(config: PostgresConfig, options: PostgresOptions): Promise<PostgresStore> {
  const pool = new pg.Pool({
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.user,
    password: config.password,
    application_name: "dormant",
    statement_timeout: options.timeoutMs,
    connectionTimeoutMillis: options.timeoutMs,
  });
  // An idle client whose connection drops emits "error" on the pool; unhandled, it would end
  // the process. The next query on the pool fails and is reported through the guarded driver.
  pool.on("error", () => {});

  const s = quoteIdent(config.schema);
  const tables = { kv: `${s}.kv`, meta: `${s}.meta`, shards: `${s}.shards`, members: `${s}.members` };
  try {
    await prepareSchema(pool, config, tables);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return { driver: postgresDriver({ pool, tables, fence: options.fence }), pool, schema: config.schema, tables };
}

async function prepareSchema(pool: pg.Pool, config: PostgresConfig, t: PostgresStore["tables"]): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw connectError(error, config);
  }
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SCHEMA_LOCK, config.schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(config.schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${t.meta} (key text PRIMARY KEY, value jsonb)`);
    const found = await client.query<{ value: unknown }>(`SELECT value FROM ${t.meta} WHERE key = 'schema-version'`);
    const stored = found.rows[0]?.value;
    if (stored !== undefined && !(typeof stored === "number" && Number.isInteger(stored))) {
      throw new DormantError(
        "store-config",
        `The PostgreSQL schema "${config.schema}" at ${config.description} has an unreadable schema version (${JSON.stringify(stored)}) in ${t.meta}. ` +
          `It was not written by Dormant: point the store at another schema with ?schema=<name>.`,
        { details: { schema: config.schema, stored } },
      );
    }
    if (typeof stored === "number" && stored > SCHEMA_VERSION) {
      throw new DormantError(
        "store-config",
        `The PostgreSQL schema "${config.schema}" at ${config.description} is at schema version ${stored}, newer than this Dormant's ${SCHEMA_VERSION}: ` +
          `a newer Dormant wrote it. Run the same Dormant version as the hosts that use it, or point the store at another schema with ?schema=<name>.`,
        { details: { schema: config.schema, stored, supported: SCHEMA_VERSION } },
      );
    }
    if (stored === undefined) {
      await client.query(`CREATE TABLE IF NOT EXISTS ${t.kv} (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${t.shards} (shard integer PRIMARY KEY, owner text, epoch bigint NOT NULL DEFAULT 0, expires_at timestamptz)`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${t.members} (host text PRIMARY KEY, address text NOT NULL, admin_address text NOT NULL, ` +
          `started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)`,
      );
      await client.query(`INSERT INTO ${t.meta} (key, value) VALUES ('schema-version', $1::jsonb)`, [JSON.stringify(SCHEMA_VERSION)]);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    if (error instanceof DormantError) throw error;
    throw schemaError(error, config);
  } finally {
    client.release();
  }
}

function codesOf(error: unknown): string[] {
  const e = error as { code?: unknown; errors?: unknown };
  const own = typeof e?.code === "string" ? [e.code] : [];
  // Node's connect to a name with several addresses fails with an AggregateError of each try.
  const inner = Array.isArray(e?.errors) ? e.errors.flatMap(codesOf) : [];
  return [...own, ...inner];
}

/** What went wrong connecting, said so an operator can fix it; never the password. */
function connectError(error: unknown, config: PostgresConfig): DormantError {
  const codes = codesOf(error);
  const where = `${config.host}:${config.port}`;
  const reason = (error as Error)?.message || String(error);
  const details = { host: config.host, port: config.port, database: config.database, codes };
  const config_ = (message: string) => new DormantError("store-config", message, { cause: error, details });
  const who = config.user === undefined ? "the default user" : `user "${config.user}"`;
  // PostgreSQL's SQLSTATEs: 28P01 wrong password, 28000 no such role (or refused by pg_hba), 3D000 no such database.
  if (codes.includes("28P01")) {
    return config_(`PostgreSQL at ${where} refused the password for ${who}. Check the user and password in the store URL.`);
  }
  if (codes.includes("28000")) {
    return config_(`PostgreSQL at ${where} refused ${who}: ${reason}. Check the user in the store URL (the role must exist and may log in from this host).`);
  }
  if (codes.includes("3D000")) {
    return config_(
      `PostgreSQL at ${where} has no database "${config.database}". Create it (createdb ${config.database}) or name an existing one in the store URL.`,
    );
  }
  if (/password must be a string|no password|password authentication/i.test(reason)) {
    return config_(
      `PostgreSQL at ${where} asks ${who} for a password and the store URL gives none or a wrong one. Put it in the URL: postgres://user:password@host/db.`,
    );
  }
  if (codes.includes("ECONNREFUSED")) {
    return new DormantError(
      "store-unavailable",
      `Cannot connect to PostgreSQL at ${where}: the connection was refused. Is PostgreSQL running, and listening on that host and port?`,
      { cause: error, details },
    );
  }
  if (codes.includes("ENOTFOUND") || codes.includes("EAI_AGAIN")) {
    return new DormantError(
      "store-unavailable",
      `Cannot connect to PostgreSQL at ${where}: the host name "${config.host}" does not resolve. Check the host in the store URL.`,
      {
        cause: error,
        details,
      },
    );
  }
  return new DormantError(
    "store-unavailable",
    `Cannot connect to PostgreSQL at ${where} (database "${config.database}"): ${reason}. Is PostgreSQL running and reachable, and is the store URL right?`,
    { cause: error, details },
  );
}

/** A failure creating or checking the tables once connected. */
function schemaError(error: unknown, config: PostgresConfig): DormantError {
  const code = (error as { code?: unknown })?.code;
  const reason = (error as Error)?.message || String(error);
  if (code === "42501") {
    return new DormantError(
      "store-config",
      `PostgreSQL at ${config.host}:${config.port} did not let this user create or use the schema "${config.schema}" in database "${config.database}": ${reason}. ` +
        `Grant the user CREATE on the database (or create the schema for it), or name a schema it owns with ?schema=<name>.`,
      { cause: error, details: { schema: config.schema, code } },
    );
  }
  return new DormantError("store-unavailable", `Could not prepare the PostgreSQL schema "${config.schema}" at ${config.description}: ${reason}.`, {
    cause: error,
    details: { schema: config.schema, code },
  });
}

interface DriverOptions {
  pool: pg.Pool;
  tables: PostgresStore["tables"];
  fence?: ((key: string) => Fence | undefined) | undefined;
}

const postgresDriver = defineDriver((options: DriverOptions) => {
  const { pool, tables: t } = options;
  const fenceOf = options.fence ?? (() => undefined);
  let ended: Promise<void> | undefined;

  const read = async (key: string): Promise<Buffer | null> => {
    const result = await pool.query<{ value: Buffer }>(`SELECT value FROM ${t.kv} WHERE key = $1`, [key]);
    return result.rows[0]?.value ?? null;
  };

  const write = async (key: string, value: Buffer): Promise<void> => {
    const fence = fenceOf(key);
    if (fence === undefined) {
      await pool.query(`INSERT INTO ${t.kv} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, value]);
      return;
    }
    const result = await pool.query(
      `WITH lease AS (SELECT 1 FROM ${t.shards} WHERE shard = $3 AND owner = $4 AND epoch = $5 FOR SHARE)
       INSERT INTO ${t.kv} (key, value) SELECT $1, $2 FROM lease ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      [key, value, fence.shard, fence.owner, fence.epoch],
    );
    if (result.rowCount !== 1) throw leaseLost(key, fence);
  };

  return {
    name: DRIVER_NAME,
    options,
    getInstance: () => pool,

    async hasItem(key) {
      const result = await pool.query(`SELECT 1 FROM ${t.kv} WHERE key = $1`, [key]);
      return result.rowCount === 1;
    },

    async getItem(key) {
      return (await read(key))?.toString("utf8") ?? null;
    },

    async getItemRaw(key) {
      return read(key);
    },

    async setItem(key, value: string) {
      await write(key, Buffer.from(value, "utf8"));
    },

    async setItemRaw(key, value: unknown) {
      await write(key, toBuffer(value, key));
    },

    async removeItem(key) {
      const fence = fenceOf(key);
      if (fence === undefined) {
        await pool.query(`DELETE FROM ${t.kv} WHERE key = $1`, [key]);
        return;
      }
      // A missing key is fine under a held lease, so ask whether the lease was held, not what was deleted.
      const result = await pool.query<{ held: boolean }>(
        `WITH lease AS (SELECT 1 FROM ${t.shards} WHERE shard = $2 AND owner = $3 AND epoch = $4 FOR SHARE),
              gone AS (DELETE FROM ${t.kv} WHERE key = $1 AND EXISTS (SELECT 1 FROM lease))
         SELECT EXISTS (SELECT 1 FROM lease) AS held`,
        [key, fence.shard, fence.owner, fence.epoch],
      );
      if (result.rows[0]?.held !== true) throw leaseLost(key, fence);
    },

    /** Every item under a prefix, or the named ones, as raw bytes: one statement (a host's start, a shard's adoption). */
    async getEntriesRaw(prefix: string, keys?: readonly string[]) {
      const result = keys
        ? await pool.query<{ key: string; value: Buffer }>(`SELECT key, value FROM ${t.kv} WHERE key = ANY($1::text[])`, [keys.map((key) => prefix + key)])
        : await pool.query<{ key: string; value: Buffer }>(`SELECT key, value FROM ${t.kv} WHERE key LIKE $1 ESCAPE '\\'`, [likePrefix(prefix)]);
      return result.rows.map((row) => ({ key: row.key.slice(prefix.length), value: row.value }));
    },

    async getKeys(base) {
      const result = await pool.query<{ key: string }>(`SELECT key FROM ${t.kv} WHERE key LIKE $1 ESCAPE '\\' ORDER BY key`, [likePrefix(base ?? "")]);
      return result.rows.map((row) => row.key);
    },

    async clear(base) {
      await pool.query(`DELETE FROM ${t.kv} WHERE key LIKE $1 ESCAPE '\\'`, [likePrefix(base ?? "")]);
    },

    async dispose() {
      ended ??= pool.end();
      await ended;
    },
  };
});
