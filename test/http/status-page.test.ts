// The status page over HTTP: what it shows, its forms' guard (a signed-in browser, this
// origin, the session's CSRF token), auto-refresh, and the guest logs behind it and the API.
import { describe, expect, it } from "vitest";
import { testServers, type TestServer } from "../support/server.ts";

const server = testServers();

/** Sign in as a browser would; returns the session cookie. */
async function signIn(s: TestServer): Promise<string> {
  const login = await fetch(`${s.adminUrl}/login`, { method: "POST", body: new URLSearchParams({ token: s.adminToken }), redirect: "manual" });
  return login.headers.get("set-cookie")!.split(";")[0]!;
}

async function pageOf(s: TestServer, cookie: string, query = ""): Promise<string> {
  return (await fetch(`${s.adminUrl}/${query}`, { headers: { cookie } })).text();
}

/** Post one of the page's forms as the browser would, from the page's origin unless told otherwise. */
function post(s: TestServer, path: string, cookie: string, fields: Record<string, string>, origin: string | null = s.adminUrl) {
  return fetch(`${s.adminUrl}${path}`, {
    method: "POST",
    headers: { cookie, ...(origin ? { origin } : {}) },
    body: new URLSearchParams(fields),
    redirect: "manual",
  });
}

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

async function activeCounter(s: TestServer): Promise<string> {
  const id = await s.deploy("counter");
  await s.api("POST", `/api/partitions/${id}/activate`);
  return id;
}

describe("the status page", () => {
  it("shows triggers as words, sizes in KiB, full push URLs and the guest's log lines", async () => {
    const s = await server();
    const id = await activeCounter(s);
    await s.api("POST", `/api/partitions/${id}/freeze`);
    const html = await pageOf(s, await signIn(s));
    expect(html).toContain("every 1 min");
    expect(html).toMatch(/snapshot \d+(\.\d)? (KiB|MiB)/);
    const { body } = await s.api("GET", `/api/tasks?partition=${id}`);
    expect(html).toContain(`<code>${s.pushUrl}${body.tasks.find((t: { name: string }) => t.name === "inbox").pushUrl}</code>`);
    expect(html).toMatch(/<li class="lv-info">\d\d:\d\d(:\d\d)? info {2}counter activated \(fresh\), count=0<\/li>/);
    expect(html).toMatch(/<figcaption><strong>Wake latency<\/strong>: the one wake: median [\d.]+ m?s/);
    expect(html).toMatch(/<svg viewBox="0 0 320 120" role="img"[^>]*>.*<rect /s);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(html).not.toMatch(/<script|style="/);
  });

  it("gives a bearer client the page without forms", async () => {
    const s = await server();
    await activeCounter(s);
    const html = await (await fetch(`${s.adminUrl}/`, { headers: { authorization: `Bearer ${s.adminToken}` } })).text();
    expect(html).toContain("every 1 min");
    expect(html).not.toContain("<form");
  });

  it("refreshes itself every 5 s until paused, and stays paused across an action", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const cookie = await signIn(s);
    expect(await pageOf(s, cookie)).toContain('<meta http-equiv="refresh" content="5">');
    const paused = await pageOf(s, cookie, "?refresh=off");
    expect(paused).not.toContain('http-equiv="refresh"');
    expect(paused).toContain('<a href="/">Resume refresh</a>');
    const answer = await post(s, `/actions/freeze/${id}`, cookie, { csrf: csrfOf(paused), refresh: "off" });
    expect(answer.status).toBe(303);
    expect(answer.headers.get("location")).toBe("/?refresh=off");
  });

  it("freezes from a form with the session's CSRF token, and says so once on the next page", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const cookie = await signIn(s);
    const answer = await post(s, `/actions/freeze/${id}`, cookie, { csrf: csrfOf(await pageOf(s, cookie)) });
    expect(answer.status).toBe(303);
    expect(s.host.partitions.stateOf(id)).toBe("frozen");
    expect(await pageOf(s, cookie)).toMatch(/<p class="ok" role="status">Froze counter \(snapshot [\d.]+ KiB\)\.<\/p>/);
    expect(await pageOf(s, cookie)).not.toContain('class="ok"');
  });

  it("refuses a form without the CSRF token, with another session's, or from another origin", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const cookie = await signIn(s);
    const other = await signIn(s);
    const otherToken = csrfOf(await pageOf(s, other));
    const refusals = [
      await post(s, `/actions/freeze/${id}`, cookie, {}),
      await post(s, `/actions/freeze/${id}`, cookie, { csrf: otherToken }),
      await post(s, `/actions/freeze/${id}`, cookie, { csrf: csrfOf(await pageOf(s, cookie)) }, "http://evil.example"),
      await post(s, `/actions/freeze/${id}`, cookie, { csrf: csrfOf(await pageOf(s, cookie)) }, null),
    ];
    expect(refusals.map((r) => r.status)).toEqual([403, 403, 403, 403]);
    expect(await refusals[0]!.text()).toMatch(/<p class="error" role="alert">This form is out of date or did not come from your status page/);
    expect(s.host.partitions.stateOf(id)).not.toBe("frozen");
    expect(s.logLines.map((l) => JSON.parse(l).event)).toEqual(expect.arrayContaining(["csrf-refused", "cross-origin-refused"]));
  });

  it("refuses a form from a browser that is not signed in", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const answer = await post(s, `/actions/freeze/${id}`, "dormant_session=stale", { csrf: "x" });
    expect(answer.status).toBe(401);
    expect(await answer.text()).toContain("Your session has ended; sign in again");
  });

  it("shows a failed action's message as an error", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const cookie = await signIn(s);
    const csrf = csrfOf(await pageOf(s, cookie));
    await s.api("DELETE", `/api/partitions/${id}`); // deleted while the page was open
    const answer = await post(s, `/actions/activate/${id}`, cookie, { csrf });
    expect(answer.status).toBe(303);
    expect(await pageOf(s, cookie)).toMatch(new RegExp(`<p class="error" role="alert">[^<]*${id}`));
  });

  it("styles a wrong token as an error on the sign-in page", async () => {
    const s = await server();
    const login = await fetch(`${s.adminUrl}/login`, { method: "POST", body: new URLSearchParams({ token: "wrong" }) });
    expect(login.status).toBe(403);
    expect(await login.text()).toContain('<p class="error" role="alert">That token is wrong');
  });
});

describe("guest logs on the admin API", () => {
  it("lists a partition's recent lines by id or name, and only newer ones after `since`", async () => {
    const s = await server();
    const id = await activeCounter(s);
    const { status, body } = await s.api("GET", "/api/partitions/counter/logs");
    expect(status).toBe(200);
    expect(body).toMatchObject({ partition: id, dropped: 0, logs: [{ level: "info", message: "counter activated (fresh), count=0", at: s.now.value }] });
    await s.api("POST", `/api/partitions/${id}/freeze`);
    await s.api("POST", `/api/partitions/${id}/activate`);
    const newer = await s.api("GET", `/api/partitions/${id}/logs?since=${body.next}`);
    expect(newer.body.logs.map((l: { message: string }) => l.message)).toEqual(["counter activated (restored), count=0"]);
    expect(newer.body.next).toBeGreaterThan(body.next);
  });

  it("answers an unknown partition with 404 and a bad `since` with 400", async () => {
    const s = await server();
    const id = await activeCounter(s);
    expect((await s.api("GET", "/api/partitions/p_nope/logs")).status).toBe(404);
    const bad = await s.api("GET", `/api/partitions/${id}/logs?since=-1`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/Query "since" must be a whole number/);
  });

  it("forgets a deleted partition's lines", async () => {
    const s = await server();
    const id = await activeCounter(s);
    await s.api("DELETE", `/api/partitions/${id}`);
    const again = await activeCounter(s);
    expect((await s.api("GET", `/api/partitions/${again}/logs`)).body.logs).toHaveLength(1);
  });
});
