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

async function twoHosts() {
  const schema = `dormant_sessions_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  const url = `postgres://postgres@127.0.0.1:5432/postgres?schema=${schema}`;
  const adminToken = generateToken();
  const hosts = [];
  for (const name of ["a", "b"]) {
    hosts.push(await server({ adminToken, clock: systemClock, cluster: { url, shards: 4, ttlMs: 3000, host: name } }));
  }
  return hosts as [(typeof hosts)[number], (typeof hosts)[number]];
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

  it("end everywhere when the browser signs out on one host", async () => {
    const [a, b] = await twoHosts();
    const cookie = await signIn(a);
    const signOut = await fetch(`${b.adminUrl}/logout`, { method: "POST", headers: { ...asBrowser(cookie), origin: b.adminUrl }, redirect: "manual" });
    expect(signOut.status).toBe(303);
    const after = await fetch(`${a.adminUrl}/api/cluster`, { headers: asBrowser(cookie) });
    expect(after.status).toBe(401);
  });
});
