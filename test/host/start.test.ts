// Starting a host: what it opened is closed again when a later step fails.
import { readdirSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { startHost } from "../../src/host.ts";
import { SHARED_ENGINE_CACHE, startTestHost } from "../support/host.ts";

const threads = () => readdirSync("/proc/self/task").length;

describe("starting a host", () => {
  it("closes its executor threads and store connection when a later step fails", async () => {
    const redis = new Redis({ host: "127.0.0.1", port: 6379, lazyConnect: true });
    await redis.connect();
    const clients = async () =>
      String(await redis.client("LIST"))
        .trim()
        .split("\n").length;
    const before = { threads: threads(), clients: await clients() };
    const prefix = `dormant-start-${process.pid}-${Date.now()}`;
    await expect(
      startHost({
        dataDir: await mkdtemp(join(tmpdir(), "dormant-start-")),
        store: `redis://127.0.0.1:6379/0?prefix=${prefix}`,
        engineCacheDir: SHARED_ENGINE_CACHE,
        executors: 2,
        budget: { maxConcurrent: 0 },
      }),
    ).rejects.toThrow(/maxConcurrent must be a whole number of at least 1/);
    await expect.poll(threads).toBe(before.threads);
    await expect.poll(clients).toBe(before.clients);
    await redis.quit();
  });

  it("refuses to start on a data directory another host is using, and starts there once that one has stopped", async () => {
    const first = await startTestHost();
    try {
      await expect(startTestHost({ dataDir: first.dataDir })).rejects.toMatchObject({
        code: "store-locked",
        message: expect.stringContaining(`The data directory ${first.dataDir} is in use by another Dormant host (pid ${process.pid}`),
      });
    } finally {
      await first.close();
    }
    const second = await startTestHost({ dataDir: first.dataDir });
    await second.close();
  });
});
