// Property: whatever arrives over HTTP, on the push port or the admin port — random
// methods, paths, headers, bodies, tokens, uploads that are not components — the server
// answers with a status below 500 and, for an error, a JSON message; it keeps serving,
// with no unhandled rejection.
import { request as httpRequest } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
let pushUrl: string;
let partition: string;

beforeAll(async () => {
  // Wrong tokens are most of what it sends: a lock-out would leave only 429s to look at.
  const unlimited = { perSecond: 1e6, burst: 1e6 };
  s = await startTestServer({ http: { maxBodyBytes: 64 * 1024, maxComponentBytes: 16 * 2 ** 20, pushRate: unlimited, authFailures: unlimited } });
  partition = await s.deploy("counter");
  await s.api("POST", `/api/partitions/${partition}/activate`);
  const { body } = await s.api("GET", `/api/tasks?partition=${partition}`);
  pushUrl = body.tasks.find((t: { name: string }) => t.name === "inbox").pushUrl;
});
afterAll(() => s.close());

const segment = fc.oneof(
  fc.constantFrom(
    "api",
    "push",
    "partitions",
    "tasks",
    "components",
    "dead-letters",
    "budget",
    "fire",
    "freeze",
    "activate",
    "retry",
    "metrics",
    "healthz",
    "login",
    "..",
    ".",
    "%2e%2e",
    "%00",
    "p_x",
    "t_x",
    "e_x",
  ),
  fc.stringMatching(/^[A-Za-z0-9._~%-]{1,30}$/),
);

const path = fc
  .oneof(
    fc.array(segment, { minLength: 0, maxLength: 6 }).map((parts) => `/${parts.join("/")}`),
    fc.array(segment, { maxLength: 3 }).map((parts) => `/api/${parts.join("/")}`),
    fc.array(segment, { maxLength: 3 }).map((parts) => `/push/${parts.join("/")}`),
    fc.array(segment, { maxLength: 3 }).map((parts) => `${pushUrl}/${parts.join("/")}`),
    fc.constantFrom("/api/partitions", "/api/components", "/api/budget", "/api/tasks", "/api/dead-letters", "/"),
  )
  .chain((p) => fc.option(fc.stringMatching(/^[A-Za-z0-9=&%+._-]{0,40}$/), { nil: undefined }).map((query) => (query === undefined ? p : `${p}?${query}`)));

const token = fc.oneof(
  fc.constant("admin"),
  fc.string({ maxLength: 60 }).filter((t) => /^[\x21-\x7e]*$/.test(t)),
  fc.constant(undefined),
);
const headerValue = fc.string({ maxLength: 60 }).filter((v) => /^[\x20-\x7e]*$/.test(v));

const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 2048 }),
  fc.json().map((j) => new TextEncoder().encode(j)),
  fc
    .constantFrom('{"name":"x","component":"sha256:0"}', '{"constrained":"yes"}', '{"threshold":-1}', "[]", "null", "{", '{"maxConcurrent":1e309}')
    .map((t) => new TextEncoder().encode(t)),
  fc.integer({ min: 64 * 1024, max: 300 * 1024 }).map((n) => new Uint8Array(n).fill(0x61)),
  fc.uint8Array({ maxLength: 512 }).map((junk) => new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, ...junk])),
);

const request = fc.record({
  origin: fc.constantFrom("push", "admin"),
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
  path,
  token,
  contentType: fc.option(
    fc.oneof(headerValue, fc.constantFrom("application/json", "application/wasm", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x")),
    { nil: undefined },
  ),
  extra: fc.dictionary(fc.stringMatching(/^x-[a-z]{1,10}$/), headerValue, { maxKeys: 3 }),
  body,
});

/**
 * One request on its own connection. (A pooled keep-alive client can pick a socket the
 * server is closing after refusing an oversized body, and fail without an answer.)
 */
function send(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve, reject) => {
    const length = body ? { "content-length": String(body.length) } : {};
    const req = httpRequest(url, { method, headers: { ...headers, ...length }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), text: Buffer.concat(chunks).toString() }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the HTTP surface under random requests", () => {
  it("answers each of 400 random requests below 500, with a JSON message for each error", async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        // Deleting the demo partition would only make later runs less interesting.
        fc.pre(!(r.method === "DELETE" && r.path.includes(partition)));
        const headers: Record<string, string> = { ...r.extra };
        if (r.token !== undefined) headers.authorization = `Bearer ${r.token === "admin" ? s.adminToken : r.token}`;
        if (r.contentType !== undefined) headers["content-type"] = r.contentType;
        const withBody = r.body !== undefined && r.method !== "GET" && r.method !== "HEAD";
        const base = r.origin === "push" ? s.pushUrl : s.adminUrl;
        const response = await send(r.method, `${base}${r.path}`, headers, withBody ? r.body : undefined);
        const text = response.text;
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status, `${r.method} ${r.path} → ${text.slice(0, 200)}`).toBeLessThan(500);
        const isJson = response.contentType.includes("application/json");
        if (response.status >= 400 && r.method !== "HEAD" && isJson) expect(JSON.parse(text).error.message.length).toBeGreaterThan(10);
        // The status page's sign-in is HTML.
        if (response.status >= 400 && r.method !== "HEAD" && !isJson) {
          expect(["/", "/login"], `${response.status} ${text.slice(0, 100)}`).toContain(new URL(`${base}${r.path}`).pathname);
        }
      }),
      // FC_SEED replays a failing run.
      { numRuns: 400, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
    );
    expect([...statuses.keys()].filter((status) => status >= 400).length).toBeGreaterThan(3);
    expect((await fetch(`${s.pushUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.adminUrl}/healthz`)).status).toBe(200);
  });

  it("refuses every upload that is not a component with 400 and a reason", async () => {
    await fc.assert(
      fc.asyncProperty(
        body.filter((b) => b !== undefined && b.length > 0 && b.length <= 300 * 1024),
        async (bytes) => {
          const { status, body: answer } = await s.api("POST", "/api/components", bytes);
          expect(status).toBe(400);
          expect(answer.error.message.length).toBeGreaterThan(10);
        },
      ),
      { numRuns: 60 },
    );
  });
});
