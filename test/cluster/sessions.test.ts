// Browser sessions on a cluster: the hosts keep them in the store they share, so an
// operator behind a load balancer signs in once, whichever host answers next.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { systemClock } from "../../src/scheduler/clock.ts";
import { signIn } from "../security/hostile.ts";
import { testServers } from "../support/server.ts";

const admin = new pg.Pool({ host: "127.0.0.1", port: 5432, user: "postgres", database: "postgres", max: 2 });
const schemas: string[] = [];

// Registered first, so it runs after the servers (closed by testServers' own hook) are gone.
afterEach(async () => {
  for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});
afterAll(() => admin.end());
const server = testServers();

function newCluster(): string {
  const schema = `dormant_sessions_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  return `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`;
}

const clusterHost = (url: string, name: string, adminToken: string) =>
  server({ adminToken, clock: systemClock, cluster: { url, shards: 4, ttlMs: 3000, host: name } });

async function twoHosts() {
  const url = newCluster();
  const adminToken = generateToken();
  return [await clusterHost(url, "a", adminToken), await clusterHost(url, "b", adminToken)] as const;
}

const asBrowser = (cookie: string) => ({ cookie });

describe("sessions on a cluster", () => {
  it("opened on one host are good on another", async () => {
    const [a, b] = await twoHosts();
    const cookie = await signIn(a);
    const answer = await fetch(`${b.adminUrl}/api/cluster`, { headers: asBrowser(cookie) });
    expect(answer.status).toBe(200);
    expect((await fetch(`${b.adminUrl}/`, { headers: asBrowser(cookie) })).status).toBe(200);
  });

  it("take a form from one host's status page on another, whose outcome the first host then shows", async () => {
    const [a, b] = await twoHosts();
    const cookie = await signIn(a);
    // One partition on each host, so a's page has forms (with the session's CSRF token) and b holds one to act on.
    await a.deploy("counter", "on-a", { engine: "quickjs" });
    const onB = await b.deploy("counter", "on-b", { engine: "quickjs" });
    const page = await (await fetch(`${a.adminUrl}/`, { headers: asBrowser(cookie) })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const action = await fetch(`${b.adminUrl}/actions/activate/${onB}`, {
      method: "POST",
      headers: { ...asBrowser(cookie), origin: b.adminUrl, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf }),
      redirect: "manual",
    });
    expect(action.status).toBe(303);
    const next = await (await fetch(`${a.adminUrl}/`, { headers: asBrowser(cookie) })).text();
    expect(next).toContain("Activated on-b");
  });

  it("end everywhere when the browser signs out on one host", async () => {
    const [a, b] = await twoHosts();
    const cookie = await signIn(a);
    const signOut = await fetch(`${b.adminUrl}/logout`, { method: "POST", headers: { ...asBrowser(cookie), origin: b.adminUrl }, redirect: "manual" });
    expect(signOut.status).toBe(303);
    const after = await fetch(`${a.adminUrl}/api/cluster`, { headers: asBrowser(cookie) });
    expect(after.status).toBe(401);
  });

  it("end when the cluster restarts with a new admin token", async () => {
    const url = newCluster();
    const before = await clusterHost(url, "a", generateToken());
    const cookie = await signIn(before);
    await before.close();
    const after = await clusterHost(url, "a", generateToken());
    expect((await fetch(`${after.adminUrl}/api/cluster`, { headers: asBrowser(cookie) })).status).toBe(401);
  });
});
