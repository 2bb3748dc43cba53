// The test kit for guest authors (`import { createTestHost } from "dormant/testing"`): a
// guest runs in-process on a real host (real executors, the fs store in a temporary
// directory) whose clock is a FakeClock the test moves. Time moves through the production
// TimerLoop, pushes through the production push routes, so what a test sees is what a
// deployed guest would do. Framework-free: vitest, node:test or any runner.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { buildComponent, DormantError, PACKAGE_ROOT, type JsEngine, type LogLevel, type Reply } from "../../runtime/index.ts";
import type { HostEvent, HostOptions } from "../host.ts";
import { createDormant, type Dormant } from "../index.ts";
import { Activity, type ActivityEntry } from "../observability/activity.ts";
import type { PartitionState } from "../partitions/partition.ts";
import { FakeClock } from "../scheduler/clock.ts";
import { pushPath, type TaskRecord, type Trigger } from "../tasks/task.ts";

export type { ActivityEntry, HostEvent, JsEngine, LogLevel, PartitionState, Reply, Trigger };

/** How a direct call ended: the guest's reply (none when it returned nothing), or its error. */
export type CallResult = { ok: true; reply: Reply | undefined } | { ok: false; error: string };

export interface TestHostOptions extends Omit<HostOptions, "clock" | "dataDir" | "store" | "onLog" | "onEvent"> {
  /**
   * The guest: a built component (`.wasm` file or its bytes), or a source that the kit
   * builds as `dormant build` does (`.js`, `.mjs`, `.ts`, `.mts`, `.wat`).
   */
  guest: string | Uint8Array;
  /** The JS engine a JS or TS source is built for (default `dormant build`'s). */
  engine?: JsEngine;
  /** The partition's name (default `guest`). */
  name?: string;
  /** Where the fake clock starts (default 2030-01-01T00:00:00Z). */
  start?: Date | number | string;
  /** Activate the partition on creation, as `dormant deploy` does (default true). */
  activate?: boolean;
}

/** A line the guest logged (`console.*` or dormant:host/log), or the host logged about it. */
export interface GuestLog {
  at: Date;
  level: LogLevel;
  message: string;
}

/** A task the guest has registered, as the host holds it. */
export interface RegisteredTask {
  id: string;
  name: string;
  /** Times in milliseconds: `{ tag: "every", val: 60000 }`, `{ tag: "cron", val: { expression, timezone } }`, `{ tag: "push" }`. */
  trigger: Trigger;
  entry: string;
  priority: number;
  /** When it fires next; undefined for push tasks and spent one-shots. */
  nextFire: Date | undefined;
  /** A push task's path (`/push/<token>`), which `fetch` accepts. */
  pushPath: string | undefined;
}

/** An event that failed every attempt. */
export interface DeadLetterView {
  task: string;
  entry: string;
  attempts: number;
  error: string;
  at: Date;
}

/** A push request; the body as a string (sent as UTF-8) or bytes. */
export interface PushInit {
  method?: string;
  /** Path after the push URL (default `/`). */
  path?: string;
  query?: string | Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface TestHost {
  /** The partition's id. */
  readonly partition: string;
  /** The deployed component's digest. */
  readonly component: string;
  /** What the guest logged so far, oldest first. */
  readonly logs: readonly GuestLog[];
  /** Every host event so far (activations, deliveries, freezes, retries…), oldest first. */
  readonly events: readonly HostEvent[];
  /** The host underneath, for what the kit does not wrap. */
  readonly dormant: Dormant;
  /** The fake clock's time. */
  now(): Date;
  /** Move time on (`"90s"`, `"15m"`, `"1h30m"`, `"2d"` or milliseconds), running every timer that comes due on the way, in order. */
  advance(by: string | number): Promise<void>;
  /** Move time to `at` (never backwards), running every timer that comes due on the way, in order. */
  advanceTo(at: Date | number | string): Promise<void>;
  /** Push a request to the named push task and wait for the reply: the guest's, or the host's problem answer (502 when the guest failed). */
  push(task: string, request?: PushInit): Promise<Response>;
  /** Push with `Prefer: respond-async`: resolves with the delivery id once the delivery (and any retry due now) has run. */
  pushAsync(task: string, request?: PushInit): Promise<string>;
  /** Any request to the push routes (`/push/<token>/…`), as a client would send it. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /**
   * Call an entry point of the guest directly, as a task with that entry would (task name
   * and id `direct`), outside the task service: no retries, no dead letters. What the call
   * registers or cancels is kept.
   */
  call(entry: string, payload?: string | Uint8Array): Promise<CallResult>;
  /** Fire a registered task now, outside its schedule, and wait until it ran. */
  fire(task: string): Promise<void>;
  /** The tasks the partition has registered, by name. */
  tasks(): RegisteredTask[];
  /** The partition's recent activity (activations, deliveries, failures), newest first. */
  activity(): ActivityEntry[];
  /** Events that failed every attempt, oldest first. */
  deadLetters(): Promise<DeadLetterView[]>;
  /** `idle` (live, waiting), `active` (handling an event) or `frozen` (in storage). */
  state(): PartitionState;
  /** Snapshot the partition to storage and drop its instance; the next event rehydrates it. */
  freeze(): Promise<void>;
  /** Stop the host and remove its data directory. */
  close(): Promise<void>;
}

const DEFAULT_START = Date.UTC(2030, 0, 1);
/** Shared by every test host on the machine: a 12 MB StarlingMonkey guest is transpiled once. */
const ENGINE_CACHE = join(tmpdir(), "dormant-testing-engine-cache");
const SOURCES = new Set([".js", ".mjs", ".ts", ".mts", ".wat"]);
const ASYNC = { prefer: "respond-async" };

/** A host with one partition running `options.guest`, on a fake clock, in a fresh temporary data directory. */
export async function createTestHost(options: TestHostOptions): Promise<TestHost> {
  const { guest, engine, name = "guest", start, activate = true, ...hostOptions } = options;
  const bytes = await componentOf(guest, engine);
  const clock = new FakeClock(start === undefined ? DEFAULT_START : timeOf(start));
  const dataDir = await mkdtemp(join(tmpdir(), "dormant-test-"));
  const logs: GuestLog[] = [];
  const events: HostEvent[] = [];
  const activity = new Activity(() => clock.now());
  let dormant: Dormant;
  try {
    dormant = await createDormant({
      executors: 1,
      engineCacheDir: ENGINE_CACHE,
      // Checks of the store's identity are for hosts that run for weeks; here they would only add steps to every advance.
      storeCheckMs: 24 * 3600_000,
      ...hostOptions,
      dataDir,
      clock,
      onEvent: (event) => {
        events.push(event);
        activity.observe(event);
      },
      onLog: (_partition, level, message) => logs.push({ at: new Date(clock.now()), level, message }),
    });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const { host, app } = dormant;
  const settle = () => drive(clock, host, clock.now());
  let id: string;
  let component: string;
  try {
    component = (await host.components.add(bytes)).digest;
    id = (await host.partitions.create({ name, component })).id;
    if (activate) {
      await host.partitions.activate(id);
      await settle();
    }
  } catch (error) {
    await dormant.close();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  const taskNamed = (taskName: string): TaskRecord => {
    const task = host.registry.tasksOf(id).find((t) => t.name === taskName);
    if (task) return task;
    const names = host.registry.tasksOf(id).map((t) => t.name);
    throw new DormantError("unknown-task", `The guest has no task named ${JSON.stringify(taskName)}; it has ${names.length ? names.join(", ") : "none"}.`);
  };
  const pushTo = (taskName: string, request: PushInit, extra: Record<string, string> = {}) => {
    const task = taskNamed(taskName);
    if (task.pushToken === undefined)
      throw new DormantError("client", `Task ${JSON.stringify(taskName)} has a ${task.trigger.tag} trigger, not push; use fire().`);
    const query = typeof request.query === "string" ? request.query : new URLSearchParams(request.query ?? {}).toString();
    const path = `${pushPath(task.pushToken)}${request.path && request.path !== "/" ? `/${request.path.replace(/^\//, "")}` : ""}${query ? `?${query}` : ""}`;
    const body = request.body === undefined ? undefined : typeof request.body === "string" ? request.body : new Uint8Array(request.body);
    return fetchPush(path, { method: request.method ?? "POST", headers: { ...request.headers, ...extra }, body });
  };
  const fetchPush = async (path: string, init?: RequestInit) => {
    const response = await app.request(new URL(path, "http://dormant.test"), init);
    await settle();
    return response;
  };
  let closed = false;

  return {
    partition: id,
    component,
    logs,
    events,
    dormant,
    now: () => new Date(clock.now()),
    advance: (by) => drive(clock, host, clock.now() + durationMs(by)),
    advanceTo: (at) => drive(clock, host, timeOf(at)),
    push: async (taskName, request = {}) => pushTo(taskName, request),
    async pushAsync(taskName, request = {}) {
      const response = await pushTo(taskName, request, ASYNC);
      if (response.status !== 202) throw new DormantError("client", `The push was not accepted for delivery: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { delivery: string }).delivery;
    },
    fetch: fetchPush,
    async call(entry, payload = "") {
      const now = BigInt(clock.now());
      const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
      const event = { taskId: "direct", taskName: "direct", entry, payload: bytes, scheduledAt: now, firedAt: now, attempt: 1, occurrences: 1 };
      const outcome = await host.partitions.deliver(id, event);
      await settle();
      return outcome.ok ? { ok: true, reply: outcome.reply } : { ok: false, error: outcome.error };
    },
    async fire(taskName) {
      await host.tasks.fireNow(taskNamed(taskName).id);
      await settle();
    },
    tasks: () =>
      host.registry.tasksOf(id).map((task) => ({
        id: task.id,
        name: task.name,
        trigger: task.trigger,
        entry: task.entry,
        priority: task.priority,
        nextFire: task.nextFire === undefined ? undefined : new Date(task.nextFire),
        pushPath: task.pushToken === undefined ? undefined : pushPath(task.pushToken),
      })),
    activity: () => activity.recent().filter((entry) => entry.partition === id),
    async deadLetters() {
      const letters = (await host.deliveries.deadLetters()).filter((letter) => letter.partition === id);
      return letters
        .sort((a, b) => a.deadAt - b.deadAt)
        .map((letter) => ({ task: letter.taskName, entry: letter.entry, attempts: letter.attempts, error: letter.lastError, at: new Date(letter.deadAt) }));
    },
    state: () => host.partitions.stateOf(id),
    async freeze() {
      await settle();
      await host.partitions.freeze(id);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await dormant.close();
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Move the clock to `to` one due timer at a time, letting the host finish what each one started. */
async function drive(clock: FakeClock, host: Dormant["host"], to: number): Promise<void> {
  for (;;) {
    do {
      await clock.flushed();
      await host.settled();
    } while (clock.pending);
    const next = clock.next;
    if (next === undefined || next > to || clock.now() >= to) break;
    clock.set(next);
  }
  clock.set(to);
  do {
    await clock.flushed();
    await host.settled();
  } while (clock.pending);
}

/** Built components of sources, by path, modification time and engine: a test file builds each guest once. */
const builds = new Map<string, Promise<Uint8Array>>();

async function componentOf(guest: string | Uint8Array, engine: JsEngine | undefined): Promise<Uint8Array> {
  if (typeof guest !== "string") return guest;
  const path = resolve(guest);
  const extension = extname(path);
  if (extension === ".wasm") return new Uint8Array(await readFile(path));
  if (!SOURCES.has(extension)) {
    throw new DormantError("client", `The guest must be a .wasm component or a .js, .mjs, .ts, .mts or .wat source; got ${guest}.`);
  }
  const key = `${path}:${(await stat(path)).mtimeMs}:${engine ?? ""}`;
  let built = builds.get(key);
  if (!built) {
    built = buildComponent(path, { witDir: join(PACKAGE_ROOT, "wit"), engine });
    builds.set(key, built);
    built.catch(() => builds.delete(key));
  }
  return built;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** Milliseconds of `"1h30m"`, `"90s"`, `"2d"`, `"250ms"`, or a number of milliseconds. */
export function durationMs(by: string | number): number {
  if (typeof by === "number") {
    if (!Number.isFinite(by) || by < 0) throw new DormantError("client", `A duration must be a non-negative number of milliseconds; got ${by}.`);
    return by;
  }
  const parts = [...by.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0].replace(/\s+/g, "")).join("") !== by.replace(/\s+/g, "")) {
    throw new DormantError("client", `Cannot read ${JSON.stringify(by)} as a duration; write it like "250ms", "90s", "15m", "1h30m" or "2d".`);
  }
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
}

function timeOf(at: Date | number | string): number {
  const ms = at instanceof Date ? at.getTime() : typeof at === "number" ? at : Date.parse(at);
  if (!Number.isFinite(ms))
    throw new DormantError("client", `Cannot read ${JSON.stringify(at)} as a time; give a Date, Unix milliseconds or an ISO 8601 string.`);
  return ms;
}
