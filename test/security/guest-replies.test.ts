// A hostile guest's reply cannot frame the host's response, set the host's cookies, smuggle
// headers, or run script with any origin: the host checks every header it is given.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logged, startHostile, type HostileServer } from "./hostile.ts";

let s: HostileServer;
beforeAll(async () => {
  s = await startHostile();
});
afterAll(() => s.close());

const get = (path: string) => fetch(`${s.door}${path}`);

async function refused(path: string) {
  const response = await get(path);
  expect(response.status).toBe(502);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  return (await response.json()).error as { code: string; message: string };
}

describe("a hostile guest's reply", () => {
  it("never sets framing or hop-by-hop headers: the host frames the body it sends", async () => {
    const response = await get("/framing");
    const body = await response.text();
    expect(response.status).toBe(200);
    expect(body).toMatch(/^helloHTTP\/1\.1 418/);
    expect(response.headers.get("content-length")).toBe(String(Buffer.byteLength(body)));
    for (const name of ["upgrade", "te", "trailer", "proxy-authenticate"]) expect(response.headers.get(name), name).toBeNull();
    expect(response.headers.get("keep-alive")).not.toBe("timeout=999");
    expect(response.headers.get("x-kept")).toBe("yes");
  });

  it("cannot add Transfer-Encoding beside the host's Content-Length", async () => {
    const response = await get("/chunked");
    expect(await response.text()).toBe("not really chunked");
    expect(response.headers.get("transfer-encoding")).toBeNull();
    expect(response.headers.get("content-length")).toBe("18");
  });

  it("is refused with a JSON 502 naming set-cookie when it sets the host's session cookie", async () => {
    const error = await refused("/host-cookie");
    expect(error.code).toBe("invalid-reply");
    expect(error.message).toMatch(/host's cookie "dormant_session"/);
    expect((await refused("/token-cookie")).message).toMatch(/"__Host-Dormant_token"/);
  });

  it("may set a cookie of its own", async () => {
    const response = await get("/own-cookie");
    expect(response.status).toBe(200);
    expect(response.headers.get("set-cookie")).toBe("theme=dark; Path=/");
  });

  it("is refused with a JSON 502 naming the header when a header name is not an HTTP token", async () => {
    expect((await refused("/bad-name")).message).toMatch(/header name "bad header" is not an HTTP token/);
  });

  it("is refused with a JSON 502 naming the header when a value carries CR LF, so no header is injected", async () => {
    const response = await get("/bad-value");
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(response.status).toBe(502);
    expect((await response.json()).error.message).toMatch(/header "x-note" has a value that is not a valid HTTP field value/);
  });

  it("is refused with a JSON 502 when a value has characters above U+00FF", async () => {
    expect((await refused("/wide-value")).message).toMatch(/"x-note"/);
  });

  it("is refused with a JSON 502 when it has more headers than the host allows", async () => {
    expect((await refused("/many-headers")).message).toMatch(/500 headers/);
  });

  it("is refused with a JSON 502 when its status is informational", async () => {
    expect((await refused("/informational")).message).toMatch(/status 101/);
  });

  it("logs each refused reply with the partition, task and header", async () => {
    await refused("/bad-name");
    expect(logged(s)).toContainEqual(expect.objectContaining({ event: "guest-reply-refused", partition: s.partition, task: "door", header: "bad header" }));
  });

  it("gets nosniff and a sandboxing Content-Security-Policy the guest cannot loosen", async () => {
    const response = await get("/html");
    expect(await response.text()).toContain("<script>");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    // Every policy sent is enforced; the host's `sandbox` gives the page no script and an opaque origin.
    expect(
      response.headers
        .get("content-security-policy")!
        .split(",")
        .map((p) => p.trim()),
    ).toEqual(["script-src *", "sandbox"]);
  });
});
