// The counter example guest, tested as its author would test it: through the test kit
// ("dormant/testing"), on its built component, with time moved by the kit's fake clock.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestHost, type TestHost } from "dormant/testing";
import { guestFile } from "../support/guests.ts";

// One engine here: test/guests/hello-ts.test.ts runs the kit on both.
describe("the counter guest", () => {
  let t: TestHost;
  beforeEach(async () => {
    t = await createTestHost({ guest: guestFile("counter"), start: "2030-01-01T00:00:00Z" });
  });
  afterEach(() => t.close());

  it("registers a heartbeat every minute and an inbox push task when first activated", () => {
    expect(t.tasks()).toMatchObject([
      { name: "heartbeat", trigger: { tag: "every", val: 60_000 }, entry: "tick", nextFire: new Date("2030-01-01T00:01:00Z") },
      { name: "inbox", trigger: { tag: "push" }, entry: "push", nextFire: undefined, pushPath: expect.stringMatching(/^\/push\//) },
    ]);
  });

  it("answers a push with its count and echoes the body", async () => {
    const reply = await t.push("inbox", { body: "hi" });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toBe("application/json");
    expect(await reply.json()).toEqual({ count: 1, activations: 1, echo: "hi" });
  });

  it("counts one heartbeat per minute as time passes", async () => {
    await t.advance("1h");
    expect(t.events.filter((e) => e.type === "delivered" && e.name === "heartbeat")).toHaveLength(60);
    expect(await (await t.push("inbox")).json()).toMatchObject({ count: 61 });
    expect(t.tasks()[0]!.nextFire).toEqual(new Date("2030-01-01T01:01:00Z"));
  });

  it("keeps its count across a freeze: the next push rehydrates it", async () => {
    await t.push("inbox");
    await t.push("inbox");
    await t.freeze();
    expect(t.state()).toBe("frozen");
    expect(await (await t.push("inbox")).json()).toMatchObject({ count: 3, activations: 2 });
    expect(t.events.filter((e) => e.type === "activated").map((e) => e.type === "activated" && e.kind)).toEqual(["fresh", "rehydrated"]);
    expect(t.logs.map((l) => [l.level, l.message])).toEqual([
      ["info", "counter activated (fresh), count=0"],
      ["info", "counter activated (restored), count=2"],
    ]);
  });
});
