import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { startHost, type Host, type HostOptions } from "../../src/host.ts";
import { eventLog, type EventLog } from "./events.ts";
import { guestFile, type Guest, type GuestChoice } from "./guests.ts";

export interface TestHost extends Host, Pick<EventLog, "events" | "waitFor"> {
  logs: { partition: string; message: string }[];
  dataDir: string;
  now: { value: number };
  /** Add an example guest's component (on the chosen JS engine); returns its digest. */
  deploy(guest: Guest, choice?: GuestChoice): Promise<string>;
}

/** Shared by every test host and server: transpiling the 12 MB JS guest once is enough. */
export const SHARED_ENGINE_CACHE = join(tmpdir(), "dormant-test-engine-cache");

/** A host on a fresh data directory, with a fake clock the test moves. */
export async function startTestHost(options: Partial<HostOptions> & { dataDir?: string; startAt?: number } = {}): Promise<TestHost> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "dormant-host-")));
  const log = eventLog();
  const logs: { partition: string; message: string }[] = [];
  const now = { value: options.startAt ?? 1_800_000_000_000 };
  const host = await startHost({
    executors: 2,
    engineCacheDir: SHARED_ENGINE_CACHE,
    clock: () => now.value,
    ...options,
    dataDir,
    onEvent: log.record,
    onLog: (partition, _level, message) => logs.push({ partition, message }),
  });
  return {
    ...host,
    events: log.events,
    waitFor: log.waitFor,
    logs,
    dataDir,
    now,
    /** Move the fake clock to `at` and fire and freeze what is due then. */
    async tick(at: number) {
      now.value = at;
      await host.tick(at);
    },
    async deploy(guest, choice) {
      return (await host.partitions.components.add(await readFile(guestFile(guest, choice)))).digest;
    },
  };
}

type TestHostOptions = Parameters<typeof startTestHost>[0];

/** The hosts a test file starts, each closed after its test. */
export function testHosts() {
  const open = new Set<TestHost>();
  afterEach(async () => {
    await Promise.all([...open].map((h) => h.close()));
    open.clear();
  });
  const start = async (options: TestHostOptions = {}) => {
    const h = await startTestHost(options);
    open.add(h);
    return h;
  };
  return {
    start,
    /** Close a host (as a shutdown would) and start another on its data directory. */
    async restart(h: TestHost, options: TestHostOptions = {}) {
      open.delete(h);
      await h.close();
      return start({ ...options, dataDir: h.dataDir });
    },
  };
}
