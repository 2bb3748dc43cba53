// A bound on unsaved state: an `on-idle` partition that is never idle long enough to freeze
// is still saved after a number of events or a busy time, so a kill loses at most that much.
// A "kill" here stops the first host's executors without freezing anything, then starts a second host on its data.
import { afterEach, describe, expect, it } from "vitest";
import { crash, startTestHost, type TestHost } from "../support/host.ts";
import { event } from "../support/runtime.ts";

const open: TestHost[] = [];
afterEach(async () => {
  for (const h of open.splice(0).reverse()) await h.close();
});

async function host(options: Parameters<typeof startTestHost>[0]): Promise<TestHost> {
  const h = await startTestHost({ idleTimeoutMs: 3_600_000, ...options });
  open.push(h);
  return h;
}

async function kill(h: TestHost): Promise<TestHost> {
  open.splice(open.indexOf(h), 1);
  await crash(h);
  return host({ dataDir: h.dataDir });
}

async function count(h: TestHost, id: string): Promise<number> {
  const outcome = await h.partitions.deliver(id, event("get", ""));
  if (!outcome.ok) throw new Error(outcome.error);
  return JSON.parse(new TextDecoder().decode(outcome.reply!.body)).count;
}

const increment = (h: TestHost, id: string) => h.partitions.deliver(id, event("increment", "1"));

describe("checkpoints of busy on-idle partitions", () => {
  it("saves a partition every N events, so a kill loses fewer than N", async () => {
    const h = await host({ checkpoint: { events: 5, busyMs: 3_600_000 } });
    const { id } = await h.partitions.create({ name: "busy", component: await h.deploy("counter") });
    for (let i = 0; i < 12; i++) await increment(h, id);
    expect(h.events.filter((e) => e.type === "checkpointed" && e.partition === id)).toHaveLength(2);
    expect(h.partitions.stateOf(id)).toBe("idle"); // still live: a checkpoint is not a freeze

    const afterKill = await kill(h);
    expect(await count(afterKill, id)).toBe(10);
  });

  it("saves a partition once it has been busy for the checkpoint interval, however few its events", async () => {
    const h = await host({ checkpoint: { events: 1000, busyMs: 10_000 } });
    const { id } = await h.partitions.create({ name: "slow", component: await h.deploy("counter") });
    await increment(h, id);
    h.now.value += 6_000;
    await increment(h, id);
    expect(h.events.some((e) => e.type === "checkpointed")).toBe(false);
    h.now.value += 6_000;
    await increment(h, id);
    expect(h.events.filter((e) => e.type === "checkpointed")).toHaveLength(1);

    const afterKill = await kill(h);
    expect(await count(afterKill, id)).toBe(3);
  });
});
