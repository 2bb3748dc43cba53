// A `dormant serve` on two loopback ports (push and admin) with a fake clock, and helpers
// to call it.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, inject } from "vitest";
import { generateToken } from "../../src/http/auth.ts";
import { FakeClock } from "../../src/scheduler/clock.ts";
import { startServer, type Server, type ServeOptions } from "../../src/serve/server.ts";
import { eventLog, type EventLog } from "./events.ts";
import { guestFile, type GuestChoice } from "./guests.ts";
import { driveTo, nowOf, SHARED_ENGINE_CACHE } from "./host.ts";

export interface TestServer extends Server, Pick<EventLog, "events" | "waitFor"> {
  now: { value: number };
  logLines: string[];
  /** Call the admin API with the admin token. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Upload an example guest (on the chosen JS engine) and create a partition of it; returns the partition id. */
  deploy(guest: "counter" | "recorder" | "hostile", name?: string, choice?: GuestChoice): Promise<string>;
  tick(at: number): Promise<void>;
}

export async function startTestServer(options: ServeOptions = {}): Promise<TestServer> {
  const clock = new FakeClock(1_800_000_000_000);
  const log = eventLog();
  const logLines: string[] = [];
  const server = await startServer({
    dataDir: await mkdtemp(join(tmpdir(), "dormant-serve-")),
    engineCacheDir: SHARED_ENGINE_CACHE,
    executors: 2,
    port: 0,
    adminPort: 0,
    adminToken: generateToken(),
    clock,
    log: (line) => logLines.push(line),
    onEvent: log.record,
    ...options,
  });
  const api = async (method: string, path: string, body?: unknown) => {
    const raw = body instanceof Uint8Array;
    const response = await fetch(`${server.adminUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.adminToken}`,
        ...(body === undefined ? {} : { "content-type": raw ? "application/wasm" : "application/json" }),
      },
      ...(body === undefined ? {} : { body: raw ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    ...server,
    now: nowOf(clock),
    events: log.events,
    waitFor: log.waitFor,
    logLines,
    api,
    async deploy(guest: "counter" | "recorder" | "hostile", name: string = guest, choice?: GuestChoice) {
      const file = guest === "hostile" ? inject("guests").hostile : guestFile(guest, choice);
      const component = await api("POST", "/api/components", new Uint8Array(await readFile(file)));
      const partition = await api("POST", "/api/partitions", { name, component: component.body.digest, activate: false });
      if (partition.status !== 201) throw new Error(JSON.stringify(partition.body));
      return partition.body.id as string;
    },
    tick: (at: number) => driveTo(clock, server.host, at),
  };
}

/** The servers a test file starts, each closed after its test. */
export function testServers(): (options?: ServeOptions) => Promise<TestServer> {
  const open: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });
  return async (options = {}) => {
    const s = await startTestServer(options);
    open.push(s);
    return s;
  };
}

/** A live QuickJS counter's push URL (a component small enough to store quickly even on a full or slow store). */
export async function liveInbox(s: TestServer): Promise<string> {
  const id = await s.deploy("counter", "counter", { engine: "quickjs" });
  await s.api("POST", `/api/partitions/${id}/activate`);
  const { body } = await s.api("GET", `/api/tasks?partition=${id}`);
  return `${s.pushUrl}${body.tasks.find((t: { name: string }) => t.name === "inbox").pushUrl}`;
}
