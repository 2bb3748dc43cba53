// Strict admin input: every body has a size limit and the content type its route expects,
// numbers stay in range, and an id or name that could not be one is refused before
// anything looks it up in the store.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(() => s.close());

type Problem = { code: string; message: string };

/** A request sent as written: fetch would resolve `..` in the path before it left. */
function send(method: string, path: string, body: string | undefined, contentType?: string): Promise<{ status: number; error: Problem | undefined }> {
  return new Promise((resolve, reject) => {
    const headers = {
      authorization: `Bearer ${s.adminToken}`,
      ...(contentType ? { "content-type": contentType } : {}),
      ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }),
    };
    const req = request(`${s.adminUrl}${path}`, { method, headers, agent: false }, (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, error: JSON.parse(text).error }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("the admin API", () => {
  it("refuses a JSON body over 64 KiB with 413", async () => {
    const big = JSON.stringify({ name: "big", component: `sha256:${"0".repeat(64)}`, padding: "x".repeat(100 * 1024) });
    expect(await send("POST", "/api/partitions", big, "application/json")).toMatchObject({ status: 413, error: { code: "body-too-large" } });
    expect((await send("PUT", "/api/budget", big, "application/json")).status).toBe(413);
  });

  it("refuses a body over the limit on a route that takes none", async () => {
    expect((await send("POST", "/api/partitions/p_nope/freeze", "x".repeat(100 * 1024), "application/json")).status).toBe(413);
  });

  it("refuses a JSON route's body sent as another content type with 415", async () => {
    const body = JSON.stringify({ constrained: true });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
      expect((await send("PUT", "/api/budget", body, type)).status, String(type)).toBe(415);
    }
    expect((await s.api("GET", "/api/budget")).body.constrained).toBe(false);
  });

  it("refuses a component upload that is not application/wasm with 415", async () => {
    const { status, error } = await send("POST", "/api/components", "\0asm", "application/octet-stream");
    expect(status).toBe(415);
    expect(error!.message).toMatch(/application\/wasm/);
  });

  it("refuses budget numbers out of range, naming the field", async () => {
    const huge = await s.api("PUT", "/api/budget", { maxConcurrent: 1e15 });
    expect(huge.body.error.message).toMatch(/Field "maxConcurrent" must be a whole number from 1 to 10000/);
    expect((await s.api("PUT", "/api/budget", { threshold: 1.5 })).body.error.message).toMatch(/Field "threshold"/);
    expect((await s.api("PUT", "/api/budget", { constrained: "yes" })).body.error.message).toMatch(/Field "constrained" must be true or false/);
    expect((await s.api("GET", "/api/budget")).body).toMatchObject({ maxConcurrent: 64, constrained: false });
  });

  it("refuses partition names that are not names, such as .. and .", async () => {
    for (const name of ["..", ".", ".hidden", "-rf", "a/b"]) {
      const { status, body } = await s.api("POST", "/api/partitions", { name, component: `sha256:${"0".repeat(64)}` });
      expect(status, name).toBe(400);
      expect(body.error.message).toMatch(/Field "name"/);
    }
  });

  it("refuses an unknown field in a partition spec", async () => {
    const { status, body } = await s.api("POST", "/api/partitions", { name: "ok", component: `sha256:${"0".repeat(64)}`, owner: "root" });
    expect(status).toBe(400);
    expect(body.error.message).toMatch(/Unknown field "owner"/);
  });

  it("refuses ids that could not be ids with 400 before the store sees them", async () => {
    const cases = [
      ["POST", "/api/dead-letters/..%2F..%2Fadmin-token/retry", /not a dead-letter id/],
      ["POST", "/api/dead-letters/e_x:y/retry", /not a dead-letter id/],
      ["POST", "/api/partitions/p_a%3Ab/freeze", /not a partition id/],
      ["DELETE", "/api/partitions/p_%2E%2E", /not a partition id/],
      ["POST", "/api/tasks/x%00y/fire", /not a task id/],
      ["GET", "/api/tasks?partition=../x", /Query "partition"/],
    ] as const;
    for (const [method, path, message] of cases) {
      const { status, error } = await send(method, path, undefined);
      expect(status, `${method} ${path}`).toBe(400);
      expect(error!.message).toMatch(message);
    }
  });

  it("resolves dot segments in the path before routing, so .. never arrives as an id", async () => {
    for (const path of ["/api/partitions/..", "/api/partitions/%2E%2E", "/api/partitions/../freeze"]) {
      const { status, error } = await send(path.endsWith("freeze") ? "POST" : "DELETE", path, undefined);
      expect(status, path).toBe(404);
      expect(error!.code).toBe("not-found");
    }
  });

  it("answers well-formed ids that name nothing with 404", async () => {
    expect((await s.api("POST", "/api/dead-letters/e_AAAAAAAAAAAAAAAA/retry")).status).toBe(404);
    expect((await s.api("POST", "/api/dead-letters/t_AAAAAAAAAAAAAAAAAAAAAA@1800000000000/retry")).status).toBe(404);
    expect((await s.api("GET", "/api/partitions/p_AAAAAAAAAAAAAAAA")).status).toBe(404);
  });
});
