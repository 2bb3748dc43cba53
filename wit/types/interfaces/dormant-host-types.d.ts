/** @module Interface dormant:host/types@0.1.0 **/
/**
 * A point in time: milliseconds since the Unix epoch (UTC).
 */
export type TimestampMs = bigint;
/**
 * One HTTP header; names are lower-case, a name may repeat. In a `reply`, names must
 * be HTTP tokens and values HTTP field values (RFC 9110), or the caller gets a `502`
 * naming the header; framing and hop-by-hop headers (`content-length`,
 * `transfer-encoding`, `connection`, `proxy-*`, …) are the host's and are dropped, and
 * a `set-cookie` for one of the host's cookies (names starting `dormant`) is refused.
 */
export type Header = [string, string];
/**
 * An HTTP request delivered to a `push` task.
 */
export interface PushRequest {
  /**
   * Upper-case method, e.g. `POST`.
   */
  method: string,
  /**
   * The path after the push token, starting with `/` (just `/` when there is none).
   */
  path: string,
  /**
   * The raw query string without the leading `?` (empty when there is none).
   */
  query: string,
  /**
   * The request's headers, less `cookie`, `authorization` and `proxy-authorization`
   * unless the task asked for them (`task-spec.receive-credentials`).
   */
  headers: Array<Header>,
  body: Uint8Array,
}
/**
 * The answer to a synchronous push request.
 */
export interface Reply {
  status: number,
  headers: Array<Header>,
  body: Uint8Array,
}
