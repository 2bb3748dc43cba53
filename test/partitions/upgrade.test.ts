// Upgrades through the admin API, with real guests: counter → counter-v2 carries the count
// through `handover` on both JS engines; an upgrade to a version without `handover` starts
// fresh with on-activate(upgraded); either way the tasks and push URLs stay; a broken new
// version is refused with its cause and the old one keeps serving from its snapshot.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { guestFile, JS_ENGINES, type Guest, type JsEngine } from "../support/guests.ts";
import { testServers, type TestServer } from "../support/server.ts";

const server = testServers();

async function upload(s: TestServer, guest: Guest, engine?: JsEngine): Promise<string> {
  const { body } = await s.api("POST", "/api/components", new Uint8Array(await readFile(guestFile(guest, engine ? { engine } : {}))));
  return body.digest as string;
}

/** Deploy and activate a guest; returns the partition's id and its tasks by name. */
async function deployed(s: TestServer, guest: Guest, engine?: JsEngine) {
  const { status, body } = await s.api("POST", "/api/partitions", { name: "app", component: await upload(s, guest, engine) });
  expect(status, JSON.stringify(body)).toBe(201);
  return { id: body.id as string, component: body.component as string, tasks: byName(body.tasks) };
}

const byName = (tasks: { name: string }[]): Record<string, any> => Object.fromEntries(tasks.map((task) => [task.name, task]));

async function push(s: TestServer, url: string, body = ""): Promise<any> {
  const response = await fetch(`${s.pushUrl}${url}`, { method: "POST", body });
  expect(response.status).toBe(200);
  return response.json();
}

describe.each(JS_ENGINES)("on %s", (engine) => {
  it("carries the count from counter to counter-v2 through handover, keeping the tasks and push URL", async () => {
    const s = await server();
    const v1 = await deployed(s, "counter", engine);
    await push(s, v1.tasks.inbox.pushUrl);
    expect((await push(s, v1.tasks.inbox.pushUrl)).count).toBe(2);

    const { status, body } = await s.api("POST", `/api/partitions/app/upgrade`, { component: await upload(s, "counter-v2", engine) });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body.upgraded).toMatchObject({ from: v1.component, handedOver: expect.any(Number) });
    expect(body.component).toBe(body.upgraded.to);
    const tasks = byName(body.tasks);
    expect(tasks.inbox).toMatchObject({ id: v1.tasks.inbox.id, pushUrl: v1.tasks.inbox.pushUrl });
    expect(tasks.heartbeat).toMatchObject({ id: v1.tasks.heartbeat.id, nextFire: v1.tasks.heartbeat.nextFire });
    expect(tasks.nightly.trigger).toEqual({ cron: "0 3 * * *", timezone: "UTC" });

    expect(await push(s, v1.tasks.inbox.pushUrl, "after")).toMatchObject({ version: 2, count: 3, reasons: ["upgraded"], echo: "after" });
    // The new version's state survives a freeze: its snapshot is its own.
    await s.api("POST", `/api/partitions/app/freeze`);
    expect(await push(s, v1.tasks.inbox.pushUrl)).toMatchObject({ version: 2, count: 4, reasons: ["upgraded", "restored"] });
  });
});

it("starts a version without handover fresh with on-activate(upgraded), keeping the push URL and the cron task", async () => {
  const s = await server();
  const v1 = await deployed(s, "counter-v2");
  await push(s, v1.tasks.inbox.pushUrl);
  await push(s, v1.tasks.inbox.pushUrl);

  const { status, body } = await s.api("POST", `/api/partitions/${v1.id}/upgrade`, new Uint8Array(await readFile(guestFile("wat"))));
  expect(status, JSON.stringify(body)).toBe(200);
  expect(body.upgraded.handedOver).toBeNull();
  expect(s.events).toContainEqual(expect.objectContaining({ type: "activated", partition: v1.id, kind: "upgraded", reason: "upgraded" }));
  expect(byName(body.tasks).nightly).toMatchObject({
    id: v1.tasks.nightly.id,
    trigger: { cron: "0 3 * * *", timezone: "UTC" },
    nextFire: v1.tasks.nightly.nextFire,
  });
  expect(byName(body.tasks).inbox.pushUrl).toBe(v1.tasks.inbox.pushUrl);
  // wat-minimal answers with the events it has counted: fresh, so this is its first.
  const response = await fetch(`${s.pushUrl}${v1.tasks.inbox.pushUrl}`, { method: "POST" });
  expect(await response.text()).toBe("1");
  expect(s.logLines.map((line) => JSON.parse(line))).toContainEqual(
    expect.objectContaining({ event: "upgraded", partition: v1.id, from: v1.component, to: body.component, handedOver: null }),
  );
});

describe("a failed upgrade leaves the old version serving, with its snapshot", () => {
  it("when the new version's import-state refuses the state, answering with the guest's message", async () => {
    const s = await server();
    const v1 = await deployed(s, "counter", "quickjs");
    await push(s, v1.tasks.inbox.pushUrl);
    const before = (await s.api("GET", `/api/partitions/${v1.id}`)).body;

    const { status, body } = await s.api("POST", `/api/partitions/app/upgrade`, { component: await upload(s, "refuses-upgrade") });
    expect(status).toBe(502);
    expect(body.error).toMatchObject({ code: "upgrade-failed" });
    expect(body.error.message).toContain("import-state: wat-refuses-upgrade cannot read any state it is handed");

    const after = (await s.api("GET", `/api/partitions/${v1.id}`)).body;
    expect(after).toMatchObject({ component: v1.component, state: "frozen", snapshotBytes: expect.any(Number) });
    expect(after.snapshotBytes).toBeGreaterThan(0);
    expect(byName(after.tasks).inbox.pushUrl).toBe(v1.tasks.inbox.pushUrl);
    expect(before.component).toBe(after.component);
    expect(await push(s, v1.tasks.inbox.pushUrl)).toMatchObject({ count: 2 });
    expect(s.logLines.map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ event: "upgrade-failed", partition: v1.id }));
  });

  it("when the new version's on-activate(upgraded) fails", async () => {
    const s = await server();
    const { status: created, body: wat } = await s.api("POST", "/api/partitions", { name: "w", component: await upload(s, "wat") });
    expect(created).toBe(201);
    const url = `/api/partitions/${wat.id}`;
    const { status, body } = await s.api("POST", `${url}/upgrade`, { component: await upload(s, "refuses-upgrade") });
    expect(status).toBe(502);
    expect(body.error.message).toContain("on-activate(upgraded): wat-refuses-upgrade refuses every activation");
    expect((await s.api("GET", url)).body.component).toBe(wat.component);
    const activated = await s.api("POST", `${url}/activate`);
    expect(activated.body.kind).toBe("rehydrated");
  });

  it("when the new version is not a component", async () => {
    const s = await server();
    const v1 = await deployed(s, "counter", "quickjs");
    const { status, body } = await s.api("POST", `/api/partitions/app/upgrade`, new TextEncoder().encode("not wasm at all"));
    expect(status).toBe(400);
    expect(body.error.code).toBe("invalid-component");
    expect((await s.api("GET", `/api/partitions/${v1.id}`)).body.component).toBe(v1.component);
    expect((await push(s, v1.tasks.inbox.pushUrl)).count).toBe(1);
  });
});
