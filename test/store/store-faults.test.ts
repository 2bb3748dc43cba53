// Honest storage, against a Redis of the test's own that it hangs, kills and wipes: work
// the store did not take is never acknowledged, errors name the store, health recovers by
// itself, a wiped store stops the host, and a failed save is not applied twice.
import { afterEach, describe, expect, it } from "vitest";
import { counterCount, startTestHost, type TestHost } from "../support/host.ts";
import { ownRedis, type OwnRedis } from "../support/redis-server.ts";
import { event } from "../support/runtime.ts";
import { liveInbox, startTestServer, type TestServer } from "../support/server.ts";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

async function redis(options: { persist?: boolean } = {}): Promise<OwnRedis> {
  const r = await ownRedis(options);
  cleanup.push(() => r.kill());
  return r;
}

async function server(r: OwnRedis, storeTimeoutMs = 500): Promise<TestServer> {
  const s = await startTestServer({ store: r.url, storeTimeoutMs });
  cleanup.push(() => s.close());
  return s;
}

const pushAsync = (url: string) => fetch(url, { method: "POST", headers: { prefer: "respond-async" }, body: "x" });
const healthz = async (s: TestServer) => {
  const response = await fetch(`${s.adminUrl}/healthz`);
  return { status: response.status, body: await response.json() };
};

describe("a store that hangs, dies or is wiped", () => {
  it("hung: an async push waits at most the store timeout and gets 503 naming the store; /healthz is unhealthy, then recovers by itself", async () => {
    const r = await redis();
    const s = await server(r);
    const url = await liveInbox(s);
    r.hang();
    const refused = await pushAsync(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBeTruthy();
    const { error } = await refused.json();
    expect(error.code).toBe("store-unavailable");
    expect(error.message).toContain(`127.0.0.1:${r.port}/0`);
    expect(error.message).toMatch(/did not answer .* within 500 ms; nothing was acknowledged/);
    expect(await healthz(s)).toMatchObject({ status: 503, body: { ok: false, store: expect.stringContaining(`127.0.0.1:${r.port}`) } });

    r.resume();
    await expect.poll(async () => (await healthz(s)).status).toBe(200);
    expect((await pushAsync(url)).status).toBe(202);
    expect(s.events.some((e) => e.type === "store-recovered")).toBe(true);
  });

  it("killed: pushes get 503 at once, not after the store timeout, and the host carries on when it is back with its data", async () => {
    const r = await redis({ persist: true });
    const s = await server(r, 5000);
    const url = await liveInbox(s);
    await r.kill();
    const started = Date.now();
    const refused = await pushAsync(url);
    expect(refused.status).toBe(503);
    expect((await refused.json()).error.message).toMatch(new RegExp(`The store redis://127.0.0.1:${r.port}/0 .* failed`));
    expect(Date.now() - started).toBeLessThan(5000); // refused, not waited out
    expect((await healthz(s)).status).toBe(503);

    await r.start();
    await expect.poll(async () => (await healthz(s)).status, { timeout: 10_000 }).toBe(200);
    expect((await pushAsync(url)).status).toBe(202);
    await s.host.settled();
    expect(s.host.deliveries.pendingDeliveries()).toEqual([]);
  });

  it("wiped: the host stops with an error saying the store is not the one it was using, and a new start on it is refused", async () => {
    const r = await redis();
    const fatal: Error[] = [];
    const h = await startTestHost({ store: r.url, storeTimeoutMs: 500, onFatal: (error) => fatal.push(error) });
    cleanup.push(() => h.close());
    await r.kill();
    await r.start(); // no persistence: it comes back empty
    await expect.poll(async () => (await h.tick(h.now.value + 5_000), fatal.length), { timeout: 10_000 }).toBe(1);
    expect(fatal[0]!.message).toMatch(/is not the one this host was using .* it now holds no identity: it was wiped or replaced/);

    await expect(startTestHost({ store: r.url, dataDir: h.dataDir })).rejects.toThrow(/wiped or replaced.*delete .*store-identity/);
  });

  it("a per-activation save that fails leaves the event unapplied, so its retry counts once", async () => {
    const r = await redis({ persist: true });
    // Long enough for a busy machine to store the component; the kill below still fails the save.
    const h: TestHost = await startTestHost({ store: r.url, storeTimeoutMs: 2000 });
    cleanup.push(() => h.close());
    const { id } = await h.partitions.create({ name: "c", component: await h.deploy("counter", { engine: "quickjs" }), durability: "per-activation" });
    const count = () => counterCount(h, id);
    await h.partitions.deliver(id, event("increment", "1"));
    expect(await count()).toBe(1);

    await r.kill();
    await expect(h.partitions.deliver(id, event("increment", "1"))).rejects.toMatchObject({ code: "store-unavailable" });
    await r.start();
    await expect.poll(async () => (await h.health()).ok, { timeout: 10_000 }).toBe(true);
    expect(await count()).toBe(1);
    await h.partitions.deliver(id, event("increment", "1")); // the retry
    expect(await count()).toBe(2);
  });
});
