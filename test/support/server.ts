// A `dormant serve` on a loopback port with a fake clock, and helpers to call it.
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import type { HostEvent } from "../../src/host.ts";
import { startServer, type Server, type ServeOptions } from "../../src/serve/server.ts";

export interface TestServer extends Server {
  now: { value: number };
  events: HostEvent[];
  logLines: string[];
  /** Call the server with the admin token. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Upload an example guest and create a partition of it; returns the partition id. */
  deploy(guest: "counter" | "recorder", name?: string): Promise<string>;
  waitFor(match: (event: HostEvent) => boolean): Promise<HostEvent>;
  tick(at: number): Promise<void>;
}

export async function startTestServer(options: ServeOptions = {}): Promise<TestServer> {
  const now = { value: 1_800_000_000_000 };
  const events: HostEvent[] = [];
  const logLines: string[] = [];
  const waiters = new Set<(event: HostEvent) => void>();
  const server = await startServer({
    dataDir: await mkdtemp(join(tmpdir(), "dormant-serve-")),
    engineCacheDir: join(tmpdir(), "dormant-test-engine-cache"),
    executors: 2,
    port: 0,
    adminToken: "test-admin-token",
    clock: () => now.value,
    log: (line) => logLines.push(line),
    onEvent: (event) => {
      events.push(event);
      for (const waiter of waiters) waiter(event);
    },
    ...options,
  });
  const api = async (method: string, path: string, body?: unknown) => {
    const raw = body instanceof Uint8Array;
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { "content-type": raw ? "application/wasm" : "application/json" }) },
      ...(body === undefined ? {} : { body: raw ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  return Object.assign(Object.create(null) as object, server, {
    close: () => server.close(),
    now,
    events,
    logLines,
    api,
    async deploy(guest: "counter" | "recorder", name = guest) {
      const component = await api("POST", "/api/components", new Uint8Array(await readFile(inject("guests")[guest])));
      const partition = await api("POST", "/api/partitions", { name, component: component.body.digest });
      if (partition.status !== 201) throw new Error(JSON.stringify(partition.body));
      return partition.body.id as string;
    },
    waitFor(match: (event: HostEvent) => boolean) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise<HostEvent>((resolve) => {
        const waiter = (event: HostEvent) => {
          if (match(event)) waiters.delete(waiter), resolve(event);
        };
        waiters.add(waiter);
      });
    },
    async tick(at: number) {
      now.value = at;
      await server.host.tick(at);
    },
  }) as TestServer;
}
