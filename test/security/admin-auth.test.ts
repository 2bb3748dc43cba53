// The admin door: strong tokens only, a limit on wrong guesses per client (logged),
// browser sessions that are not the token and end, and no state change from another
// origin — another port on 127.0.0.1 included.
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { startServer } from "../../src/serve/server.ts";
import { BIN } from "../support/serve-process.ts";
import { testServers } from "../support/server.ts";
import { logged, signIn } from "./hostile.ts";

const run = promisify(execFile);
const server = testServers();

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("admin tokens", () => {
  it("are generated with 256 random bits when none is configured", async () => {
    const s = await server({ adminToken: undefined });
    expect(s.tokenGenerated).toBe(true);
    expect(s.adminToken).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuse a 2-character DORMANT_ADMIN_TOKEN at start, saying how to make a good one", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "dormant-weak-"));
    const args = [BIN, "serve", "--port", "0", "--admin-port", "0", "--data-dir", dataDir];
    const started = run("node", args, { env: { ...process.env, DORMANT_ADMIN_TOKEN: "zz" } });
    const message = /DORMANT_ADMIN_TOKEN is too weak.*2 characters.*openssl rand -hex 32/s;
    await expect(started).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(message) });
  });

  it("refuse long tokens with little randomness, and a weak metrics token", async () => {
    await expect(startServer({ adminToken: "a".repeat(40) })).rejects.toThrow(/about 0 bits/);
    await expect(startServer({ adminToken: "Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3" })).rejects.toThrow(/repeats a part of itself/);
    await expect(startServer({ adminToken: generateToken(), metricsToken: "metrics" })).rejects.toThrow(/DORMANT_METRICS_TOKEN is too weak/);
  });
});

describe("wrong guesses", () => {
  it("are limited per client: after 10, even the right token gets 429 with Retry-After until the client waits", async () => {
    const s = await server();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await fetch(`${s.adminUrl}/api/partitions`, { headers: bearer(`guess-${i}`) })).status);
    expect(statuses).toEqual([...Array(10).fill(403), 429]);
    const locked = await fetch(`${s.adminUrl}/api/partitions`, { headers: bearer(s.adminToken) });
    expect(locked.status).toBe(429);
    expect(locked.headers.get("retry-after")).toBe("6");
    s.now.value += 6000;
    expect((await fetch(`${s.adminUrl}/api/partitions`, { headers: bearer(s.adminToken) })).status).toBe(200);
  });

  it("are logged one by one, with a line when the client is locked out", async () => {
    const s = await server();
    for (let i = 0; i < 10; i++) await fetch(`${s.adminUrl}/api/budget`, { headers: bearer(`guess-${i}`) });
    const lines = logged(s);
    expect(lines.filter((l) => l.event === "auth-failed")).toHaveLength(10);
    expect(lines).toContainEqual(expect.objectContaining({ event: "auth-failed", surface: "api", client: "127.0.0.1", path: "/api/budget" }));
    expect(lines).toContainEqual(expect.objectContaining({ event: "auth-locked-out", client: "127.0.0.1", retryAfter: 6 }));
  });

  it("at the sign-in form count the same way, and the form then answers 429", async () => {
    const s = await server();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await fetch(`${s.adminUrl}/login`, { method: "POST", body: new URLSearchParams({ token: `guess-${i}` }) })).status);
    }
    expect(statuses).toEqual([...Array(10).fill(403), 429]);
    expect(logged(s).filter((l) => l.event === "auth-failed" && l.surface === "sign-in")).toHaveLength(10);
  });

  it("cannot escape the limit with a forged X-Forwarded-For", async () => {
    const s = await server();
    for (let i = 0; i < 10; i++) await fetch(`${s.adminUrl}/api/partitions`, { headers: { ...bearer(`guess-${i}`), "x-forwarded-for": `10.0.0.${i}` } });
    expect((await fetch(`${s.adminUrl}/api/partitions`, { headers: { ...bearer("guess"), "x-forwarded-for": "10.9.9.9" } })).status).toBe(429);
  });

  it("behind a trusted proxy count against the address the proxy saw", async () => {
    const s = await server({ http: { trustProxy: true } });
    for (let i = 0; i < 10; i++) await fetch(`${s.adminUrl}/api/partitions`, { headers: { ...bearer(`guess-${i}`), "x-forwarded-for": "203.0.113.7" } });
    expect((await fetch(`${s.adminUrl}/api/partitions`, { headers: { ...bearer(s.adminToken), "x-forwarded-for": "203.0.113.7" } })).status).toBe(429);
    expect((await fetch(`${s.adminUrl}/api/partitions`, { headers: { ...bearer(s.adminToken), "x-forwarded-for": "203.0.113.8" } })).status).toBe(200);
  });
});

describe("browser sessions", () => {
  it("are a random id in an HttpOnly, SameSite=Strict cookie that expires, never the token", async () => {
    const s = await server();
    const login = await fetch(`${s.adminUrl}/login`, { method: "POST", body: new URLSearchParams({ token: s.adminToken }), redirect: "manual" });
    const setCookie = login.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/^dormant_session=[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(setCookie).not.toContain(s.adminToken);
  });

  it("replace the cookie that held the token itself before sessions, which the status page clears", async () => {
    const s = await server();
    const page = await fetch(`${s.adminUrl}/`, { headers: { cookie: `dormant_token=${s.adminToken}` } });
    expect(page.status).toBe(401);
    expect(page.headers.get("set-cookie")).toMatch(/^dormant_token=; Max-Age=0/);
  });

  it("end after their lifetime", async () => {
    const s = await server({ http: { sessionTtlMs: 60_000 } });
    const cookie = await signIn(s);
    expect((await fetch(`${s.adminUrl}/`, { headers: { cookie } })).status).toBe(200);
    s.now.value += 60_000;
    const expired = await fetch(`${s.adminUrl}/`, { headers: { cookie } });
    expect(expired.status).toBe(401);
    expect(expired.headers.get("set-cookie")).toMatch(/^dormant_session=; Max-Age=0/);
  });

  it("end on sign-out, posted from the status page's origin", async () => {
    const s = await server();
    const cookie = await signIn(s);
    const out = await fetch(`${s.adminUrl}/logout`, { method: "POST", headers: { cookie, origin: s.adminUrl }, redirect: "manual" });
    expect(out.status).toBe(303);
    expect((await fetch(`${s.adminUrl}/`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${s.adminUrl}/api/partitions`, { headers: { cookie } })).status).toBe(401);
  });
});

describe("state-changing requests", () => {
  it("from a page on another port of 127.0.0.1 are refused, though the browser sends the session cookie", async () => {
    const s = await server();
    const cookie = await signIn(s);
    const id = await s.deploy("counter");
    const evil = { cookie, origin: s.pushUrl, "content-type": "application/json" };
    const attempts = [
      await fetch(`${s.adminUrl}/api/budget`, { method: "PUT", headers: evil, body: JSON.stringify({ constrained: true }) }),
      await fetch(`${s.adminUrl}/api/partitions/${id}/activate`, { method: "POST", headers: evil }),
      await fetch(`${s.adminUrl}/api/partitions/${id}`, { method: "DELETE", headers: { cookie, origin: "http://127.0.0.1:9" } }),
    ];
    expect(attempts.map((r) => r.status)).toEqual([403, 403, 403]);
    expect((await attempts[0]!.json()).error.code).toBe("cross-origin");
    expect((await s.api("GET", "/api/budget")).body.constrained).toBe(false);
    expect((await s.api("GET", `/api/partitions/${id}`)).body).toMatchObject({ id, activations: 0 });
    expect(logged(s)).toContainEqual(expect.objectContaining({ event: "cross-origin-refused", origin: s.pushUrl, path: "/api/budget" }));
  });

  it("with a session need an Origin header", async () => {
    const s = await server();
    const cookie = await signIn(s);
    const response = await fetch(`${s.adminUrl}/api/budget`, { method: "PUT", headers: { cookie, "content-type": "application/json" }, body: "{}" });
    expect(response.status).toBe(403);
  });

  it("with a session need a JSON content type, which no cross-origin form can send", async () => {
    const s = await server();
    const cookie = await signIn(s);
    const headers = { cookie, origin: s.adminUrl, "content-type": "text/plain" };
    const response = await fetch(`${s.adminUrl}/api/budget`, { method: "PUT", headers, body: '{"constrained":true}' });
    expect(response.status).toBe(415);
    expect((await s.api("GET", "/api/budget")).body.constrained).toBe(false);
  });

  it("with a session, the same origin and JSON are carried out", async () => {
    const s = await server();
    const cookie = await signIn(s);
    const headers = { cookie, origin: s.adminUrl, "content-type": "application/json" };
    const response = await fetch(`${s.adminUrl}/api/budget`, { method: "PUT", headers, body: '{"constrained":true}' });
    expect(response.status).toBe(200);
    expect((await response.json()).constrained).toBe(true);
  });

  it("with the bearer token are refused when they name another origin", async () => {
    const s = await server();
    const headers = { ...bearer(s.adminToken), origin: s.pushUrl, "content-type": "application/json" };
    const response = await fetch(`${s.adminUrl}/api/budget`, { method: "PUT", headers, body: "{}" });
    expect(response.status).toBe(403);
  });

  it("include a sign-in posted from another origin (login CSRF), which is refused", async () => {
    const s = await server();
    const body = new URLSearchParams({ token: s.adminToken });
    const login = await fetch(`${s.adminUrl}/login`, { method: "POST", headers: { origin: s.pushUrl }, body, redirect: "manual" });
    expect(login.status).toBe(403);
    expect(login.headers.get("set-cookie")).toBeNull();
  });
});

describe("the sign-in form", () => {
  it("answers a body that says it is a form but is not one with 400, saying so, and signs nobody in", async () => {
    const s = await server();
    const headers = { "content-type": "multipart/form-data; boundary=x" };
    const login = await fetch(`${s.adminUrl}/login`, { method: "POST", headers, body: "\u0000asm", redirect: "manual" });
    expect(login.status).toBe(400);
    expect(await login.text()).toContain("That sign-in form could not be read");
    expect(login.headers.get("set-cookie")).toBeNull();
  });
});

describe("/metrics", () => {
  it("is open on the admin port when no metrics token is configured", async () => {
    const s = await server();
    expect((await fetch(`${s.adminUrl}/metrics`)).status).toBe(200);
  });

  it("requires the metrics token (or the admin token) when one is configured", async () => {
    const metricsToken = generateToken();
    const s = await server({ metricsToken });
    expect((await fetch(`${s.adminUrl}/metrics`)).status).toBe(401);
    expect((await fetch(`${s.adminUrl}/metrics`, { headers: bearer("wrong") })).status).toBe(403);
    expect((await fetch(`${s.adminUrl}/metrics`, { headers: bearer(metricsToken) })).status).toBe(200);
    expect((await fetch(`${s.adminUrl}/metrics`, { headers: bearer(s.adminToken) })).status).toBe(200);
    expect(logged(s)).toContainEqual(expect.objectContaining({ event: "auth-failed", surface: "metrics" }));
  });
});
