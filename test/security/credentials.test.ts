// What a push task sees of the caller: never the host's session cookie or tokens, and the
// caller's cookie and authorization only when the task asked for them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { signIn, startHostile, type HostileServer } from "./hostile.ts";

const METRICS_TOKEN = generateToken();
let s: HostileServer;
let session: string;
beforeAll(async () => {
  s = await startHostile({ metricsToken: METRICS_TOKEN });
  session = await signIn(s);
});
afterAll(() => s.close());

/** The headers the guest reports it received. */
async function seen(url: string, headers: Record<string, string>): Promise<Record<string, string>> {
  const response = await fetch(`${url}/reflect`, { headers });
  expect(response.status).toBe(200);
  return Object.fromEntries((await response.json()).headers as [string, string][]);
}

describe("the request a push task sees", () => {
  it("has no cookie, authorization or proxy-authorization from a signed-in browser or an operator's client", async () => {
    const sent = { cookie: `${session}; theme=dark`, authorization: `Bearer ${s.adminToken}`, "proxy-authorization": "Basic eDp5", "x-trace": "abc" };
    const headers = await seen(s.door, sent);
    expect(headers).toMatchObject({ "x-trace": "abc" });
    expect(Object.keys(headers)).not.toContain("cookie");
    expect(Object.keys(headers)).not.toContain("authorization");
    expect(Object.keys(headers)).not.toContain("proxy-authorization");
  });

  it("has the caller's own cookies and authorization when the task asked for them", async () => {
    const headers = await seen(s.doorWithCredentials, { cookie: "theme=dark; cart=7", authorization: "Bearer callers-own-api-key" });
    expect(headers).toMatchObject({ cookie: "theme=dark; cart=7", authorization: "Bearer callers-own-api-key" });
  });

  it("never has the host's session cookie, even when the task asked for cookies", async () => {
    const headers = await seen(s.doorWithCredentials, { cookie: `theme=dark; ${session}; dormant_token=old` });
    expect(headers.cookie).toBe("theme=dark");
  });

  it("never has the admin or metrics token, even when the task asked for authorization", async () => {
    expect(Object.keys(await seen(s.doorWithCredentials, { authorization: `Bearer ${s.adminToken}` }))).not.toContain("authorization");
    expect(Object.keys(await seen(s.doorWithCredentials, { authorization: `bearer  ${METRICS_TOKEN}` }))).not.toContain("authorization");
  });

  it("has no credentials either when it is delivered later (respond-async)", async () => {
    const sent = { prefer: "respond-async", cookie: session, authorization: `Bearer ${s.adminToken}`, "x-trace": "later" };
    const response = await fetch(`${s.door}/remember`, { method: "POST", headers: sent });
    const { delivery } = await response.json();
    await s.waitFor((e) => e.type === "delivered" && e.delivery === delivery);
    const headers = Object.fromEntries((await (await fetch(`${s.door}/remembered`)).json()).headers as [string, string][]);
    expect(headers).toMatchObject({ "x-trace": "later" });
    expect(Object.keys(headers)).not.toContain("cookie");
    expect(Object.keys(headers)).not.toContain("authorization");
  });
});
