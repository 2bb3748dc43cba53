// Embedding: examples/embed.ts mounts a Dormant host in an application of its own, which
// listens on @hono/node-server as the example does. The application keeps its routes; a
// guest deployed through the admin routes under /admin answers its push URL through the
// application; the admin door keeps its rules there.
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServerType } from "@hono/node-server";
import type { Dormant } from "dormant";
import { createApp } from "../../examples/embed.ts";
import { guestFile } from "../support/guests.ts";
import { SHARED_ENGINE_CACHE } from "../support/host.ts";

const TOKEN = "embed-test-token-0123456789abcdefghijklmnop";

describe("a Dormant host mounted in an application (examples/embed.ts)", () => {
  let dataDir: string;
  let dormant: Dormant;
  let server: ServerType;
  let base: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "dormant-embed-"));
    const made = await createApp({ dataDir, engineCacheDir: SHARED_ENGINE_CACHE, executors: 1, admin: { token: TOKEN } });
    dormant = made.dormant;
    server = await new Promise<ServerType>((resolve) => {
      const listening: ServerType = serve({ fetch: made.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(listening));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await dormant?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const admin = (method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
    fetch(`${base}/admin/api${path}`, { method, body, headers: { authorization: `Bearer ${TOKEN}`, ...headers } });

  /** A GET with a Host header of our choosing (fetch sends the URL's). */
  const getAs = (host: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      const request = httpRequest(`${base}${path}`, { headers: { host, ...headers } }, (response) => {
        response.resume();
        resolve(response.statusCode!);
      });
      request.on("error", reject).end();
    });

  it("keeps the application's own routes", async () => {
    expect(await (await fetch(`${base}/`)).text()).toBe("my application\n");
  });

  it("runs a guest deployed through its admin routes and answers its push URL through the application", async () => {
    const component = await admin("POST", "/components", new Uint8Array(await readFile(guestFile("counter"))), { "content-type": "application/wasm" });
    expect(component.status).toBe(201);
    const { digest } = (await component.json()) as { digest: string };
    const created = await admin("POST", "/partitions", JSON.stringify({ name: "counter", component: digest }), { "content-type": "application/json" });
    expect(created.status).toBe(201);
    const { tasks } = (await created.json()) as { tasks: { name: string; pushUrl: string | null }[] };
    const inbox = tasks.find((task) => task.name === "inbox")!.pushUrl!;
    expect(inbox).toMatch(/^\/push\//);
    const reply = await fetch(`${base}${inbox}`, { method: "POST", body: "from the application" });
    expect(reply.status).toBe(200);
    expect(await reply.json()).toEqual({ count: 1, activations: 1, echo: "from the application" });
  });

  it("keeps the admin door's rules under its prefix: the token, and only host names it answers to", async () => {
    expect((await fetch(`${base}/admin/api/partitions`)).status).toBe(401);
    expect(await getAs("example.com", "/admin/api/partitions", { authorization: `Bearer ${TOKEN}` })).toBe(421);
    expect((await admin("GET", "/partitions")).status).toBe(200);
  });
});
