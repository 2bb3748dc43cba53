// Set-up for the security suite: a server with a live `hostile` partition, and a raw
// HTTP/1.1 client that shows exactly which bytes come back on one connection.
import { connect } from "node:net";
import { startTestServer, type TestServer } from "../support/server.ts";

export interface HostileServer extends TestServer {
  /** Push URL of `door` (no credentials asked for). */
  door: string;
  /** Push URL of `door-with-credentials` (WIT receive-credentials). */
  doorWithCredentials: string;
  partition: string;
}

export async function startHostile(options: Parameters<typeof startTestServer>[0] = {}): Promise<HostileServer> {
  const s = await startTestServer(options);
  const partition = await s.deploy("hostile");
  await s.api("POST", `/api/partitions/${partition}/activate`);
  const { body } = await s.api("GET", `/api/tasks?partition=${partition}`);
  const url = (name: string) => `${s.pushUrl}${body.tasks.find((t: { name: string }) => t.name === name).pushUrl}`;
  return { ...s, partition, door: url("door"), doorWithCredentials: url("door-with-credentials") };
}

/** Sign a browser in through the status page's form; returns its cookie (`dormant_session=…`). */
export async function signIn(s: TestServer): Promise<string> {
  const login = await fetch(`${s.adminUrl}/login`, { method: "POST", body: new URLSearchParams({ token: s.adminToken }), redirect: "manual" });
  if (login.status !== 303) throw new Error(`sign-in answered ${login.status}`);
  return login.headers.get("set-cookie")!.split(";")[0]!;
}

/** The lines the server logged, parsed. */
export function logged(s: TestServer): Record<string, unknown>[] {
  return s.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

export interface RawResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/** Write these raw requests on one connection at once (pipelined), and read until the server closes it. */
export function pipeline(url: string, requests: string[]): Promise<Buffer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => socket.write(requests.join("")));
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("end", () => resolve(Buffer.concat(chunks)));
    socket.on("error", reject);
  });
}

/** Split a byte stream into HTTP/1.1 responses the way a strict client or proxy would; throws on anything left over or ambiguous. */
export function parseResponses(raw: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf("\r\n\r\n", at);
    if (end < 0) throw new Error(`bytes after response ${responses.length}: ${JSON.stringify(raw.subarray(at).toString("latin1"))}`);
    const [statusLine, ...lines] = raw.subarray(at, end).toString("latin1").split("\r\n");
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
    if (!status) throw new Error(`not a status line after response ${responses.length}: ${JSON.stringify(statusLine)}`);
    const headers = lines.map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as [string, string];
    });
    const get = (name: string) => headers.filter(([key]) => key === name).map(([, value]) => value);
    at = end + 4;
    const [chunked, length] = [get("transfer-encoding"), get("content-length")];
    if (chunked.length > 0 && length.length > 0) throw new Error("a response with both Transfer-Encoding and Content-Length");
    if (length.length > 1) throw new Error("a response with two Content-Length headers");
    let body: Buffer;
    if (chunked.length > 0) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = raw.indexOf("\r\n", at);
        const size = parseInt(raw.subarray(at, lineEnd).toString("latin1"), 16);
        at = lineEnd + 2;
        if (size === 0) {
          at += 2;
          break;
        }
        parts.push(raw.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const n = length.length > 0 ? Number(length[0]) : 0;
      body = raw.subarray(at, at + n);
      at += n;
    }
    responses.push({ status: Number(status[1]), headers, body: body.toString("latin1") });
  }
  return responses;
}

/** A raw GET (or other) request for a pipelined connection. */
export function rawRequest(url: string, { method = "GET", close = false, headers = {} as Record<string, string> } = {}): string {
  const { host, pathname, search } = new URL(url);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return `${method} ${pathname}${search} HTTP/1.1\r\nhost: ${host}\r\n${extra}${close ? "connection: close\r\n" : ""}content-length: 0\r\n\r\n`;
}
