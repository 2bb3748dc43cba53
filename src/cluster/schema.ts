// The cluster's shape in its schema: the shards table (created with the store's tables in
// store/drivers/postgres.ts) gets one lease row per shard, once, under an advisory lock,
// by whichever host starts first; every later host checks that it was
// given the same settings: hosts with different shard counts would disagree about where
// every partition lives, and with different TTLs about when a silent host is gone.
import type { Pool } from "pg";
import type { ClusterSettings } from "./membership.ts";
import { DormantError } from "../../runtime/index.ts";

/** A key of the store's meta table (store/drivers/postgres.ts) that holds the cluster's settings. */
const SETTINGS_KEY = "cluster";

export async function ensureClusterSchema(pool: Pool, schema: string, tables: { meta: string; shards: string }, settings: ClusterSettings): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`dormant-cluster:${schema}`]);
    const { rows } = await client.query<{ value: ClusterSettings }>(`SELECT value FROM ${tables.meta} WHERE key = $1`, [SETTINGS_KEY]);
    const stored = rows[0]?.value;
    if (stored === undefined) {
      await client.query(`INSERT INTO ${tables.meta} (key, value) VALUES ($1, $2)`, [
        SETTINGS_KEY,
        JSON.stringify({ shards: settings.shards, ttlMs: settings.ttlMs }),
      ]);
      await client.query(`INSERT INTO ${tables.shards} (shard) SELECT generate_series(0, $1::integer - 1) ON CONFLICT DO NOTHING`, [settings.shards]);
    } else if (stored.shards !== settings.shards || stored.ttlMs !== settings.ttlMs) {
      throw new DormantError(
        "cluster-config",
        `The cluster in schema ${schema} runs with ${stored.shards} shards and a ${stored.ttlMs} ms lease TTL, but this host was started with ` +
          `${settings.shards} shards and ${settings.ttlMs} ms. Hosts of one cluster must agree: start it with --cluster-shards ${stored.shards} ` +
          `--cluster-ttl ${stored.ttlMs}, or point it at another schema (?schema=…) for a separate cluster.`,
        { details: { schema, stored, given: settings } },
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
