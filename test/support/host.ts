import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { startHost, type Host, type HostEvent, type HostOptions } from "../../src/host.ts";

export interface TestHost extends Host {
  events: HostEvent[];
  logs: { partition: string; message: string }[];
  dataDir: string;
  now: { value: number };
  deploy(guest: "counter" | "wat" | "recorder"): Promise<string>;
}

/** A host on a fresh data directory, with a fake clock the test moves. */
export async function startTestHost(options: Partial<HostOptions> & { dataDir?: string } = {}): Promise<TestHost> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "dormant-host-")));
  const events: HostEvent[] = [];
  const logs: { partition: string; message: string }[] = [];
  const now = { value: 1_800_000_000_000 };
  const host = await startHost({
    executors: 2,
    clock: () => now.value,
    ...options,
    dataDir,
    onEvent: (event) => events.push(event),
    onLog: (partition, _level, message) => logs.push({ partition, message }),
  });
  const guests = inject("guests");
  return {
    ...host,
    events,
    logs,
    dataDir,
    now,
    async deploy(guest) {
      return (await host.partitions.components.add(await readFile(guests[guest]))).digest;
    },
  };
}
