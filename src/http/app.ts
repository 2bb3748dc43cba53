// The HTTP surfaces of a host, on hono, as two origins: the push origin, where untrusted
// guests answer requests, and the operator's origin (status page, admin API, metrics).
// Each listens on its own port, so nothing a guest serves runs with the operator's origin.
import { prefixStorage } from "unstorage";
import { Hono, type MiddlewareHandler } from "hono";
import type { Host } from "../host.ts";
import type { Activity } from "../observability/activity.ts";
import type { Metrics } from "../observability/metrics.ts";
import { HTTP_DEFAULTS } from "../options.ts";
import { checkHost, requireMetricsReader, requireOperator, type DoorOptions, type SecurityLog } from "./admin-door.ts";
import { adminRoutes } from "./admin-api.ts";
import { clusterRoutes } from "./cluster-api.ts";
import { sameSecret, Sessions } from "./auth.ts";
import { errorResponse, problem } from "./errors.ts";
import { pushRoutes } from "./push.ts";
import { RateLimiter, type RateLimit } from "../budget/rate-limit.ts";
import { signInRoutes } from "./sign-in.ts";
import { ADMIN_CSP } from "./status/page.ts";

export interface HttpOptions {
  adminToken: string;
  /** When set, /metrics requires this token (or the admin token). */
  metricsToken?: string;
  /** Push request bodies (default 1 MiB). */
  maxBodyBytes?: number;
  /** Component uploads (default 64 MiB). */
  maxComponentBytes?: number;
  pushRate?: RateLimit;
  /** How long a synchronous push waits for the guest (default 10 s). */
  pushDeadlineMs?: number;
  /** Content-Security-Policy added to guest replies (default `sandbox`: no script, an opaque origin). */
  guestCsp?: string;
  /** Host names the admin listener answers to besides localhost and IP addresses (DNS rebinding). */
  adminHostnames?: string[];
  /** Behind a reverse proxy: take the client address and host from X-Forwarded-For and -Host. */
  trustProxy?: boolean;
  /** The push origin, when known: the admin API gives tasks their full push URL. */
  pushOrigin?: string;
  /** How long a browser stays signed in (default 12 h). */
  sessionTtlMs?: number;
  /** Wrong tokens a client may send (default bursts of 10, then one per 6 s). */
  authFailures?: RateLimit;
}

export interface HttpContext {
  clock: () => number;
  /** Security events: failed sign-ins, lock-outs, refused requests and guest replies. */
  log: SecurityLog;
}

export function createPushApp(host: Host, metrics: Metrics, options: HttpOptions, { clock, log }: HttpContext): Hono {
  const o = { ...HTTP_DEFAULTS, ...options };
  const secrets = [o.adminToken, ...(o.metricsToken ? [o.metricsToken] : [])];
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    c.res.headers.set("x-content-type-options", "nosniff");
  });
  // The public port says only whether the host is healthy; the operator's port says why not.
  app.get("/healthz", async (c) => {
    const health = await storeHealth(host);
    // A cluster host that does not hold its membership takes no traffic of its own: a balancer should send it elsewhere.
    const member = host.cluster?.membership.member;
    const ok = health.ok && member !== false;
    return c.json({ ok, ...(member === undefined ? {} : { member }) }, ok ? 200 : 503);
  });
  app.route(
    "/",
    pushRoutes(host, new RateLimiter(o.pushRate, clock), metrics, {
      maxBodyBytes: o.maxBodyBytes,
      deadlineMs: o.pushDeadlineMs,
      guestCsp: o.guestCsp,
      isHostSecret: (token) => secrets.some((secret) => sameSecret(token, secret)),
      log,
    }),
  );
  const elsewhere = "the status page, admin API and metrics are on the admin port (8788 by default)";
  app.notFound((c) => problem(c, 404, "not-found", `Nothing at ${c.req.method} ${c.req.path}. Push URLs look like /push/<token>; ${elsewhere}.`));
  app.onError((error, c) => errorResponse(c, error));
  return app;
}

/** Headers on every answer of the operator's origin: no framing, sniffing, caching or cross-origin reads. */
const adminHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  const headers = c.res.headers;
  headers.set("content-security-policy", ADMIN_CSP);
  headers.set("x-frame-options", "DENY");
  headers.set("x-content-type-options", "nosniff");
  // Not no-referrer: under it a browser sends `Origin: null` with the page's own form posts, which the door refuses.
  headers.set("referrer-policy", "same-origin");
  headers.set("cross-origin-opener-policy", "same-origin");
  headers.set("cross-origin-resource-policy", "same-origin");
  headers.set("cache-control", "no-store");
};

export function createAdminApp(host: Host, metrics: Metrics, activity: Activity, options: HttpOptions, { clock, log }: HttpContext): Hono {
  const o = { ...HTTP_DEFAULTS, ...options };
  // A cluster's hosts share sessions and form outcomes through the store: sign in on one, work on any.
  const shared = host.cluster ? host.store.root : undefined;
  const door: DoorOptions = {
    adminToken: o.adminToken,
    metricsToken: o.metricsToken,
    sessions: new Sessions(o.sessionTtlMs, clock, { secret: o.adminToken, shared: shared && prefixStorage(shared, "sessions") }),
    shared,
    failures: new RateLimiter(o.authFailures, clock),
    hostnames: o.adminHostnames,
    trustProxy: o.trustProxy,
    log,
  };
  const app = new Hono();
  app.use(adminHeaders);
  app.use(checkHost(door));
  const { partitions, registry } = host;
  app.get("/healthz", async (c) => {
    const health = await storeHealth(host);
    const cluster = host.cluster
      ? { host: host.cluster.membership.host, member: host.cluster.membership.member, shards: host.cluster.membership.heldShards().length }
      : undefined;
    return c.json(
      { ...health, ...(cluster ? { cluster } : {}), partitions: partitions.list().length, live: partitions.liveCount(), tasks: registry.size },
      health.ok ? 200 : 503,
    );
  });
  app.get("/metrics", requireMetricsReader(door), async (c) => c.text(await metrics.text(), 200, { "content-type": metrics.registry.contentType }));
  app.use("/api/*", requireOperator(door));
  // On a cluster host: the cluster's view, and a partition another host holds is acted on there.
  if (host.cluster) app.route("/api", clusterRoutes(host, host.cluster));
  app.route("/api", adminRoutes(host, activity, { maxComponentBytes: o.maxComponentBytes, pushOrigin: o.pushOrigin }));
  app.route("/", signInRoutes(host, activity, door, o.pushOrigin));
  const where = "The admin API is under /api, metrics at /metrics; push URLs are served on the push port.";
  app.notFound((c) => problem(c, 404, "not-found", `Nothing at ${c.req.method} ${c.req.path}. ${where}`));
  app.onError((error, c) => errorResponse(c, error));
  return app;
}

/** Healthy while the store answers; unhealthy (naming the store and why) while it does not, or when it is no longer this host's. */
async function storeHealth(host: Host): Promise<{ ok: boolean; store: string; error?: string }> {
  const health = await host.health().catch((error: Error) => ({ ok: false as const, error: error.message }));
  return { ...health, store: host.store.description };
}
