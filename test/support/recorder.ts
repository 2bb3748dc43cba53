// Driving the task-recorder guest from tests: direct calls to its entries, and its report.
import type { CallOutcome } from "../../runtime/index.ts";
import type { PartitionSpec } from "../../src/partitions/partition.ts";
import type { GuestChoice } from "./guests.ts";
import type { TestHost } from "./host.ts";
import { event } from "./runtime.ts";

const decoder = new TextDecoder();

export interface Received {
  name: string;
  entry: string;
  payload: string;
  scheduledAt: number;
  firedAt: number;
  attempt: number;
  occurrences: number;
}

/** A partition of the task-recorder guest (on the chosen JS engine). */
export async function recorder(h: TestHost, { engine, ...options }: Partial<PartitionSpec> & GuestChoice = {}): Promise<string> {
  const component = await h.deploy("recorder", { engine });
  return (await h.partitions.create({ name: "recorder", component, ...options })).id;
}

/** Deliver an event straight to an entry of the guest (not through a task). */
export function deliverDirect(h: TestHost, partition: string, entry: string, payload: unknown = ""): Promise<CallOutcome> {
  const now = BigInt(h.now.value);
  return h.partitions.deliver(
    partition,
    event(entry, typeof payload === "string" ? payload : JSON.stringify(payload), { taskId: "direct", scheduledAt: now, firedAt: now }),
  );
}

/** Call an entry of the guest directly and parse its JSON reply. */
export async function call(h: TestHost, partition: string, entry: string, payload: unknown = ""): Promise<{ status: number; body: any }> {
  const outcome = await deliverDirect(h, partition, entry, payload);
  if (!outcome.ok) throw new Error(`${entry} failed: ${outcome.error}`);
  return { status: outcome.reply!.status, body: JSON.parse(decoder.decode(outcome.reply!.body)) };
}

/** Register tasks given in the guest's JSON form; throws when the guest reports a refusal. */
export async function registerTasks(h: TestHost, partition: string, ...specs: object[]): Promise<{ id: string; name: string; nextFire: number | null }[]> {
  const { status, body } = await call(h, partition, "register", specs);
  if (status !== 200) throw new Error(`registration refused: ${JSON.stringify(body.error)}`);
  return body.registered;
}

export async function received(h: TestHost, partition: string): Promise<Received[]> {
  return (await call(h, partition, "report")).body.received;
}

export async function activations(h: TestHost, partition: string): Promise<string[]> {
  return (await call(h, partition, "report")).body.activations;
}
