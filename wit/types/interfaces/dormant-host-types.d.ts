/** @module Interface dormant:host/types@0.1.0 **/
/**
 * A point in time: milliseconds since the Unix epoch (UTC).
 */
export type TimestampMs = bigint;
/**
 * One HTTP header; names are lower-case, a name may repeat.
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
