// Every error the HTTP surface answers is JSON: `{error: {code, message}}`, where the
// message says what was wrong and what to do. A DormantError's code decides its status
// here, in the one table.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isDormantError, type DormantCode } from "../../runtime/index.ts";

export const HTTP_STATUS: Record<DormantCode, ContentfulStatusCode> = {
  "invalid-component": 400,
  "component-in-use": 409,
  "engine-cache-write": 507,
  "guest-build": 400,
  "guest-trap": 502,
  "activation-failed": 502,
  "upgrade-failed": 502,
  "guest-deadline": 504,
  "partition-quarantined": 503,
  "memory-limit": 502,
  "executor-lost": 503,
  "partition-not-live": 409,
  "invalid-reply": 502,
  "snapshot-format": 500,
  "snapshot-corrupt": 500,
  "no-usable-snapshot": 500,
  "snapshot-head-corrupt": 500,
  "snapshot-too-large": 507,
  "records-corrupt": 500,
  "store-config": 500,
  "store-unavailable": 503,
  "store-locked": 409,
  "lease-lost": 503,
  "invalid-key": 400,
  "cluster-config": 500,
  "unknown-partition": 404,
  "name-taken": 409,
  "invalid-partition-id": 400,
  "partition-unavailable": 503,
  "partition-gone": 410,
  "unknown-component": 400,
  "unknown-task": 404,
  "invalid-task-spec": 400,
  constrained: 503,
  "push-deadline": 504,
  "invalid-field": 400,
  "invalid-settings": 400,
  "power-file": 500,
  client: 400,
};

/** Answers that can succeed later say when to try again. */
const RETRY_AFTER: Partial<Record<DormantCode, string>> = {
  constrained: "60",
  "executor-lost": "1",
  "store-unavailable": "5",
  // Another host owns the partition now; asked again, this host forwards or reloads.
  "lease-lost": "1",
  "partition-unavailable": "5",
  "partition-quarantined": "30",
};

export function problem(c: Context, status: ContentfulStatusCode, code: string, message: string, headers?: Record<string, string>): Response {
  return c.json({ error: { code, message } }, status, headers);
}

/** The answer for an error thrown while serving a request. */
export function errorResponse(c: Context, error: unknown): Response {
  if (isDormantError(error)) {
    const retry = RETRY_AFTER[error.code];
    return problem(c, HTTP_STATUS[error.code], error.code, error.message, retry ? { "retry-after": retry } : undefined);
  }
  if (error instanceof SyntaxError) return problem(c, 400, "invalid-json", `The body is not valid JSON: ${error.message}`);
  const { name, message } = error instanceof Error ? error : { name: "Error", message: String(error) };
  return problem(c, 500, "internal", `${name}: ${message}`);
}
