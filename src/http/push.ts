// Push triggers: a request to `/push/<token>[/<path>]` wakes the task's partition and
// delivers the request to its entry point. Synchronous by default — the guest's reply is
// the response; with `Prefer: respond-async` it is stored, answered 202, and delivered at
// least once like a timer event.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { PushRequest } from "../../runtime/index.ts";
import type { Host } from "../host.ts";
import type { Metrics } from "../observability/metrics.ts";
import { ConstrainedError, PushDeadlineError } from "../delivery/dispatcher.ts";
import { problem } from "./errors.ts";
import type { RateLimiter } from "./rate-limit.ts";

export interface PushOptions {
  maxBodyBytes: number;
  /** How long a synchronous push waits for the guest. */
  deadlineMs: number;
}

export function pushRoutes(host: Host, limiter: RateLimiter, metrics: Metrics, options: PushOptions): Hono {
  const app = new Hono();
  const handle = async (c: Context) => {
    const token = c.req.param("token")!;
    const respond = (response: Response) => {
      metrics.push(response.status);
      return response;
    };
    const task = host.registry.byPushToken(token);
    if (!task) {
      return respond(problem(c, 404, "unknown-push-url", "No push task has this URL; it may have been cancelled or re-registered (which issues a new URL)."));
    }
    const wait = limiter.take(token);
    if (wait > 0) {
      return respond(problem(c, 429, "rate-limited", `Too many requests to this push URL; retry in ${wait} s.`, { "retry-after": String(wait) }));
    }
    const request = await pushRequestOf(c.req.raw, token);
    try {
      if (/\brespond-async\b/i.test(c.req.header("prefer") ?? "")) {
        const delivery = await host.tasks.pushAsync(task, request);
        return respond(c.json({ delivery }, 202, { "preference-applied": "respond-async" }));
      }
      const outcome = await host.tasks.push(task, request, options.deadlineMs);
      if (!outcome.ok) return respond(problem(c, 502, "guest-error", `The partition failed to handle the request: ${outcome.error}`));
      if (!outcome.reply) return respond(c.body(null, 204));
      const { status, headers, body } = outcome.reply;
      if (status < 200 || status > 599) return respond(problem(c, 502, "guest-error", `The partition answered with status ${status}, which is not a valid HTTP status.`));
      return respond(new Response(status === 204 || status === 304 ? null : new Uint8Array(body), { status, headers: headers as [string, string][] }));
    } catch (error) {
      if (error instanceof PushDeadlineError) return respond(problem(c, 504, "guest-deadline", `${error.message} Send it with Prefer: respond-async to have it delivered in the background.`));
      if (error instanceof ConstrainedError) return respond(problem(c, 503, "constrained", error.message, { "retry-after": "60" }));
      throw error;
    }
  };
  const limit = bodyLimit({
    maxSize: options.maxBodyBytes,
    onError: (c) => {
      metrics.push(413);
      return problem(c, 413, "body-too-large", `The request body is over the ${options.maxBodyBytes}-byte limit for push requests; send less, or a reference to the data.`);
    },
  });
  app.all("/push/:token", limit, handle);
  app.all("/push/:token/*", limit, handle);
  return app;
}

async function pushRequestOf(request: Request, token: string): Promise<PushRequest> {
  const url = new URL(request.url);
  const path = url.pathname.slice(`/push/${token}`.length) || "/";
  return {
    method: request.method.toUpperCase(),
    path,
    query: url.search.replace(/^\?/, ""),
    headers: [...request.headers],
    body: new Uint8Array(await request.arrayBuffer()),
  };
}
