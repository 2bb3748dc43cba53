// Back-pressure: stored, undelivered work is bounded per partition and per host, in
// deliveries and in bytes. Beyond a bound an async push is refused (429 for the partition's
// own bound, 503 for the host's) with Retry-After, never accepted with a 202 it may not
// honour; the queue depth and delivery lag are metrics. Deliveries are held back here by a
// constrained budget, which postpones them (stored, not delivered) until it lifts.
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(backlog: object): Promise<TestServer> {
  const s = await startTestServer({ backlog });
  servers.push(s);
  return s;
}

/** A live counter partition's push URL (its `inbox` task has priority 100). */
async function inbox(s: TestServer, name: string): Promise<string> {
  const id = await s.deploy("counter", name);
  await s.api("POST", `/api/partitions/${id}/activate`);
  const { body } = await s.api("GET", `/api/tasks?partition=${id}`);
  return `${s.pushUrl}${body.tasks.find((t: { name: string }) => t.name === "inbox").pushUrl}`;
}

const pushAsync = (url: string, body = "x") => fetch(url, { method: "POST", headers: { prefer: "respond-async" }, body });

async function metric(s: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)![1]);
}

describe("back-pressure on async pushes", () => {
  it("answers 429 with Retry-After once a partition's backlog is full, and 503 once the host's is", async () => {
    const s = await server({ perPartition: 3, host: 5 });
    const [a, b] = [await inbox(s, "a"), await inbox(s, "b")];
    await s.api("PUT", "/api/budget", { constrained: true, threshold: 255 });
    for (let i = 0; i < 3; i++) expect((await pushAsync(a)).status).toBe(202);
    const refused = await pushAsync(a);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect((await refused.json()).error).toMatchObject({
      code: "backlog-full",
      message: expect.stringMatching(/has 3 deliveries .* waiting, at its bound of 3/),
    });

    for (let i = 0; i < 2; i++) expect((await pushAsync(b)).status).toBe(202);
    const hostFull = await pushAsync(b);
    expect(hostFull.status).toBe(503);
    expect(hostFull.headers.get("retry-after")).toBe("1");
    expect((await hostFull.json()).error.message).toMatch(/The host has 5 deliveries .* waiting, at its bound of 5/);
    expect(await metric(s, "dormant_pending_deliveries")).toBe(5);
  });

  it("bounds a partition's backlog in bytes", async () => {
    const s = await server({ perPartitionBytes: 1000 });
    const a = await inbox(s, "a");
    await s.api("PUT", "/api/budget", { constrained: true, threshold: 255 });
    expect((await pushAsync(a, "x".repeat(600))).status).toBe(202);
    const refused = await pushAsync(a, "x".repeat(600));
    expect(refused.status).toBe(429);
    expect((await refused.json()).error.message).toMatch(/\(600 bytes\) waiting, at its bound of 1000 \(1000 bytes\)/);
    expect((await pushAsync(a, "x".repeat(400))).status).toBe(202);
    expect(await metric(s, "dormant_pending_bytes")).toBe(1000);
  });

  it("reports the delivery lag, asks clients to wait about that long, and accepts again once the backlog drains", async () => {
    const s = await server({ perPartition: 2 });
    const a = await inbox(s, "a");
    await s.api("PUT", "/api/budget", { constrained: true, threshold: 255 });
    for (let i = 0; i < 2; i++) expect((await pushAsync(a)).status).toBe(202);
    await s.tick(s.now.value + 42_000);
    expect(await metric(s, "dormant_delivery_lag_seconds")).toBe(42);
    expect((await pushAsync(a)).headers.get("retry-after")).toBe("42");

    await s.api("PUT", "/api/budget", { constrained: false });
    await s.host.settled();
    expect(await metric(s, "dormant_pending_deliveries")).toBe(0);
    expect(await metric(s, "dormant_delivery_lag_seconds")).toBe(0);
    expect((await pushAsync(a)).status).toBe(202);
  });
});
