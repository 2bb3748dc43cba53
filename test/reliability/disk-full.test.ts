// A full disk, for real: an 8 MiB tmpfs the test mounts (it needs root, as CI has) holds
// the fs store and is filled to the last byte. Work the disk could not take is never
// acknowledged, errors say ENOSPC and name the store, a failed deploy leaves nothing
// behind, and once space is freed the host goes on without a restart.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, open, readdir, readFile, rm, rmdir, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { guestFile } from "../support/guests.ts";
import { counterCount, startTestHost, type TestHost } from "../support/host.ts";
import { event } from "../support/runtime.ts";
import { liveInbox, startTestServer, type TestServer } from "../support/server.ts";

let disk: string;
let dirs = 0;

beforeAll(async () => {
  disk = await mkdtemp(join(tmpdir(), "dormant-full-disk-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", disk], { stdio: "pipe" });
  } catch (error) {
    await rmdir(disk);
    const why = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
    throw new Error(`This test needs root: it mounts an 8 MiB tmpfs (mount -t tmpfs) to fill, and mount was refused (${why}). CI runs it as root.`);
  }
});

afterAll(async () => {
  if (!disk) return;
  execFileSync("umount", [disk]);
  await rmdir(disk);
});

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

/** A fresh folder on the small disk, removed after the test. */
async function dataDir(): Promise<string> {
  const dir = join(disk, `data-${++dirs}`);
  await mkdir(dir);
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Take all the disk's free space but `leave` bytes; returns a function that gives it back. */
async function fill(leave = 0): Promise<() => Promise<void>> {
  const file = join(disk, `filler-${++dirs}`);
  const free = async () => {
    const { bavail, bsize } = await statfs(disk);
    return bavail * bsize;
  };
  const handle = await open(file, "w");
  try {
    // Writes until the disk says no (tmpfs counts in pages, so ask again until it is full).
    let want = (await free()) - leave;
    while (want > 0) {
      await handle.write(Buffer.alloc(Math.min(want, 4 * 2 ** 20)));
      want = (await free()) - leave;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    await handle.close();
  }
  const release = () => rm(file, { force: true });
  cleanup.push(release);
  return release;
}

async function server(): Promise<TestServer> {
  const s = await startTestServer({ dataDir: await dataDir() });
  cleanup.push(() => s.close());
  return s;
}

const pushAsync = (url: string) => fetch(url, { method: "POST", headers: { prefer: "respond-async" }, body: "x" });

describe("a full disk under the fs store", () => {
  it("refuses an async push with 503 saying ENOSPC and naming the store, and takes pushes again once space is freed, without a restart", async () => {
    const s = await server();
    const url = await liveInbox(s);
    const release = await fill();

    const refused = await pushAsync(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBeTruthy();
    const { error } = await refused.json();
    expect(error.code).toBe("store-unavailable");
    expect(error.message).toContain("ENOSPC");
    expect(error.message).toContain(`fs:${s.host.store.config.kind === "fs" ? s.host.store.config.dir : ""}`);
    expect(error.message).toContain("Nothing was acknowledged");
    expect(s.host.deliveries.backlog.count).toBe(0);

    await release();
    expect((await pushAsync(url)).status).toBe(202);
    await s.host.settled();
    expect(s.host.deliveries.pendingDeliveries()).toEqual([]);
  });

  it("does not keep a per-activation event whose snapshot could not be written, so its retry counts once", async () => {
    const h: TestHost = await startTestHost({ dataDir: await dataDir() });
    cleanup.push(() => h.close());
    const { id } = await h.partitions.create({ name: "c", component: await h.deploy("counter", { engine: "quickjs" }), durability: "per-activation" });
    const count = () => counterCount(h, id);
    await h.partitions.deliver(id, event("increment", "1"));
    expect(await count()).toBe(1);

    const release = await fill();
    const failed = h.partitions.deliver(id, event("increment", "1"));
    await expect(failed).rejects.toMatchObject({ code: "store-unavailable" });
    await expect(failed).rejects.toThrow(/ENOSPC/);

    await release();
    expect(await count()).toBe(1);
    await h.partitions.deliver(id, event("increment", "1")); // the retry
    expect(await count()).toBe(2);
  });

  it("keeps an on-idle partition live, its state whole, when its freeze cannot be written, and freezes it once space is freed", async () => {
    const h: TestHost = await startTestHost({ dataDir: await dataDir() });
    cleanup.push(() => h.close());
    const { id } = await h.partitions.create({ name: "c", component: await h.deploy("counter", { engine: "quickjs" }) });
    for (let i = 0; i < 3; i++) await h.partitions.deliver(id, event("increment", "1"));

    const release = await fill();
    await expect(h.partitions.freeze(id)).rejects.toThrow(/ENOSPC/);
    // Live, not restored: the events since the last stored snapshot (none) are all there.
    expect(h.partitions.liveIds()).toContain(id);
    expect(h.events.filter((e) => e.type === "activated")).toHaveLength(1);
    expect(await counterCount(h, id)).toBe(3);

    await release();
    await h.partitions.freeze(id);
    expect(h.partitions.liveIds()).not.toContain(id);
    expect(await counterCount(h, id)).toBe(3);
  });

  it("answers a deploy the engine cache cannot hold with 507 saying ENOSPC, leaves no staging folder, and deploys once space is freed", async () => {
    const dir = await dataDir();
    const cache = join(dir, "engine-cache");
    const s = await startTestServer({ dataDir: dir, engineCacheDir: cache });
    cleanup.push(() => s.close());
    const bytes = new Uint8Array(await readFile(guestFile("counter", { engine: "quickjs" })));
    const release = await fill(256 * 1024);

    const refused = await s.api("POST", "/api/components", bytes);
    expect(refused.status).toBe(507);
    expect(refused.body.error.code).toBe("engine-cache-write");
    expect(refused.body.error.message).toContain("ENOSPC");
    expect(refused.body.error.message).toContain(cache);
    expect(await readdir(cache).catch(() => [])).toEqual([]);
    expect((await s.api("GET", "/api/components")).body.components).toEqual([]);

    await release();
    const deployed = await s.api("POST", "/api/components", bytes);
    expect(deployed.status).toBe(201);
    expect(await readdir(cache)).toEqual([deployed.body.digest.replace("sha256:", "")]);
  });
});
