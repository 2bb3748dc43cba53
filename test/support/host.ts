import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { startHost, type Host, type HostOptions } from "../../src/host.ts";
import { FakeClock } from "../../src/scheduler/clock.ts";
import { eventLog, type EventLog } from "./events.ts";
import { guestFile, type Guest, type GuestChoice } from "./guests.ts";
import { event } from "./runtime.ts";

export interface TestHost extends Host, Pick<EventLog, "events" | "waitFor"> {
  logs: { partition: string; message: string }[];
  dataDir: string;
  clock: FakeClock;
  /** The fake clock's time; setting it moves the clock (timers due by then fire). */
  now: { value: number };
  /** Move the fake clock to `at` and wait until what came due by then has run. */
  tick(at: number): Promise<void>;
  /** Add an example guest's component (on the chosen JS engine); returns its digest. */
  deploy(guest: Guest, choice?: GuestChoice): Promise<string>;
}

/** Move a fake clock to `at` and wait until the host has done everything that came due. */
export async function driveTo(clock: FakeClock, host: Pick<Host, "settled">, at: number): Promise<void> {
  clock.set(at);
  do {
    await clock.flushed();
    await host.settled();
  } while (clock.pending);
}

export function nowOf(clock: FakeClock): { value: number } {
  return {
    get value() {
      return clock.now();
    },
    set value(at: number) {
      clock.set(at);
    },
  };
}

/** Shared by every test host and server: transpiling the 12 MB JS guest once is enough. */
export const SHARED_ENGINE_CACHE = join(tmpdir(), "dormant-test-engine-cache");

/** A host on a fresh data directory, with a fake clock the test moves. */
export async function startTestHost(options: Partial<HostOptions> & { dataDir?: string; startAt?: number } = {}): Promise<TestHost> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "dormant-host-")));
  const log = eventLog();
  const logs: { partition: string; message: string }[] = [];
  const clock = new FakeClock(options.startAt ?? 1_800_000_000_000);
  const host = await startHost({
    executors: 2,
    engineCacheDir: SHARED_ENGINE_CACHE,
    clock,
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
    clock,
    now: nowOf(clock),
    tick: (at: number) => driveTo(clock, host, at),
    async deploy(guest, choice) {
      return (await host.components.add(await readFile(guestFile(guest, choice)))).digest;
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

/** The host dies: its executors stop without freezing anything, and its store lets the data directory go, as the process's end would. */
export async function crash(h: Pick<Host, "pool" | "store">): Promise<void> {
  await h.pool.close();
  await h.store.close();
}

/** A counter guest's count (its `get` reply), or the error its call answered. */
export async function counterCount(h: Pick<Host, "partitions">, id: string): Promise<number | string> {
  const outcome = await h.partitions.deliver(id, event("get", ""));
  return outcome.ok ? (JSON.parse(new TextDecoder().decode(outcome.reply!.body)) as { count: number }).count : outcome.error;
}
