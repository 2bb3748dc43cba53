// The admin token: required by the admin API and the status page, as a bearer token or
// (for browsers, set by the status page's form) a cookie. Compared in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { problem } from "./errors.ts";

export const TOKEN_COOKIE = "dormant_token";

export function sameSecret(given: string, expected: string): boolean {
  // Hash first: equal lengths for timingSafeEqual, and no early exit on length.
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token a request presents, if any. */
export function presentedToken(header: string | undefined, cookie: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? cookie;
}

export function requireAdmin(token: string): MiddlewareHandler {
  return async (c, next) => {
    const given = presentedToken(c.req.header("authorization"), getCookie(c, TOKEN_COOKIE));
    if (given === undefined) {
      return problem(c, 401, "unauthorized", "This needs the admin token: send Authorization: Bearer <token> (dormant serve prints it at first start).", { "www-authenticate": "Bearer" });
    }
    if (!sameSecret(given, token)) return problem(c, 403, "forbidden", "The admin token is wrong; use the one dormant serve printed, or DORMANT_ADMIN_TOKEN.");
    await next();
  };
}
