import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { openStore, parseStoreUrl, type Store } from "../../src/store/open.ts";
import { describeStoreContract } from "./store-contract.ts";

const REDIS = "redis://127.0.0.1:6379/15";
/** Unique per test run; each store gets its own sub-prefix so tests never share keys. */
const RUN_PREFIX = `dormant-test-${process.pid}-${randomBytes(4).toString("hex")}`;
let storeCount = 0;

/** Fresh prefix per store; closing clears everything under it first. */
async function openRedisStore(): Promise<Store> {
  const store = await openStore({ url: `${REDIS}?prefix=${RUN_PREFIX}-${++storeCount}` });
  return {
    ...store,
    async close() {
      await store.root.clear();
      await store.close();
    },
  };
}

async function keysInDb(db: number, pattern: string): Promise<string[]> {
  const client = new Redis({ host: "127.0.0.1", port: 6379, db });
  try {
    return await client.keys(pattern);
  } finally {
    client.disconnect();
  }
}

describeStoreContract("redis", openRedisStore);

describe("redis store specifics", () => {
  afterAll(async () => {
    // Every test cleaned up after itself: nothing from this run remains.
    expect(await keysInDb(15, `${RUN_PREFIX}*`)).toEqual([]);
  });

  it("stores keys under the prefix in the database named by the URL", async () => {
    const store = await openRedisStore();
    try {
      await store.components.setItemRaw("c1", new Uint8Array([0, 1, 2]));
      const prefix = `${RUN_PREFIX}-${storeCount}`;
      expect((await keysInDb(15, `${prefix}:*`)).sort()).toEqual([`${prefix}:components:c1`, `${prefix}:store-format`]);
      expect(await keysInDb(0, `${prefix}:*`)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("describes the store by host, port, db and prefix without credentials", () => {
    expect(parseStoreUrl("redis://user:secret@127.0.0.1:6379/15?prefix=app")).toMatchObject({
      kind: "redis",
      db: 15,
      prefix: "app",
      description: "redis://127.0.0.1:6379/15 (prefix app)",
    });
  });

  it("defaults to port 6379, db 0 and prefix 'dormant'", () => {
    expect(parseStoreUrl("redis://localhost").description).toBe("redis://localhost:6379/0 (prefix dormant)");
  });

  it("rejects an ftp:// URL with a store-config error listing the supported schemes", async () => {
    const error = await openStore({ url: "ftp://x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "store-config" });
    const message = (error as Error).message;
    expect(message).toMatch(/unsupported scheme "ftp:"/);
    expect(message).toMatch(/fs:<dir>/);
    expect(message).toMatch(/redis:\/\/host:port\[\/db\]\[\?prefix=name\]/);
    expect(message).toMatch(/e\.g\. --store/);
  });

  it("rejects a non-numeric redis database and unknown query parameters", () => {
    expect(() => parseStoreUrl("redis://127.0.0.1:6379/abc")).toThrow(/must be a number/);
    expect(() => parseStoreUrl("redis://127.0.0.1:6379/0?db=2")).toThrow(/unknown query parameter "db"/);
    expect(() => parseStoreUrl("redis://127.0.0.1:6379/0?prefix=a:b")).toThrow(/Invalid store URL/);
  });

  it("fails to open with a store-unavailable error when nothing listens at the URL", async () => {
    const error = await openStore({ url: "redis://127.0.0.1:1/0" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "store-unavailable" });
    expect((error as Error).message).toMatch(/Cannot connect to Redis at redis:\/\/127\.0\.0\.1:1\/0/);
  });
});
