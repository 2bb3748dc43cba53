import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { DormantError } from "../../runtime/index.ts";
import type { Fence } from "../../src/store/drivers/postgres.ts";
import { openStore, parseStoreUrl, type OpenStoreOptions, type Store } from "../../src/store/open.ts";
import { describeStoreContract } from "./store-contract.ts";

const SERVER = "postgres://postgres@127.0.0.1:5432/postgres";
/** Unique per test run; each store gets its own schema under it, dropped when the test closes it. */
const RUN = `dormant_test_${process.pid}_${randomBytes(4).toString("hex")}`;
let schemaCount = 0;

// A pool, not one client: stores closed together drop their schemas at once, and a pg client runs one query at a time.
const admin = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres", max: 2 });
afterAll(async () => {
  // Every test dropped what it created: nothing from this run remains.
  const left = await admin.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", [`${RUN}%`]);
  await admin.end();
  expect(left.rows).toEqual([]);
});

const freshSchema = () => `${RUN}_${++schemaCount}`;
const dropSchema = (schema: string) => admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);

/** A store on a fresh schema; closing it also drops the schema. */
async function openPgStore(options: Omit<OpenStoreOptions, "url"> = {}, schema = freshSchema()): Promise<Store> {
  const store = await openStore({ ...options, url: `${SERVER}?schema=${schema}` }).catch(async (error: unknown) => {
    await dropSchema(schema);
    throw error;
  });
  return {
    ...store,
    async close() {
      await store.close();
      await dropSchema(schema);
    },
  };
}

describeStoreContract("postgres", () => openPgStore());

describe("postgres store specifics", () => {
  const open: Store[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  const track = async (store: Promise<Store>) => {
    const s = await store;
    open.push(s);
    return s;
  };

  describe("URLs", () => {
    it("describes the store by host, port, database and schema without credentials", () => {
      const config = parseStoreUrl("postgres://app:s%40cret@db.internal:6543/dormant?schema=cluster_a");
      expect(config).toMatchObject({
        kind: "postgres",
        host: "db.internal",
        port: 6543,
        database: "dormant",
        user: "app",
        password: "s@cret",
        schema: "cluster_a",
        description: "postgres://db.internal:6543/dormant (schema cluster_a)",
      });
      expect(config.description).not.toMatch(/app|cret/);
    });

    it("accepts postgresql:// and defaults to port 5432 and schema 'dormant'", () => {
      expect(parseStoreUrl("postgresql://127.0.0.1/db").description).toBe("postgres://127.0.0.1:5432/db (schema dormant)");
    });

    it("refuses unknown query parameters, a missing database and a schema that is not a plain identifier", () => {
      expect(() => parseStoreUrl("postgres://127.0.0.1/db?sslmode=require")).toThrow(/unknown query parameter "sslmode" \(only "schema" is supported\)/);
      expect(() => parseStoreUrl("postgres://127.0.0.1")).toThrow(/name one database after the host/);
      expect(() => parseStoreUrl("postgres://127.0.0.1/db?schema=Bad-Name")).toThrow(/the schema "Bad-Name" must match/);
      expect(() => parseStoreUrl("postgres://127.0.0.1/db?schema=x%22;drop")).toThrow(/Invalid store URL/);
    });
  });

  describe("schema", () => {
    it("creates kv, meta, shards and members in the schema the URL names, at schema version 1", async () => {
      const store = await track(openPgStore());
      const schema = store.postgres!.schema;
      const tables = await admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", [schema]);
      expect(tables.rows.map((r: { table_name: string }) => r.table_name)).toEqual(["kv", "members", "meta", "shards"]);
      const meta = await admin.query(`SELECT key, value FROM "${schema}".meta`);
      expect(meta.rows).toEqual([{ key: "schema-version", value: 1 }]);
    });

    it("creates the schema once when several hosts open it at the same moment", async () => {
      const schema = freshSchema();
      const opened = await Promise.allSettled(Array.from({ length: 6 }, () => track(openPgStore({}, schema))));
      expect(opened.filter((o) => o.status === "rejected")).toEqual([]);
      const stores = opened.map((o) => (o as PromiseFulfilledResult<Store>).value);
      const meta = await admin.query(`SELECT value FROM "${schema}".meta`);
      expect(meta.rows).toEqual([{ value: 1 }]);
      // One store's write is every store's data.
      await stores[0]!.partitions.setItem("shared", { n: 1 });
      for (const s of stores) expect(await s.partitions.getItem("shared")).toEqual({ n: 1 });
    });

    it("keeps the data of a schema when it is opened again", async () => {
      const schema = freshSchema();
      const first = await openStore({ url: `${SERVER}?schema=${schema}` });
      await first.registrations.setItem("r1", { task: "tick" });
      await first.close();
      const again = await track(openPgStore({}, schema));
      expect(await again.registrations.getItem("r1")).toEqual({ task: "tick" });
    });

    it("refuses a schema written by a newer Dormant with a store-config error naming both versions", async () => {
      const store = await track(openPgStore());
      const schema = store.postgres!.schema;
      await admin.query(`UPDATE "${schema}".meta SET value = '7' WHERE key = 'schema-version'`);
      const error = await openStore({ url: `${SERVER}?schema=${schema}` }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store-config", details: { schema, stored: 7, supported: 1 } });
      expect((error as Error).message).toMatch(/schema version 7, newer than this Dormant's 1.*same Dormant version.*\?schema=<name>/);
    });

    it("sets the store timeout as the connections' statement_timeout", async () => {
      const store = await track(openPgStore({ timeoutMs: 1234 }));
      const shown = await store.postgres!.pool.query("SHOW statement_timeout");
      expect(shown.rows[0]).toEqual({ statement_timeout: "1234ms" });
    });

    it("ends its pool when closed", async () => {
      const store = await openPgStore();
      const pool = store.postgres!.pool;
      await store.close();
      expect(pool.ended).toBe(true);
    });
  });

  describe("keys", () => {
    it("lists and clears by prefix with LIKE's % and _ taken literally", async () => {
      const store = await track(openPgStore());
      await store.components.setItem("a_b:one", 1);
      await store.components.setItem("axb:two", 2);
      await store.components.setItem("a%:three", 3);
      await store.components.setItem("aZZ:four", 4);
      expect(await store.components.getKeys("a_b")).toEqual(["a_b:one"]);
      expect(await store.components.getKeys("a%")).toEqual(["a%:three"]);
      // unstorage's clear(base) never reaches a driver mounted at the root, so ask the driver.
      const driver = store.root.getMount("").driver;
      await driver.clear!("components:a_b:", {});
      await driver.clear!("components:a%:", {});
      expect((await store.components.getKeys()).sort()).toEqual(["aZZ:four", "axb:two"]);
    });

    it("reads a value written as a string back as raw UTF-8 bytes", async () => {
      const store = await track(openPgStore());
      await store.components.setItem("text", "ünï✓");
      const raw = await store.components.getItemRaw("text");
      expect(Buffer.from(raw as Uint8Array).toString("utf8")).toBe("ünï✓");
    });
  });

  describe("fenced writes", () => {
    /** Keys under partitions:p1 need shard 1 as owner "host-a" at `held.epoch`. */
    const held = { epoch: 1 };
    const fence = (key: string): Fence | undefined => (key.startsWith("partitions:p1:") ? { shard: 1, owner: "host-a", epoch: held.epoch } : undefined);

    async function fenced(): Promise<{ store: Store; shards: string }> {
      held.epoch = 1;
      const store = await track(openPgStore({ fence }));
      const shards = store.postgres!.tables.shards;
      await store.postgres!.pool.query(`INSERT INTO ${shards} (shard, owner, epoch) VALUES (1, 'host-a', 1)`);
      return { store, shards };
    }
    /** Another host takes shard 1 over. */
    const takeOver = (store: Store, shards: string) => store.postgres!.pool.query(`UPDATE ${shards} SET owner = 'host-b', epoch = epoch + 1 WHERE shard = 1`);

    it("applies a write that carries the shard's current owner and epoch", async () => {
      const { store } = await fenced();
      await store.partitions.setItem("p1:state", { n: 1 });
      await store.partitions.setItemRaw("p1:blob", new Uint8Array([1, 2, 3]));
      expect(await store.partitions.getItem("p1:state")).toEqual({ n: 1 });
      expect(Array.from((await store.partitions.getItemRaw("p1:blob")) as Uint8Array)).toEqual([1, 2, 3]);
    });

    it("refuses a write with a stale epoch as lease-lost and leaves the old value", async () => {
      const { store, shards } = await fenced();
      await store.partitions.setItem("p1:state", { n: 1 });
      await takeOver(store, shards);

      const error = await store.partitions.setItem("p1:state", { n: 2 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "lease-lost", details: { key: "partitions:p1:state", shard: 1, epoch: 1 } });
      expect((error as DormantError).message).toMatch(/no longer holds shard 1 at epoch 1.*Nothing was written/);
      await expect(store.partitions.setItemRaw("p1:blob", new Uint8Array([9]))).rejects.toMatchObject({ code: "lease-lost" });
      expect(await store.partitions.getItem("p1:state")).toEqual({ n: 1 });
      expect(await store.partitions.hasItem("p1:blob")).toBe(false);
    });

    it("applies a write again once the host holds the shard's new epoch", async () => {
      const { store, shards } = await fenced();
      await store.postgres!.pool.query(`UPDATE ${shards} SET epoch = 5 WHERE shard = 1`);
      await expect(store.partitions.setItem("p1:state", "stale")).rejects.toMatchObject({ code: "lease-lost" });
      held.epoch = 5;
      await store.partitions.setItem("p1:state", "current");
      expect(await store.partitions.getItem("p1:state")).toBe("current");
    });

    it("refuses a write for a shard that has no lease row at all", async () => {
      const { store, shards } = await fenced();
      await store.postgres!.pool.query(`DELETE FROM ${shards}`);
      await expect(store.partitions.setItem("p1:state", 1)).rejects.toMatchObject({ code: "lease-lost", details: { shard: 1 } });
      expect(await store.partitions.getKeys()).toEqual([]);
    });

    it("refuses a remove with a stale epoch and keeps the value", async () => {
      const { store, shards } = await fenced();
      await store.partitions.setItem("p1:state", { n: 1 });
      await takeOver(store, shards);
      await expect(store.partitions.removeItem("p1:state")).rejects.toMatchObject({
        code: "lease-lost",
        details: { key: "partitions:p1:state", shard: 1, epoch: 1 },
      });
      expect(await store.partitions.getItem("p1:state")).toEqual({ n: 1 });
    });

    it("applies a remove with the current epoch, and of a missing key without complaint", async () => {
      const { store } = await fenced();
      await store.partitions.setItem("p1:state", { n: 1 });
      await store.partitions.removeItem("p1:state");
      await store.partitions.removeItem("p1:never-written");
      expect(await store.partitions.hasItem("p1:state")).toBe(false);
    });

    it("writes keys the fence does not name without any lease", async () => {
      const { store, shards } = await fenced();
      await store.postgres!.pool.query(`DELETE FROM ${shards}`);
      await store.partitions.setItem("p2:state", 1);
      await store.registrations.setItem("r", 2);
      await store.partitions.removeItem("p2:state");
      expect(await store.registrations.getItem("r")).toBe(2);
      expect(await store.partitions.hasItem("p2:state")).toBe(false);
    });

    it("waits for a takeover in progress and then refuses the write it made stale", async () => {
      const { store, shards } = await fenced();
      const takeover = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres" });
      await takeover.connect();
      try {
        await takeover.query("BEGIN");
        await takeover.query(`UPDATE ${shards} SET owner = 'host-b', epoch = 2 WHERE shard = 1`);
        const write = store.partitions.setItem("p1:state", "late").catch((e: unknown) => e);
        // The write is blocked on the shard row until the takeover commits.
        await expect.poll(() => waitingOnLock(), { timeout: 5000 }).toBe(true);
        await takeover.query("COMMIT");
        expect(await write).toMatchObject({ code: "lease-lost" });
        expect(await store.partitions.hasItem("p1:state")).toBe(false);
      } finally {
        await takeover.end();
      }
    });

    it("refuses a fence for a store that cannot check it", async () => {
      const error = await openStore({ url: "fs:/tmp/unused-dormant-fence", fence }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store-config" });
      expect((error as Error).message).toMatch(/Fenced writes need a PostgreSQL store/);
    });
  });

  describe("connection errors", () => {
    it("fails to open with store-unavailable naming host and port when nothing listens there", async () => {
      const error = await openStore({ url: "postgres://postgres@127.0.0.1:1/postgres" }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store-unavailable", details: { host: "127.0.0.1", port: 1 } });
      expect((error as Error).message).toMatch(/Cannot connect to PostgreSQL at 127\.0\.0\.1:1.*Is PostgreSQL running/);
    });

    it("fails to open with store-config naming a database that does not exist", async () => {
      const error = await openStore({ url: `postgres://postgres@127.0.0.1:5432/${RUN}_nodb` }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store-config" });
      expect((error as Error).message).toMatch(new RegExp(`has no database "${RUN}_nodb".*createdb`));
    });

    it("fails to open with store-config naming a user that does not exist, without the password", async () => {
      const error = await openStore({ url: `postgres://${RUN}_nobody:s3cret-pw@127.0.0.1:5432/postgres` }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store-config" });
      expect((error as Error).message).toMatch(new RegExp(`refused user "${RUN}_nobody".*does not exist.*Check the user`));
      expect(JSON.stringify({ message: (error as Error).message, details: (error as DormantError).details })).not.toMatch(/s3cret-pw/);
    });
  });
});

/** Whether some backend of this run is waiting on a row lock (the fenced write behind a takeover). */
async function waitingOnLock(): Promise<boolean> {
  const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'");
  return (r.rows[0] as { n: number }).n > 0;
}
