// The package's entry (`import { createDormant } from "dormant"`): a host with its push
// routes as a hono app, to mount in an application of one's own, and optionally the
// operator's routes (admin API, status page, metrics) under a prefix, behind the same
// admin door `dormant serve` puts on its admin port. The apps are the ones `serve` listens
// with (src/http/app.ts); only the listening is left to the application.
import { Hono } from "hono";
import { startHost, type Host, type HostEvent, type HostOptions, type ShutdownReport } from "./host.ts";
import { createAdminApp, createPushApp, type HttpOptions } from "./http/app.ts";
import { generateToken, TOKEN_ADVICE, weakTokenReason } from "./http/auth.ts";
import { Activity } from "./observability/activity.ts";
import { structuredLog } from "./observability/log.ts";
import { Metrics } from "./observability/metrics.ts";
import { systemClock } from "./scheduler/clock.ts";

export type { Host, HostEvent, HostOptions, ShutdownReport } from "./host.ts";
export type { HttpOptions } from "./http/app.ts";
export type { LogLevel, PushRequest, Reply, TaskEvent } from "../runtime/index.ts";
export type { TaskRecord, Trigger } from "./tasks/task.ts";
export type { ActivityEntry } from "./observability/activity.ts";
export type { Clock } from "./scheduler/clock.ts";

export interface DormantOptions extends HostOptions {
  /**
   * Mount the operator's routes too: the admin API at `<prefix>/api`, metrics at
   * `<prefix>/metrics`, the status page at `<prefix>/`. They answer only with the token
   * and only to the host names the admin door accepts (localhost, IP addresses and
   * `http.adminHostnames`).
   */
  admin?: {
    /** The admin token (refused when weak, as `serve` refuses it). */
    token: string;
    /** Where the operator's routes go (default `/admin`). */
    prefix?: string;
    /** When set, /metrics also accepts this token. */
    metricsToken?: string;
  };
  http?: Omit<HttpOptions, "adminToken" | "metricsToken">;
  /** Where structured log lines (host and security events) go; default nowhere. */
  log?: (line: string) => void;
}

export interface Dormant {
  readonly host: Host;
  /** Push routes (`/push/<token>`, `/healthz`), and the operator's routes under their prefix when `admin` is given. */
  readonly app: Hono;
  /** Freezes live partitions and stops the host; the report names partitions whose state was not saved. */
  close(): Promise<ShutdownReport>;
}

export async function createDormant(options: DormantOptions = {}): Promise<Dormant> {
  for (const [name, token] of [
    ["admin.token", options.admin?.token],
    ["admin.metricsToken", options.admin?.metricsToken],
  ] as const) {
    const reason = token === undefined ? undefined : weakTokenReason(token);
    if (reason) throw new Error(`${name} is too weak to guard the admin routes: ${reason}. ${TOKEN_ADVICE}`);
  }
  const clock = () => (options.clock ?? systemClock).now();
  const write = options.log ?? (() => undefined);
  const metrics = new Metrics();
  const activity = new Activity(clock);
  const log = structuredLog(write, clock);
  const onEvent = (event: HostEvent) => {
    metrics.observe(event);
    activity.observe(event);
    log(event);
    options.onEvent?.(event);
  };
  const host = await startHost({ ...options, onEvent });
  metrics.watch(host);
  const { admin } = options;
  // The push routes strip the host's secrets from what guests see; without an admin token there is one all the same, never shown.
  const http: HttpOptions = {
    ...options.http,
    adminToken: admin?.token ?? generateToken(),
    ...(admin?.metricsToken ? { metricsToken: admin.metricsToken } : {}),
  };
  const context = { clock, log: (fields: Record<string, unknown>) => write(JSON.stringify({ at: new Date(clock()).toISOString(), ...fields })) };
  const app = new Hono();
  if (admin) app.route(admin.prefix ?? "/admin", createAdminApp(host, metrics, activity, http, context));
  app.route("/", createPushApp(host, metrics, http, context));
  return { host, app, close: () => host.close() };
}
