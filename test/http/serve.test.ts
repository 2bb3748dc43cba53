// `dormant serve` over real HTTP on loopback: push triggers reach sleeping partitions,
// timers fire, and the admin API, metrics and status page (on the admin port) tell what
// happened.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { guestFile, JS_ENGINES, type JsEngine } from "../support/guests.ts";
import { event } from "../support/runtime.ts";
import { testServers, type TestServer } from "../support/server.ts";

const server = testServers();

/** Activate a counter partition (it registers `heartbeat` every 60 s and an `inbox` push task) and return its push URL. */
async function counterWithInbox(s: TestServer, engine?: JsEngine) {
  const id = await s.deploy("counter", "counter", { engine });
  await s.api("POST", `/api/partitions/${id}/activate`);
  const { body } = await s.api("GET", `/api/tasks?partition=${id}`);
  const inbox = body.tasks.find((t: { name: string }) => t.name === "inbox");
  const heartbeat = body.tasks.find((t: { name: string }) => t.name === "heartbeat");
  return { id, push: `${s.pushUrl}${inbox.pushUrl}`, heartbeat };
}

/** Deliver an event straight to a guest entry (not through a task or HTTP). */
function direct(s: TestServer, partition: string, entry: string, payload: string) {
  return s.host.partitions.deliver(partition, event(entry, payload));
}

/** A recorder partition with one push task of this spec; returns the push URL. */
async function recorderPush(s: TestServer, spec: object, engine?: JsEngine) {
  const id = await s.deploy("recorder", "recorder", { engine });
  const { body } = await s.api("POST", `/api/partitions/${id}/activate`);
  expect(body.kind).toBe("fresh");
  await direct(s, id, "register", JSON.stringify([{ push: true, ...spec }]));
  const { body: tasks } = await s.api("GET", `/api/tasks?partition=${id}`);
  return { id, url: `${s.pushUrl}${tasks.tasks[0].pushUrl}` };
}

describe.each(JS_ENGINES)("dormant serve, a JS guest on %s", (engine) => {
  it("wakes a frozen partition for a push and answers with the guest's reply; its timer fires; /metrics shows both", async () => {
    const s = await server();
    const { id, push, heartbeat } = await counterWithInbox(s, engine);
    expect((await s.api("POST", `/api/partitions/${id}/freeze`)).body.state).toBe("frozen");
    const response = await fetch(push, { method: "POST", body: "hello" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ count: 1, activations: 2, echo: "hello" });
    // Frozen again once idle (10 s), then woken a second (--prewarm) before the heartbeat is due.
    await s.tick(s.now.value + 10_000);
    expect(s.host.partitions.stateOf(id)).toBe("frozen");
    await s.tick(heartbeat.nextFire - 1000);
    await s.tick(heartbeat.nextFire);
    expect(s.events.find((e) => e.type === "delivered" && e.kind === "timer")).toMatchObject({ name: "heartbeat", outcome: { ok: true } });
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    // Woken by the push, frozen again once idle, woken ahead of the heartbeat.
    expect(metrics).toMatch(/dormant_activations_total\{kind="rehydrated"\} 2/);
    expect(metrics).toMatch(/dormant_prewarms_total 1/);
    expect(metrics).toMatch(/dormant_push_requests_total\{status="200"\} 1/);
    expect(metrics).toMatch(/dormant_deliveries_total\{outcome="ok"\} 2/);
    expect(metrics).toMatch(/dormant_fire_lateness_ms_count 1/);
    // Both wakes found the snapshot frozen just before in memory.
    expect(metrics).toMatch(/dormant_snapshot_cache_lookups_total\{result="hit"\} 2/);
    expect(s.logLines.map((line) => JSON.parse(line))).toContainEqual(
      expect.objectContaining({ event: "delivery", partition: id, task: "inbox", source: "push", activation: "rehydrated", ok: true }),
    );
  });

  it("delivers method, path, query, headers and body to the push task", async () => {
    const s = await server();
    const { url } = await recorderPush(s, { name: "hook" }, engine);
    const response = await fetch(`${url}/orders/7?expand=items`, { method: "PUT", headers: { "x-trace": "abc" }, body: "payload" });
    expect(response.status).toBe(200);
    const seen = await response.json();
    expect(seen).toMatchObject({ method: "PUT", path: "/orders/7", query: "expand=items", body: "payload" });
    expect(seen.headers).toContainEqual(["x-trace", "abc"]);
  });

  it("answers 204 when the guest returns no reply", async () => {
    const s = await server();
    const { url } = await recorderPush(s, { name: "quiet", payload: "no-reply" }, engine);
    const response = await fetch(url, { method: "POST" });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe("");
  });

  it("accepts a push with Prefer: respond-async, answers 202 with an event id, and delivers it", async () => {
    const s = await server();
    const { url } = await recorderPush(s, { name: "hook" }, engine);
    const response = await fetch(url, { method: "POST", headers: { prefer: "respond-async" }, body: "later" });
    expect(response.status).toBe(202);
    const { delivery } = await response.json();
    expect(delivery).toMatch(/^e_/);
    expect(await s.waitFor((e) => e.type === "delivered" && e.delivery === delivery)).toMatchObject({ kind: "push", outcome: { ok: true } });
  });

  it("retries an async push that fails, then dead-letters it, and retries the dead letter on request", async () => {
    const s = await server();
    const { url } = await recorderPush(s, { name: "flaky", payload: "fail:1", retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 } }, engine);
    const { delivery } = await (await fetch(url, { method: "POST", headers: { prefer: "respond-async" } })).json();
    await s.waitFor((e) => e.type === "dead-lettered" && e.delivery === delivery);
    const { body } = await s.api("GET", "/api/dead-letters");
    expect(body.deadLetters).toMatchObject([{ id: delivery, kind: "push", attempts: 1, lastError: "attempt 1 of flaky failed on purpose" }]);
    expect((await s.api("POST", `/api/dead-letters/${delivery}/retry`)).status).toBe(202);
    await s.waitFor((e) => e.type === "delivered" && e.delivery === delivery && e.attempt === 2);
    expect((await s.api("GET", "/api/dead-letters")).body.deadLetters).toEqual([]);
    expect((await s.api("POST", "/api/dead-letters/e_nope/retry")).status).toBe(404);
  });

  it("keeps a push URL when its task is registered again, and revokes it when the task is cancelled", async () => {
    const s = await server();
    const { id, url } = await recorderPush(s, { name: "hook" }, engine);
    await direct(s, id, "register", JSON.stringify([{ name: "hook", push: true, priority: 7 }]));
    const { body } = await s.api("GET", `/api/tasks?partition=${id}`);
    expect(body.tasks).toMatchObject([{ name: "hook", priority: 7 }]);
    expect(`${s.pushUrl}${body.tasks[0].pushUrl}`).toBe(url);
    expect((await fetch(url, { method: "POST" })).status).toBe(200);
    await direct(s, id, "cancel", "hook");
    expect((await fetch(url, { method: "POST" })).status).toBe(404);
    await direct(s, id, "register", JSON.stringify([{ name: "hook", push: true }]));
    const { body: again } = await s.api("GET", `/api/tasks?partition=${id}`);
    expect(`${s.pushUrl}${again.tasks[0].pushUrl}`).not.toBe(url);
  });

  it("deploys and activates a partition in one request, answering with its tasks and their full push URLs", async () => {
    const s = await server();
    const { body: component } = await s.api("POST", "/api/components", new Uint8Array(await readFile(guestFile("counter"))));
    const { status, body } = await s.api("POST", "/api/partitions", { name: "shop", component: component.digest });
    expect(status).toBe(201);
    expect(body).toMatchObject({ name: "shop", kind: "fresh", state: "idle" });
    const inbox = body.tasks.find((t: { name: string }) => t.name === "inbox");
    expect(inbox.absolutePushUrl).toBe(`${s.pushUrl}${inbox.pushUrl}`);
    expect((await fetch(inbox.absolutePushUrl, { method: "POST" })).status).toBe(200);
    const named = await s.api("GET", "/api/tasks?partition=shop");
    expect(named.body.tasks.map((t: { name: string }) => t.name).sort()).toEqual(["heartbeat", "inbox"]);
  });

  it("logs a crash while handling a push as one line: the delivery's, marked as a trap", async () => {
    // A deadline the activation keeps even on a busy machine; the spin would outrun any.
    const s = await server({ partitionLimits: { cpuDeadlineMs: 2000 } });
    const { id, url } = await recorderPush(s, { name: "spinner", entry: "spin", payload: "1000000000000" });
    expect((await fetch(url, { method: "POST" })).status).toBe(502);
    const lines = s.logLines.map((line) => JSON.parse(line)).filter((line) => line.partition === id && line.event !== "frozen" && line.event !== "guest-log");
    expect(lines).toMatchObject([{ event: "delivery", task: "spinner", ok: false, trap: true, error: expect.stringMatching(/ran past its 2000 ms deadline/) }]);
  });

  it("answers an unknown push URL with 404", async () => {
    const s = await server();
    const response = await fetch(`${s.pushUrl}/push/${"A".repeat(32)}`, { method: "POST" });
    expect(response.status).toBe(404);
    expect((await response.json()).error.code).toBe("unknown-push-url");
  });

  it("refuses a push body over the limit with 413", async () => {
    const s = await server({ http: { maxBodyBytes: 1024 } });
    const { url } = await recorderPush(s, { name: "hook" }, engine);
    const response = await fetch(url, { method: "POST", body: "x".repeat(1025) });
    expect(response.status).toBe(413);
    expect((await response.json()).error.message).toMatch(/1024-byte limit/);
  });

  it("refuses a streamed push body (no declared length) over the limit with 413", async () => {
    const s = await server({ http: { maxBodyBytes: 1024 } });
    const { url } = await recorderPush(s, { name: "hook" }, engine);
    const chunk = new TextEncoder().encode("x".repeat(600));
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(chunk);
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const response = await fetch(url, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(response.status).toBe(413);
    expect((await response.json()).error.message).toMatch(/1024-byte limit/);
  });

  it("rate-limits a push URL with 429 and Retry-After", async () => {
    const s = await server({ http: { pushRate: { perSecond: 1, burst: 2 } } });
    const { url } = await recorderPush(s, { name: "hook" }, engine);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(url, { method: "POST" })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await fetch(url, { method: "POST" });
    expect(limited.headers.get("retry-after")).toBe("1");
    s.now.value += 1000;
    expect((await fetch(url, { method: "POST" })).status).toBe(200);
  });

  it("answers a guest error with 502", async () => {
    const s = await server();
    const { url } = await recorderPush(s, { name: "broken", payload: "fail:99" }, engine);
    const response = await fetch(url, { method: "POST" });
    expect(response.status).toBe(502);
    expect((await response.json()).error.message).toMatch(/attempt 1 of broken failed on purpose/);
  });

  it("answers 504 when the guest misses the push deadline", async () => {
    const s = await server({ http: { pushDeadlineMs: 50 } });
    const { url } = await recorderPush(s, { name: "slow", entry: "spin", payload: "2000000" }, engine);
    const response = await fetch(url, { method: "POST" });
    expect(response.status).toBe(504);
    expect((await response.json()).error.code).toBe("guest-deadline");
  });

  it("answers 503 to a synchronous push below the threshold of a constrained budget", async () => {
    const s = await server();
    const { url } = await recorderPush(s, { name: "low", priority: 1 }, engine);
    expect((await s.api("PUT", "/api/budget", { constrained: true, threshold: 50 })).body).toMatchObject({ constrained: true, threshold: 50 });
    const response = await fetch(url, { method: "POST" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("60");
  });
});

describe("admin API", () => {
  it("refuses a request without a token (401) and with a wrong one (403)", async () => {
    const s = await server();
    const missing = await fetch(`${s.adminUrl}/api/partitions`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toBe("Bearer");
    const wrong = await fetch(`${s.adminUrl}/api/partitions`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(403);
  });

  it("deploys a component, creates a partition, and lists both", async () => {
    const s = await server();
    const id = await s.deploy("counter", "shop-1");
    const components = (await s.api("GET", "/api/components")).body.components;
    expect(components).toHaveLength(1);
    const { body } = await s.api("GET", "/api/partitions");
    expect(body.partitions).toMatchObject([{ id, name: "shop-1", state: "frozen", registrations: "host", durability: "on-idle" }]);
    const detail = (await s.api("GET", `/api/partitions/${id}`)).body;
    expect(detail).toMatchObject({ id, activations: 0, tasks: [] });
  });

  it("answers a bad partition spec with 400 naming the field", async () => {
    const s = await server();
    expect((await s.api("POST", "/api/partitions", { name: "ok", component: "nope" })).body.error).toMatchObject({
      code: "invalid-field",
      message: expect.stringMatching(/Field "component"/),
    });
    expect((await s.api("POST", "/api/partitions", { name: "bad name", component: `sha256:${"0".repeat(64)}` })).body.error.message).toMatch(/Field "name"/);
    expect((await s.api("POST", "/api/partitions", { name: "ok", component: `sha256:${"0".repeat(64)}`, registrations: "both" })).body.error.message).toMatch(
      /Field "registrations"/,
    );
    const unknown = await s.api("POST", "/api/partitions", { name: "ok", component: `sha256:${"0".repeat(64)}` });
    expect(unknown).toMatchObject({ status: 400, body: { error: { code: "unknown-component" } } });
    const headers = { authorization: `Bearer ${s.adminToken}`, "content-type": "application/json" };
    const notJson = await fetch(`${s.adminUrl}/api/partitions`, { method: "POST", headers, body: "{" });
    expect(notJson.status).toBe(400);
  });

  it("refuses an upload that is not a component with 400 and a reason", async () => {
    const s = await server();
    const { status, body } = await s.api("POST", "/api/components", new TextEncoder().encode("definitely not wasm"));
    expect(status).toBe(400);
    expect(body.error.code).toBe("invalid-component");
    expect(body.error.message.length).toBeGreaterThan(20);
  });

  it("freezes, activates and deletes a partition", async () => {
    const s = await server();
    const id = await s.deploy("counter");
    expect((await s.api("POST", `/api/partitions/${id}/activate`)).body).toMatchObject({ kind: "fresh", state: "idle" });
    const frozen = (await s.api("POST", `/api/partitions/${id}/freeze`)).body;
    expect(frozen.state).toBe("frozen");
    expect(frozen.snapshotBytes).toBeGreaterThan(0);
    expect((await s.api("POST", `/api/partitions/${id}/activate`)).body.kind).toBe("rehydrated");
    expect((await s.api("DELETE", `/api/partitions/${id}`)).status).toBe(204);
    expect((await s.api("GET", `/api/partitions/${id}`)).status).toBe(404);
    expect((await s.api("GET", "/api/tasks")).body.tasks).toEqual([]);
  });

  it("reads and sets the budget, refusing a bad value with 400 naming the field", async () => {
    const s = await server();
    expect((await s.api("GET", "/api/budget")).body).toMatchObject({ constrained: false, maxConcurrent: 64 });
    expect((await s.api("PUT", "/api/budget", { threshold: 300 })).body.error.message).toMatch(/threshold/);
    expect((await s.api("PUT", "/api/budget", { speed: 1 })).body.error.message).toMatch(/Unknown field "speed"/);
    expect((await s.api("PUT", "/api/budget", { maxConcurrent: 4 })).body.maxConcurrent).toBe(4);
  });

  it("fires a task on request, outside its schedule", async () => {
    const s = await server();
    const { heartbeat } = await counterWithInbox(s);
    const { status, body } = await s.api("POST", `/api/tasks/${heartbeat.id}/fire`);
    expect(status).toBe(202);
    expect(await s.waitFor((e) => e.type === "delivered" && e.delivery === body.delivery)).toMatchObject({ kind: "manual", name: "heartbeat" });
    expect((await s.api("GET", `/api/tasks?partition=${heartbeat.partition}`)).body.tasks.find((t: { id: string }) => t.id === heartbeat.id).nextFire).toBe(
      heartbeat.nextFire,
    );
    expect((await s.api("POST", "/api/tasks/t_nope/fire")).status).toBe(404);
  });
});

describe("status page and health", () => {
  it("asks for the token without one, and renders partitions and tasks with it", async () => {
    const s = await server();
    const { id } = await counterWithInbox(s);
    const anonymous = await fetch(`${s.adminUrl}/`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).toMatch(/<form method="post" action="\/login">/);
    const login = await fetch(`${s.adminUrl}/login`, { method: "POST", body: new URLSearchParams({ token: s.adminToken }), redirect: "manual" });
    expect(login.status).toBe(303);
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    expect(cookie).toMatch(/^dormant_session=/);
    expect(cookie).not.toContain(s.adminToken);
    expect(login.headers.get("set-cookie")).toMatch(/HttpOnly/);
    const html = await (await fetch(`${s.adminUrl}/`, { headers: { cookie } })).text();
    expect(html).toContain(`<code>${id}</code>`);
    expect(html).toMatch(/<td data-label="name">heartbeat<\/td><td data-label="trigger">every 1 min<\/td>/);
    expect(html).toMatch(/<td data-label="name">inbox<\/td><td data-label="trigger">on push<\/td>/);
    expect(html).toMatch(/fresh in [\d.]+ ms/);
    expect(html).not.toMatch(/<script/);
    expect((await fetch(`${s.adminUrl}/`, { headers: { cookie: "dormant_session=wrong" } })).status).toBe(401);
  });

  it("answers /healthz on the admin port with counts, and on the push port with no more than ok", async () => {
    const s = await server();
    expect(await (await fetch(`${s.adminUrl}/healthz`)).json()).toEqual({ ok: true, store: s.host.store.description, partitions: 0, live: 0, tasks: 0 });
    expect(await (await fetch(`${s.pushUrl}/healthz`)).json()).toEqual({ ok: true });
  });

  it("answers an unknown path with a JSON 404 that says where things are, on either port", async () => {
    const s = await server();
    const push = await fetch(`${s.pushUrl}/nowhere`);
    expect(push.status).toBe(404);
    expect((await push.json()).error.message).toMatch(/\/push\/<token>.*admin port/);
    const admin = await fetch(`${s.adminUrl}/nowhere`);
    expect(admin.status).toBe(404);
    expect((await admin.json()).error.message).toMatch(/under \/api/);
  });
});
