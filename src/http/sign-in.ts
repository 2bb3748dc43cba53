// The status page and a browser's sign-in: the admin token is posted once, and the
// browser gets a session id (HttpOnly, SameSite=Strict, expiring) instead of the token;
// the page's forms post to the action routes, guarded by the session's CSRF token.
import { prefixStorage } from "unstorage";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Host } from "../host.ts";
import type { Activity } from "../observability/activity.ts";
import { clientOf, credentialOf, failed, lockWait, sameOrigin, type DoorOptions } from "./admin-door.ts";
import { SESSION_COOKIE, sameSecret } from "./auth.ts";
import { problem } from "./errors.ts";
import { actionRoutes, FormGuard } from "./status/actions.ts";
import { loginPage, statusPage } from "./status/page.ts";

const WRONG = "That token is wrong; use the one dormant serve printed, or DORMANT_ADMIN_TOKEN.";
/** Before sessions, the browser kept the admin token itself in this cookie. */
const LEGACY_TOKEN_COOKIE = "dormant_token";

export function signInRoutes(host: Host, activity: Activity, o: DoorOptions, pushOrigin?: string): Hono {
  const app = new Hono();
  const guard = new FormGuard(o.adminToken, o.shared && prefixStorage(o.shared, "status-flashes"));
  const accept = (token: string) => sameSecret(token, o.adminToken);
  const lockedPage = (c: Context, wait: number) =>
    c.html(loginPage(`Too many wrong tokens from your address; try again in ${wait} s.`, true), 429, { "retry-after": String(wait) });
  const https = (c: Context) => new URL(c.req.url).protocol === "https:" || (o.trustProxy && c.req.header("x-forwarded-proto") === "https");

  app.use(async (c, next) => {
    if (getCookie(c, LEGACY_TOKEN_COOKIE) !== undefined) deleteCookie(c, LEGACY_TOKEN_COOKIE, { path: "/" });
    await next();
  });

  app.get("/", async (c) => {
    const wait = lockWait(c, o);
    if (wait > 0) return lockedPage(c, wait);
    const via = await credentialOf(c, o, accept);
    if (via === undefined) return c.html(loginPage("Sign in with the admin token that dormant serve printed."), 401);
    if (via === "wrong") {
      failed(c, o, "status-page");
      return c.html(loginPage(WRONG, true), 403);
    }
    // A bearer client sees the page without forms: they post with the session's token.
    const session = via === "session" ? getCookie(c, SESSION_COOKIE)! : undefined;
    const view = {
      pushOrigin,
      refresh: c.req.query("refresh") !== "off",
      csrf: session === undefined ? undefined : guard.tokenOf(session),
      flash: session === undefined ? undefined : await guard.takeFlash(session),
    };
    return c.html(await statusPage(host, activity, view));
  });
  app.route("/", actionRoutes(host, activity, o, guard));

  const loginLimit = bodyLimit({ maxSize: 4096, onError: (c) => c.html(loginPage("That sign-in form was too large.", true), 413) });
  app.post("/login", loginLimit, async (c) => {
    const wait = lockWait(c, o);
    if (wait > 0) return lockedPage(c, wait);
    // A sign-in posted from another origin would sign the browser in behind its user's back.
    if (c.req.header("origin") !== undefined && !sameOrigin(c, o.trustProxy)) {
      o.log({ event: "cross-origin-refused", client: clientOf(c, o.trustProxy), origin: c.req.header("origin"), method: "POST", path: "/login" });
      return c.html(loginPage("Sign in from this server's own page.", true), 403);
    }
    // A body its content type says is a form but that is not one (a broken multipart body) is the sender's mistake.
    const form = await c.req.parseBody().catch(() => undefined);
    if (!form) return c.html(loginPage("That sign-in form could not be read: send it from this server's sign-in page.", true), 400);
    if (typeof form.token !== "string" || !accept(form.token)) {
      failed(c, o, "sign-in");
      return c.html(loginPage(WRONG, true), 403);
    }
    const id = await o.sessions.open();
    setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: "Strict", path: "/", maxAge: Math.floor(o.sessions.ttlMs / 1000), secure: https(c) });
    o.log({ event: "signed-in", client: clientOf(c, o.trustProxy) });
    return c.redirect("/", 303);
  });

  app.post("/logout", loginLimit, async (c) => {
    if (!sameOrigin(c, o.trustProxy)) {
      return problem(c, 403, "cross-origin", "Sign out with the button on this server's status page; a sign-out from another origin is refused.");
    }
    await o.sessions.close(getCookie(c, SESSION_COOKIE));
    deleteCookie(c, SESSION_COOKIE, { path: "/" });
    return c.redirect("/", 303);
  });
  return app;
}
