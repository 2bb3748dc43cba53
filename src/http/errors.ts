// Every error the HTTP surface answers is JSON: `{error: {code, message}}`, where the
// message says what was wrong and what to do.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, headers?: Record<string, string>): Response {
  return c.json({ error: { code, message } }, status, headers);
}
