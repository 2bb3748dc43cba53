// The door of the operator's origin: which host names it answers to (DNS rebinding),
// who is signed in (bearer token or session), how many wrong guesses a client gets, and
// which state-changing requests a browser may make (CSRF).
import type { Storage } from "unstorage";
import { isIP } from "node:net";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie } from "hono/cookie";
import { bearerOf, SESSION_COOKIE, sameSecret, type Sessions } from "./auth.ts";
import { problem } from "./errors.ts";
import type { RateLimiter } from "../budget/rate-limit.ts";

/** A structured security log line (auth failures, lock-outs, refused requests). */
export type SecurityLog = (fields: Record<string, unknown>) => void;

export interface DoorOptions {
  adminToken: string;
  /** When set, /metrics also takes this token (and requires one of the two). */
  metricsToken: string | undefined;
  sessions: Sessions;
  /** A cluster's shared store, where what a browser's later request may reach another host for is kept (sessions, form outcomes). */
  shared: Storage | undefined;
  /** Failed sign-ins per client. */
  failures: RateLimiter;
  /** Host names the admin listener answers to besides loopback names and IP addresses. */
  hostnames: readonly string[];
  /** Take the client address and host from X-Forwarded-For and X-Forwarded-Host (behind a reverse proxy). */
  trustProxy: boolean;
  log: SecurityLog;
}

export type Via = "bearer" | "session";

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Content types a cross-origin page cannot send without a CORS preflight, which this server never grants. */
const PREFLIGHTED = /^application\/(json|wasm)\s*(;|$)/i;

export function isUnsafe(method: string): boolean {
  return UNSAFE.has(method.toUpperCase());
}

/** The client a failure counts against: its address (IPv6 by /64, as one host usually holds a whole /64). */
export function clientOf(c: Context, trustProxy: boolean): string {
  const forwarded = trustProxy ? c.req.header("x-forwarded-for")?.split(",").at(-1)?.trim() : undefined;
  const address = (forwarded || getConnInfo(c).remote.address || "unknown").replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const [head = "", tail = ""] = address.split("::");
  const front = head ? head.split(":") : [];
  const back = address.includes("::") && tail ? tail.split(":") : [];
  const groups = [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

function hostHeader(c: Context, trustProxy: boolean): string | undefined {
  return (trustProxy ? c.req.header("x-forwarded-host")?.split(",")[0]?.trim() : undefined) || c.req.header("host");
}

/**
 * Only names an attacker's DNS cannot point here answer: IP addresses, `localhost` and
 * `*.localhost` (browsers resolve those to loopback themselves), and configured names.
 */
export function hostAllowed(host: string | undefined, configured: ReadonlySet<string>): boolean {
  if (host === undefined) return true; // not a browser: every browser sends Host
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) return false; // no user info, path or other smuggling
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname.replace(/\.$/, "");
  } catch {
    return false;
  }
  if (isIP(name.replace(/^\[|\]$/g, "")) !== 0) return true;
  return name === "localhost" || name.endsWith(".localhost") || configured.has(name);
}

/** Whether the request's Origin is this server as the browser addressed it. */
export function sameOrigin(c: Context, trustProxy: boolean): boolean {
  const origin = c.req.header("origin");
  const host = hostHeader(c, trustProxy);
  if (!origin || origin === "null" || !host) return false;
  try {
    const from = new URL(origin);
    return from.host === new URL(`${from.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

export function checkHost(o: DoorOptions): MiddlewareHandler {
  const configured = new Set(o.hostnames.map((name) => name.toLowerCase().replace(/\.$/, "")));
  return async (c, next) => {
    const host = hostHeader(c, o.trustProxy);
    if (hostAllowed(host, configured)) return next();
    o.log({ event: "host-refused", client: clientOf(c, o.trustProxy), host });
    const allowed = "it answers to localhost, IP addresses and the names given with --admin-hostnames";
    return problem(c, 421, "host-not-allowed", `This admin server does not answer to the host name in ${JSON.stringify(host)}; ${allowed}.`);
  };
}

/** Seconds this client must wait after too many recent failures; 0 when it may try. */
export function lockWait(c: Context, o: DoorOptions): number {
  return o.failures.wait(clientOf(c, o.trustProxy));
}

/** A 429 for a client with too many recent failures, or undefined. */
export function lockedOut(c: Context, o: DoorOptions): Response | undefined {
  const wait = lockWait(c, o);
  if (wait === 0) return undefined;
  return problem(c, 429, "too-many-failures", `Too many wrong tokens from your address; try again in ${wait} s.`, { "retry-after": String(wait) });
}

/** Count and log a wrong credential; logs once more when the client is locked out by it. */
export function failed(c: Context, o: DoorOptions, surface: string): void {
  const client = clientOf(c, o.trustProxy);
  o.failures.take(client);
  o.log({ event: "auth-failed", surface, client, method: c.req.method, path: c.req.path });
  const wait = o.failures.wait(client);
  if (wait > 0) o.log({ event: "auth-locked-out", client, retryAfter: wait });
}

/** The credential a request presents: a good one, a wrong one, or none. */
export async function credentialOf(c: Context, o: DoorOptions, accept: (token: string) => boolean): Promise<Via | "wrong" | undefined> {
  const authorization = c.req.header("authorization");
  if (authorization !== undefined) {
    const token = bearerOf(authorization);
    return token !== undefined && accept(token) ? "bearer" : "wrong";
  }
  const session = getCookie(c, SESSION_COOKIE);
  if (await o.sessions.valid(session)) return "session";
  if (session !== undefined) deleteCookie(c, SESSION_COOKIE, { path: "/" }); // expired, or from before a restart
  return undefined;
}

/**
 * A state-changing request from a browser must come from this origin. A cookie-borne one
 * must also carry a JSON (or wasm) body type, which no cross-origin form can send.
 */
export function crossSiteRefusal(c: Context, o: DoorOptions, via: Via): Response | undefined {
  if (!isUnsafe(c.req.method)) return undefined;
  const origin = c.req.header("origin");
  const fromHere = sameOrigin(c, o.trustProxy);
  if ((origin !== undefined || via === "session") && !fromHere) {
    o.log({ event: "cross-origin-refused", client: clientOf(c, o.trustProxy), origin: origin ?? null, method: c.req.method, path: c.req.path });
    const from = origin ?? "a page that sent no Origin";
    const how = "changes come from this server's own origin, or with Authorization: Bearer <token>";
    return problem(c, 403, "cross-origin", `A ${c.req.method} from ${from} is refused: ${how}.`);
  }
  if (via === "session" && !PREFLIGHTED.test(c.req.header("content-type") ?? "")) {
    o.log({ event: "cross-origin-refused", client: clientOf(c, o.trustProxy), origin: origin ?? null, method: c.req.method, path: c.req.path });
    return problem(c, 415, "json-required", "A signed-in browser's change must be sent with Content-Type: application/json.");
  }
  return undefined;
}

/** The admin API's guard: a good token or session, not locked out, and no cross-site change. */
export function requireOperator(o: DoorOptions): MiddlewareHandler {
  const accept = (token: string) => sameSecret(token, o.adminToken);
  return async (c, next) => {
    const locked = lockedOut(c, o);
    if (locked) return locked;
    const via = await credentialOf(c, o, accept);
    if (via === undefined) {
      const how = "send Authorization: Bearer <token> (dormant serve prints it at first start)";
      return problem(c, 401, "unauthorized", `This needs the admin token: ${how}.`, { "www-authenticate": "Bearer" });
    }
    if (via === "wrong") {
      failed(c, o, "api");
      return problem(c, 403, "forbidden", "The admin token is wrong; use the one dormant serve printed, or DORMANT_ADMIN_TOKEN.");
    }
    return crossSiteRefusal(c, o, via) ?? next();
  };
}

/** /metrics: open unless a metrics token is configured; then that token, the admin token or a session. */
export function requireMetricsReader(o: DoorOptions): MiddlewareHandler {
  const { metricsToken } = o;
  if (metricsToken === undefined) return async (_c, next) => next();
  const accept = (token: string) => sameSecret(token, metricsToken) || sameSecret(token, o.adminToken);
  return async (c, next) => {
    const locked = lockedOut(c, o);
    if (locked) return locked;
    const via = await credentialOf(c, o, accept);
    if (via === undefined) {
      const how = "send Authorization: Bearer <DORMANT_METRICS_TOKEN>";
      return problem(c, 401, "unauthorized", `Metrics need the metrics token: ${how}.`, { "www-authenticate": "Bearer" });
    }
    if (via === "wrong") {
      failed(c, o, "metrics");
      return problem(c, 403, "forbidden", "The metrics token is wrong; use DORMANT_METRICS_TOKEN as configured.");
    }
    return next();
  };
}
