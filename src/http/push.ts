// Push triggers: a request to `/push/<token>[/<path>]` wakes the task's partition and
// delivers the request to its entry point. Synchronous by default — the guest's reply is
// the response; with `Prefer: respond-async` it is stored, answered 202, and delivered at
// least once like a timer event. The guest is untrusted: its reply's headers pass
// through `replyHeaders`, and the request it sees through `guestRequestHeaders`.
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { PushRequest } from "../../runtime/index.ts";
import { forward, wasForwarded } from "../cluster/forward.ts";
import type { ClusterHost, Host } from "../host.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { TaskRecord } from "../tasks/task.ts";
import type { SecurityLog } from "./admin-door.ts";
import { errorResponse, problem } from "./errors.ts";
import { guestRequestHeaders, replyHeaders } from "./guest-headers.ts";
import type { RateLimiter } from "../budget/rate-limit.ts";
import { isDormantError } from "../../runtime/index.ts";

export interface PushOptions {
  maxBodyBytes: number;
  /** How long a synchronous push waits for the guest. */
  deadlineMs: number;
  /** Content-Security-Policy on every guest reply. */
  guestCsp: string;
  /** Whether a bearer token is one of the host's own (never handed to a guest). */
  isHostSecret: (token: string) => boolean;
  log: SecurityLog;
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
      // On a cluster, the URL may be another host's to answer.
      if (host.cluster) return respond(await elsewhere(c, host, host.cluster, token, options.deadlineMs).catch((error) => errorResponse(c, error)));
      return respond(unknownUrl(c));
    }
    const wait = limiter.take(token);
    if (wait > 0) {
      return respond(problem(c, 429, "rate-limited", `Too many requests to this push URL; retry in ${wait} s.`, { "retry-after": String(wait) }));
    }
    const request = await pushRequestOf(c.req.raw, token, task, options.isHostSecret);
    try {
      if (/\brespond-async\b/i.test(c.req.header("prefer") ?? "")) {
        const delivery = await host.tasks.pushAsync(task, request);
        return respond(c.json({ delivery }, 202, { "preference-applied": "respond-async" }));
      }
      const outcome = await host.tasks.push(task, request, options.deadlineMs);
      if (!outcome.ok) return respond(problem(c, 502, "guest-error", `The partition failed to handle the request: ${outcome.error}`));
      if (!outcome.reply) return respond(c.body(null, 204));
      const { status, headers, body } = outcome.reply;
      if (status < 200 || status > 599) {
        return respond(problem(c, 502, "invalid-reply", `The partition answered with status ${status}, which is not a valid HTTP status.`));
      }
      const sent = replyHeaders(headers, { csp: options.guestCsp });
      return respond(new Response(status === 204 || status === 304 ? null : new Uint8Array(body), { status, headers: sent }));
    } catch (error) {
      if (isDormantError(error, "invalid-reply")) {
        options.log({ event: "guest-reply-refused", partition: task.partition, task: task.name, header: error.details.header, reason: error.message });
        return respond(problem(c, 502, "invalid-reply", `The partition's reply was refused: ${error.message}`));
      }
      if (isDormantError(error, "partition-unavailable") && error.details.backlog) {
        // A full backlog: this partition's (429, it is the one sending too much) or the host's (503).
        const status = error.details.backlog === "partition" ? 429 : 503;
        return respond(problem(c, status, "backlog-full", error.message, { "retry-after": String(error.details.retryAfterS) }));
      }
      if (isDormantError(error, "push-deadline")) {
        return respond(problem(c, 504, "guest-deadline", `${error.message} Send it with Prefer: respond-async to have it delivered in the background.`));
      }
      return respond(errorResponse(c, error));
    }
  };
  const tooLarge = (c: Context) => {
    metrics.push(413);
    const message = `The request body is over the ${options.maxBodyBytes}-byte limit for push requests; send less, or a reference to the data.`;
    return problem(c, 413, "body-too-large", message);
  };
  const streamed = bodyLimit({ maxSize: options.maxBodyBytes, onError: tooLarge });
  // hono's bodyLimit looks at `request.body`, which builds a web stream for every request; a
  // declared length (which Node's parser holds the body to) is checked without one, and the
  // body is then read straight from the socket.
  const limit: MiddlewareHandler = async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared === undefined || c.req.header("transfer-encoding") !== undefined) return streamed(c, next);
    return Number(declared) > options.maxBodyBytes ? tooLarge(c) : next();
  };
  app.all("/push/:token", limit, handle);
  app.all("/push/:token/*", limit, handle);
  return app;
}

function unknownUrl(c: Context): Response {
  return problem(c, 404, "unknown-push-url", "No push task has this URL; it may have been cancelled or re-registered (which issues a new URL).");
}

/** A push whose partition this host does not hold: forwarded once to the host that does. */
async function elsewhere(c: Context, host: Host, cluster: ClusterHost, token: string, deadlineMs: number): Promise<Response> {
  const partition = await host.registry.partitionOfToken(token);
  if (partition === undefined) return unknownUrl(c);
  const owner = wasForwarded(c.req.raw) || cluster.membership.owns(partition) ? undefined : await cluster.membership.ownerOf(partition);
  if (!owner) {
    const message = `The partition of this push URL is moving between hosts right now; retry in a moment.`;
    return problem(c, 503, "partition-unavailable", message, { "retry-after": "1" });
  }
  // The owner applies its own rate limit and deadline; a little longer here, so its answer arrives rather than ours.
  return forward(c.req.raw, owner.address, cluster.membership.host, deadlineMs + 1000);
}

async function pushRequestOf(request: Request, token: string, task: TaskRecord, isHostSecret: (token: string) => boolean): Promise<PushRequest> {
  const url = new URL(request.url);
  const path = url.pathname.slice(`/push/${token}`.length) || "/";
  return {
    method: request.method.toUpperCase(),
    path,
    query: url.search.replace(/^\?/, ""),
    headers: guestRequestHeaders(request.headers, { credentials: task.receiveCredentials === true, isHostSecret }),
    body: new Uint8Array(await request.arrayBuffer()),
  };
}
