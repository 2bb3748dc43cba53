// A request that reaches a host which does not hold its partition is sent on to the host
// that does, once: the owner answers it as its own (a synchronous push still returns the
// guest's reply), and a forwarded request is never forwarded again, so a shard moving at
// that moment costs a 503 and a retry, never a loop.
import { DormantError } from "../../runtime/index.ts";

/** Marks a forwarded request with the host that sent it on. */
export const FORWARDED_BY = "x-dormant-forwarded-by";

/** Hop-by-hop and framing headers are the connection's, not the request's or the reply's. */
const NOT_FORWARDED = ["host", "connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade", "proxy-connection"];

export function wasForwarded(request: Request): boolean {
  return request.headers.has(FORWARDED_BY);
}

/** Send `request` to the same path on `base` (another host's listener) and hand back its answer. */
export async function forward(request: Request, base: string, from: string, timeoutMs: number): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  for (const name of NOT_FORWARDED) headers.delete(name);
  headers.set(FORWARDED_BY, from);
  const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
  let answer: Response;
  try {
    answer = await fetch(new URL(url.pathname + url.search, base), {
      method: request.method,
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new DormantError(
      "partition-unavailable",
      `The host that holds this partition (${base}) did not answer (${(error as Error).message}); retry in a moment.`,
      {
        cause: error,
      },
    );
  }
  // The body is read whole: fetch has already undone any content encoding, so the reply's framing headers no longer fit it.
  const reply = await answer.arrayBuffer();
  const replyHeaders = new Headers(answer.headers);
  for (const name of [...NOT_FORWARDED, "content-encoding"]) replyHeaders.delete(name);
  return new Response(answer.status === 204 || answer.status === 304 ? null : reply, { status: answer.status, headers: replyHeaders });
}
