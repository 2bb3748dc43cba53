// Response desync over one kept-alive connection: requests pipelined behind a hostile
// guest's reply each get exactly their own response, and no bytes are left over.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseResponses, pipeline, rawRequest, startHostile, type HostileServer } from "./hostile.ts";

let s: HostileServer;
beforeAll(async () => {
  s = await startHostile();
});
afterAll(() => s.close());

describe("pipelined requests on one connection", () => {
  it("each get their own response after a guest reply that claims content-length 5 for a longer body", async () => {
    const raw = await pipeline(s.door, [rawRequest(`${s.door}/framing`), rawRequest(`${s.door}/reflect`), rawRequest(`${s.pushUrl}/healthz`, { close: true })]);
    const responses = parseResponses(raw);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(responses[0]!.body).toMatch(/^helloHTTP\/1\.1 418 Smuggled/);
    expect(JSON.parse(responses[1]!.body).headers).toContainEqual(["host", new URL(s.pushUrl).host]);
    expect(JSON.parse(responses[2]!.body)).toEqual({ ok: true });
  });

  it("each get their own response after a guest reply with transfer-encoding, and none has two framings", async () => {
    const raw = await pipeline(s.door, [rawRequest(`${s.door}/chunked`), rawRequest(`${s.door}/framing`), rawRequest(`${s.door}/reflect`, { close: true })]);
    const responses = parseResponses(raw);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(responses[0]!.body).toBe("not really chunked");
  });

  it("each get their own response after a refused reply", async () => {
    const requests = [rawRequest(`${s.door}/bad-value`), rawRequest(`${s.door}/host-cookie`), rawRequest(`${s.door}/reflect`, { close: true })];
    const raw = await pipeline(s.door, requests);
    const responses = parseResponses(raw);
    expect(responses.map((r) => r.status)).toEqual([502, 502, 200]);
    expect(responses.flatMap((r) => r.headers).filter(([name]) => name === "set-cookie")).toEqual([]);
  });
});
