// Components and the engine cache do not grow for ever: a component nobody uses can be
// removed (and is, after a while), never one in use; the cache keeps within its size by
// dropping the entries of components without a live partition, which are prepared again
// when next needed; and what is on disk is reported by kind.
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guestFile } from "../support/guests.ts";
import { testHosts } from "../support/host.ts";
import { BIN } from "../support/serve-process.ts";
import { testServers } from "../support/server.ts";

const servers = testServers();
const hosts = testHosts();

/** The minimal WAT guest with a custom section appended: a distinct component (digest) per tag. */
async function watVariant(tag: string): Promise<Uint8Array> {
  const base = await readFile(guestFile("wat"));
  const name = Buffer.from("dormant-test");
  const body = Buffer.concat([Buffer.from([name.length]), name, Buffer.from(tag)]);
  return new Uint8Array(Buffer.concat([base, Buffer.from([0, body.length]), body]));
}

const hexOf = (digest: string) => digest.replace("sha256:", "");
const MINUTE = 60_000;

describe("removing a component", () => {
  it("is refused with 409 naming the partitions that run it, and once they are deleted removes its bytes and its engine-cache entry", async () => {
    const s = await servers({ engineCacheDir: undefined });
    const cache = join(s.host.store.config.kind === "fs" ? s.host.store.config.dir : "", "engine-cache");
    const { body: component } = await s.api("POST", "/api/components", await watVariant("in-use"));
    const { body: partition } = await s.api("POST", "/api/partitions", { name: "w", component: component.digest, activate: false });
    expect(await readdir(cache)).toContain(hexOf(component.digest));

    const refused = await s.api("DELETE", `/api/components/${encodeURIComponent(component.digest)}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("component-in-use");
    expect(refused.body.error.message).toContain(partition.id);

    await s.api("DELETE", `/api/partitions/${partition.id}`);
    expect((await s.api("DELETE", `/api/components/${encodeURIComponent(component.digest)}`)).status).toBe(204);
    expect((await s.api("GET", "/api/components")).body.components).toEqual([]);
    expect(await readdir(cache)).not.toContain(hexOf(component.digest));
    expect(s.events).toContainEqual({ type: "component-removed", component: component.digest, reason: "asked" });
    expect(s.events).toContainEqual(expect.objectContaining({ type: "engine-cache-evicted", component: component.digest, reason: "removed" }));
    expect(s.logLines.some((line) => line.includes('"event":"component-removed"'))).toBe(true);

    const again = await s.api("DELETE", `/api/components/${hexOf(component.digest)}`);
    expect(again.status).toBe(400);
    expect(again.body.error.code).toBe("unknown-component");
  });

  it("is what dormant components remove does, exiting 1 with the refusal while a partition runs it", async () => {
    const s = await servers();
    const { body: component } = await s.api("POST", "/api/components", await watVariant("cli"));
    const { body: partition } = await s.api("POST", "/api/partitions", { name: "w", component: component.digest, activate: false });
    const dormant = (...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile("node", [BIN, ...args, "--url", s.adminUrl, "--token", s.adminToken], (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        ),
      );

    const refused = await dormant("components", "remove", component.digest);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("409");
    expect(refused.stderr).toContain(`in use by partitions ${partition.id}`);

    await s.api("DELETE", `/api/partitions/${partition.id}`);
    expect(await dormant("components", "remove", component.digest)).toEqual({ code: 0, stdout: `removed ${component.digest}\n`, stderr: "" });
    expect((await s.api("GET", "/api/components")).body.components).toEqual([]);
  });

  it("happens by itself once nobody has used it for the configured time", async () => {
    const h = await hosts.start({ retention: { unusedComponentMs: 60 * MINUTE, sweepMs: 10 * MINUTE } });
    const unused = (await h.components.add(await watVariant("unused"))).digest;
    const used = (await h.components.add(await watVariant("used"))).digest;
    await h.partitions.create({ name: "w", component: used });

    await h.tick(h.now.value + 10 * MINUTE); // first seen unused
    expect((await h.components.list()).sort()).toEqual([unused, used].sort());
    await h.tick(h.now.value + 60 * MINUTE);
    expect(await h.components.list()).toEqual([used]);
    expect(h.events).toContainEqual({ type: "component-removed", component: unused, reason: "unused" });
  });
});

describe("the engine cache", () => {
  it("keeps within its size by dropping the entries of components without a live partition, which are prepared again on the next wake", async () => {
    const h = await hosts.start({ engineCacheDir: undefined, retention: { engineCacheBytes: 1, sweepMs: 10 * MINUTE } });
    const cache = join(h.dataDir, "engine-cache");
    const [live, frozen, unused] = [
      (await h.components.add(await watVariant("live"))).digest,
      (await h.components.add(await watVariant("frozen"))).digest,
      (await h.components.add(await watVariant("unused"))).digest,
    ];
    const { id: liveId } = await h.partitions.create({ name: "live", component: live });
    const { id: frozenId } = await h.partitions.create({ name: "frozen", component: frozen });
    await h.partitions.activate(frozenId);
    await h.partitions.freeze(frozenId);
    expect((await readdir(cache)).length).toBe(3);

    await h.tick(h.now.value + 10 * MINUTE);
    await h.partitions.activate(liveId); // in use when the sweep comes
    expect((await h.retention.sweep()).components).toEqual([]);
    expect(await readdir(cache)).toEqual([hexOf(live)]);
    const evicted = h.events.filter((e) => e.type === "engine-cache-evicted");
    expect(evicted.map((e) => e.type === "engine-cache-evicted" && [e.component, e.reason])).toEqual(
      expect.arrayContaining([
        [unused, "over-size"],
        [frozen, "over-size"],
      ]),
    );
    // The unused component's entry goes before the frozen partition's.
    expect(evicted[0]!.type === "engine-cache-evicted" && evicted[0]!.component).toBe(unused);

    expect(await h.partitions.activate(frozenId)).toBe("rehydrated");
    expect((await readdir(cache)).sort()).toEqual([hexOf(live), hexOf(frozen)].sort());
    expect((await h.retention.measure()).engineCache).toMatchObject({ entries: 2, capacityBytes: 1 });
  });

  it("is only measured, never trimmed, when it lies outside the data directory (it may be shared with other hosts)", async () => {
    const h = await hosts.start({ retention: { engineCacheBytes: 1, sweepMs: 10 * MINUTE } });
    const digest = (await h.components.add(await watVariant("shared"))).digest;
    await h.tick(h.now.value + 20 * MINUTE);
    await h.retention.sweep();
    expect(h.events.filter((e) => e.type === "engine-cache-evicted")).toEqual([]);
    expect((await h.retention.measure()).engineCache.bytes).toBeGreaterThan(0);
    expect(await h.components.list()).toEqual([digest]);
  });
});

describe("disk use", () => {
  it("is reported by kind in GET /api/stats and as dormant_disk_bytes", async () => {
    const s = await servers({ engineCacheDir: undefined });
    const { body: component } = await s.api("POST", "/api/components", await watVariant("stats"));
    const { body: partition } = await s.api("POST", "/api/partitions", { name: "w", component: component.digest });
    await s.api("POST", `/api/partitions/${partition.id}/freeze`);

    const { status, body } = await s.api("GET", "/api/stats");
    expect(status).toBe(200);
    const { store, engineCache, total } = body.disk;
    expect(store.snapshots).toBeGreaterThan(0);
    expect(store.components).toBe((await watVariant("stats")).length);
    expect(store.deliveries).toBe(0);
    expect(store.records).toBeGreaterThan(0);
    expect(engineCache.entries).toBe(1);
    expect(total).toBe(Object.values(store as Record<string, number>).reduce((a, b) => a + b, 0) + engineCache.bytes);

    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/dormant_disk_bytes\{kind="snapshots"\} [1-9]/);
    expect(metrics).toMatch(/dormant_disk_bytes\{kind="engine-cache"\} [1-9]/);
  });
});
