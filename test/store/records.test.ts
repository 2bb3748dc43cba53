// Stored records are plain JSON; records an earlier version wrote with V8's serializer
// (WIT BigInts inside) are read, converted and rewritten as JSON.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serialize } from "node:v8";
import { afterEach, describe, expect, it } from "vitest";
import { DeliveryStore } from "../../src/delivery/delivery-store.ts";
import { openStore, type Store } from "../../src/store/open.ts";
import { TaskRegistry } from "../../src/tasks/registry.ts";

const opened: { store: Store; dir: string }[] = [];
afterEach(async () => {
  for (const { store, dir } of opened.splice(0)) {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

async function fsStore() {
  const dir = await mkdtemp(join(tmpdir(), "dormant-records-"));
  const store = await openStore({ dataDir: dir });
  opened.push({ store, dir });
  return { store, dir };
}

const legacyTask = {
  id: "t_1",
  partition: "p_1",
  name: "beat",
  trigger: { tag: "every", val: 60_000n },
  entry: "tick",
  payload: new Uint8Array([1, 2, 3]),
  priority: 7,
  outlivePartition: false,
  retry: { maxAttempts: 6, initialBackoffMs: 2000n, maxBackoffMs: 300_000n },
  misfire: "fire-once",
  whenConstrained: "postpone",
  nextFire: 1_800_000_060_000,
  pushToken: undefined,
  registeredAt: 1_800_000_000_000,
};

describe("stored records", () => {
  it("writes task registrations as readable JSON, byte arrays in base64", async () => {
    const { store } = await fsStore();
    const registry = new TaskRegistry(store.registrations);
    await registry.apply("p_1", {
      upserts: [{ ...legacyTask, trigger: { tag: "every", val: 60_000 }, retry: { maxAttempts: 6, initialBackoffMs: 2000, maxBackoffMs: 300_000 } } as never],
      removals: [],
    });
    const text = Buffer.from((await store.registrations.getItemRaw<Uint8Array>("p_1"))!).toString("utf8");
    expect(JSON.parse(text)).toMatchObject([{ name: "beat", trigger: { tag: "every", val: 60_000 }, payload: { $bytes: "AQID" } }]);
  });

  it("holds one empty payload and one default retry policy for all the tasks that have them, after a restart too", async () => {
    const { store } = await fsStore();
    const plain = { ...legacyTask, payload: new Uint8Array(), retry: { maxAttempts: 6, initialBackoffMs: 2000, maxBackoffMs: 300_000 } };
    const registry = new TaskRegistry(store.registrations);
    await registry.apply("p_1", { upserts: [{ ...plain, id: "t_1" } as never], removals: [] });
    await registry.apply("p_2", { upserts: [{ ...plain, id: "t_2", retry: { ...plain.retry } } as never], removals: [] });
    const reloaded = new TaskRegistry(store.registrations);
    await reloaded.load();
    for (const each of [registry, reloaded]) {
      const [one, two] = [each.get("t_1")!, each.get("t_2")!];
      expect(one.payload).toBe(two.payload);
      expect(one.retry).toBe(two.retry);
      expect(one).toMatchObject({ payload: new Uint8Array(), retry: plain.retry });
    }
  });

  it("reads registrations written with V8's serializer, with numbers for BigInts, and rewrites them as JSON", async () => {
    const { store } = await fsStore();
    await store.registrations.setItemRaw("p_1", serialize([legacyTask]));
    const registry = new TaskRegistry(store.registrations);
    await registry.load();
    expect(registry.get("t_1")).toMatchObject({
      trigger: { tag: "every", val: 60_000 },
      retry: { initialBackoffMs: 2000, maxBackoffMs: 300_000 },
      payload: new Uint8Array([1, 2, 3]),
    });
    const rewritten = Buffer.from((await store.registrations.getItemRaw<Uint8Array>("p_1"))!).toString("utf8");
    expect(JSON.parse(rewritten)[0].trigger).toEqual({ tag: "every", val: 60_000 });
  });

  it("reads pending deliveries written with V8's serializer", async () => {
    const { store } = await fsStore();
    const legacy = {
      id: "e_1",
      kind: "push",
      taskId: "t_1",
      taskName: "inbox",
      partition: "p_1",
      entry: "push",
      payload: new Uint8Array(),
      priority: 1,
      whenConstrained: "postpone",
      retry: { maxAttempts: 6, initialBackoffMs: 2000n, maxBackoffMs: 300_000n },
      scheduledAt: 5,
      occurrences: 1,
      request: { method: "POST", path: "/", query: "", headers: [["a", "b"]], body: new Uint8Array([104, 105]) },
      attempts: 1,
      nextAttemptAt: 9,
    };
    await store.deliveries.setItemRaw("e_1", serialize(legacy));
    const [pending] = await new DeliveryStore(store.deliveries, store.deadLetters).pending();
    expect(pending).toMatchObject({ retry: { initialBackoffMs: 2000 }, request: { body: new Uint8Array([104, 105]) }, nextAttemptAt: 9 });
  });
});
