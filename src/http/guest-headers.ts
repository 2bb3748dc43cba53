// The host owns framing and credentials on the push origin. A guest's reply headers are
// checked against RFC 9110 and never decide how the message is framed; the request a
// guest sees leaves out the host's cookies and, unless its task opted in, the caller's
// credentials.
import type { Header } from "../../wit/types/interfaces/dormant-host-types.d.ts";
import { DormantError } from "../../runtime/index.ts";

/** The host's own cookies: the admin session and the former token cookie, with any cookie prefix. */
export function isHostCookie(name: string): boolean {
  return /^(__host-|__secure-)?dormant/i.test(name.trim());
}

/** RFC 9110 §5.6.2 `token`. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 §5.5 `field-value`: visible ASCII, obs-text, and inner spaces or tabs; no CR, LF or NUL. */
const FIELD_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\x20\x09\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;

/**
 * Hop-by-hop and framing headers: the host's HTTP server sets these from the body it
 * sends. Taking them from a guest would let it frame the next response on a kept-alive
 * connection (response desync).
 */
const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "http2-settings"]);
/** Headers the host always sets on a guest reply; a guest's own copy is dropped. */
const HOST_SET = new Set(["x-content-type-options"]);

const MAX_HEADERS = 100;
const MAX_HEADER_BYTES = 32 * 1024;

export interface ReplyHeaderOptions {
  /** Content-Security-Policy added to every guest reply (default `sandbox`); empty adds none. */
  csp: string;
}

function invalidReply(header: string, message: string): DormantError<"invalid-reply"> {
  return new DormantError("invalid-reply", message, { details: { header } });
}

/** The headers to send for a guest's reply, or an `invalid-reply` error naming the first bad header. */
export function replyHeaders(guest: readonly Header[], options: ReplyHeaderOptions): Headers {
  if (guest.length > MAX_HEADERS) {
    throw invalidReply(`(${guest.length} headers)`, `The reply has ${guest.length} headers; at most ${MAX_HEADERS} are allowed.`);
  }
  let bytes = 0;
  const headers = new Headers();
  for (const [name, value] of guest) {
    bytes += name.length + value.length + 4;
    const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
    if (!TOKEN.test(name)) throw invalidReply(name, `The reply header name ${shown} is not an HTTP token (RFC 9110 §5.6.2).`);
    if (!FIELD_VALUE.test(value)) {
      const why = "control characters such as CR or LF, or characters above U+00FF";
      throw invalidReply(name, `The reply header ${shown} has a value that is not a valid HTTP field value (${why}).`);
    }
    const lower = name.toLowerCase();
    if (FRAMING.has(lower) || lower.startsWith("proxy-") || HOST_SET.has(lower)) continue;
    const cookie = lower === "set-cookie" ? value.split("=", 1)[0]!.trim() : undefined;
    if (cookie !== undefined && isHostCookie(cookie)) {
      throw invalidReply(name, `The reply sets the host's cookie ${JSON.stringify(cookie)}; a guest may not set cookies named dormant*.`);
    }
    headers.append(lower, value);
  }
  if (bytes > MAX_HEADER_BYTES) {
    throw invalidReply("(all headers)", `The reply's headers take ${bytes} bytes; at most ${MAX_HEADER_BYTES} are allowed.`);
  }
  // A guest may add its own policy (every policy sent is enforced), never remove this one.
  if (options.csp) headers.append("content-security-policy", options.csp);
  headers.set("x-content-type-options", "nosniff");
  return headers;
}

export interface RequestHeaderOptions {
  /** The task opted in to `cookie` and `authorization` (WIT `task-spec.receive-credentials`). */
  credentials: boolean;
  /** Bearer secrets of the host (admin and metrics tokens): never handed to a guest. */
  isHostSecret: (token: string) => boolean;
}

/** The request headers a push task sees. */
export function guestRequestHeaders(request: Headers, options: RequestHeaderOptions): Header[] {
  const out: Header[] = [];
  for (const [name, value] of request) {
    if (name === "proxy-authorization") continue;
    if (name === "authorization") {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(value)?.[1];
      if (options.credentials && !(bearer !== undefined && options.isHostSecret(bearer))) out.push([name, value]);
      continue;
    }
    if (name === "cookie") {
      if (!options.credentials) continue;
      const kept = value.split(";").filter((pair) => pair.trim() !== "" && !isHostCookie(pair.split("=", 1)[0]!));
      if (kept.length > 0) out.push([name, kept.map((pair) => pair.trim()).join("; ")]);
      continue;
    }
    out.push([name, value]);
  }
  return out;
}
