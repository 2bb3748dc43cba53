// The HTTP surface of a host, on hono: push triggers, the admin API, health, metrics and
// the status page.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie, setCookie } from "hono/cookie";
import type { Host } from "../host.ts";
import type { Activity } from "../observability/activity.ts";
import type { Metrics } from "../observability/metrics.ts";
import { HTTP_DEFAULTS } from "../options.ts";
import { adminRoutes } from "./admin-api.ts";
import { presentedToken, requireAdmin, sameSecret, TOKEN_COOKIE } from "./auth.ts";
import { problem } from "./errors.ts";
import { pushRoutes } from "./push.ts";
import { RateLimiter, type RateLimit } from "./rate-limit.ts";
import { loginPage, statusPage } from "./status-page.ts";

export interface HttpOptions {
  adminToken: string;
  /** Push request bodies (default 1 MiB). */
  maxBodyBytes?: number;
  /** Component uploads (default 64 MiB). */
  maxComponentBytes?: number;
  pushRate?: RateLimit;
  /** How long a synchronous push waits for the guest (default 10 s). */
  pushDeadlineMs?: number;
}

export function createApp(host: Host, metrics: Metrics, activity: Activity, options: HttpOptions, clock: () => number = Date.now): Hono {
  const o = { ...HTTP_DEFAULTS, ...options };
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ ok: true, partitions: host.partitions.list().length, live: host.partitions.liveCount(), tasks: host.partitions.tasks.size }));
  app.get("/metrics", async (c) => c.text(await metrics.text(), 200, { "content-type": metrics.registry.contentType }));
  app.route("/", pushRoutes(host, new RateLimiter(o.pushRate, clock), metrics, { maxBodyBytes: o.maxBodyBytes, deadlineMs: o.pushDeadlineMs }));
  app.use("/api/*", requireAdmin(o.adminToken));
  app.route("/api", adminRoutes(host, activity, { maxComponentBytes: o.maxComponentBytes }));

  app.get("/", async (c) => {
    const given = presentedToken(c.req.header("authorization"), getCookie(c, TOKEN_COOKIE));
    if (given === undefined) return c.html(loginPage("Sign in with the admin token that dormant serve printed."), 401);
    if (!sameSecret(given, o.adminToken)) return c.html(loginPage("That token is wrong; use the one dormant serve printed."), 403);
    return c.html(await statusPage(host, activity));
  });
  const loginLimit = bodyLimit({ maxSize: 4096, onError: (c) => c.html(loginPage("That sign-in form was too large."), 413) });
  app.post("/login", loginLimit, async (c) => {
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token : "";
    if (!sameSecret(token, o.adminToken)) return c.html(loginPage("That token is wrong; use the one dormant serve printed."), 403);
    setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: "Strict", path: "/" });
    return c.redirect("/", 303);
  });
  app.notFound((c) => problem(c, 404, "not-found", `Nothing at ${c.req.method} ${c.req.path}. Push URLs look like /push/<token>; the admin API is under /api.`));
  app.onError((error, c) => problem(c, 500, "internal", `${error.name}: ${error.message}`));
  return app;
}
