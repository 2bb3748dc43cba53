// Two origins: guests answer on the push port, the operator's surface lives on the admin
// port, which answers only to host names DNS cannot point at it by surprise and sends
// headers that keep its pages out of frames and other origins.
import { createHash } from "node:crypto";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "../../src/serve/server.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { signIn, startHostile, type HostileServer } from "./hostile.ts";

let s: HostileServer;
beforeAll(async () => {
  s = await startHostile({ http: { adminHostnames: ["admin.example.com"] } });
});
afterAll(() => s.close());

/** A GET with a Host header of our choosing (fetch does not let one be set). */
function getWithHost(url: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host, ...headers }, agent: false }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the push origin", () => {
  it("serves no status page, admin API, metrics or sign-in", async () => {
    const auth = { authorization: `Bearer ${s.adminToken}` };
    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/api/partitions"],
      ["GET", "/metrics"],
      ["POST", "/login"],
      ["POST", "/api/budget"],
    ] as const) {
      const response = await fetch(`${s.pushUrl}${path}`, { method, headers: auth });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
  });

  it("answers to any host name (it is the public side)", async () => {
    expect((await getWithHost(`${s.door}/reflect`, "push.example.org")).status).toBe(200);
  });
});

describe("the admin origin", () => {
  it("does not serve push URLs", async () => {
    expect((await fetch(s.door.replace(s.pushUrl, s.adminUrl))).status).toBe(404);
  });

  it("sends CSP, X-Frame-Options DENY, nosniff and no-store on the status page, the sign-in page and the API", async () => {
    const cookie = await signIn(s);
    const pages = [
      await fetch(`${s.adminUrl}/`, { headers: { cookie } }),
      await fetch(`${s.adminUrl}/`),
      await fetch(`${s.adminUrl}/api/partitions`, { headers: { authorization: `Bearer ${s.adminToken}` } }),
    ];
    for (const page of pages) {
      expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
      expect(page.headers.get("x-frame-options")).toBe("DENY");
      expect(page.headers.get("x-content-type-options")).toBe("nosniff");
      expect(page.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("allows exactly the status page's own style, so it renders under its policy", async () => {
    const page = await fetch(`${s.adminUrl}/`, { headers: { cookie: await signIn(s) } });
    const style = /<style>([\s\S]*?)<\/style>/.exec(await page.text())![1]!;
    expect(page.headers.get("content-security-policy")).toContain(`style-src 'sha256-${createHash("sha256").update(style).digest("base64")}'`);
  });

  it("refuses a host name an attacker's DNS could point at it (DNS rebinding) with 421", async () => {
    const host = `rebind.attacker.example:${new URL(s.adminUrl).port}`;
    const rebound = await getWithHost(`${s.adminUrl}/api/partitions`, host, { authorization: `Bearer ${s.adminToken}` });
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body).error.message).toMatch(/--admin-hostnames/);
    expect((await getWithHost(`${s.adminUrl}/`, "rebind.attacker.example")).status).toBe(421);
  });

  it("answers to localhost, IP addresses and the configured host names", async () => {
    const port = new URL(s.adminUrl).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "status.localhost", "admin.example.com", "ADMIN.example.com."]) {
      expect((await getWithHost(`${s.adminUrl}/healthz`, host)).status, host).toBe(200);
    }
  });

  it("logs a refused host name", async () => {
    await getWithHost(`${s.adminUrl}/healthz`, "logged.attacker.example");
    expect(s.logLines.map((line) => JSON.parse(line))).toContainEqual(expect.objectContaining({ event: "host-refused", host: "logged.attacker.example" }));
  });
});

describe("starting", () => {
  let other: TestServer | undefined;
  afterAll(() => other?.close());

  it("listens on two ports by default, the admin one on loopback", async () => {
    other = await startTestServer({ port: 0, adminPort: 0 });
    expect(new URL(other.adminUrl).hostname).toBe("127.0.0.1");
    expect(new URL(other.adminUrl).port).not.toBe(new URL(other.pushUrl).port);
  });

  it("refuses one port for both origins, saying how to give the admin surface its own", async () => {
    await expect(startServer({ port: 8790, adminPort: 8790 })).rejects.toThrow(/both 8790; give the admin surface its own with --admin-port/);
  });
});
