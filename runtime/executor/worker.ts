// An executor: a worker thread that hosts partitions. Guest code only ever runs here,
// so a busy guest never stalls the main thread's timers or HTTP.
import { randomBytes } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import type { CompiledComponent, EngineModule, GuestInstance, PreparedComponent } from "../engine.ts";
import { applySnapshot, capturePristine, encodeSnapshot, resetToPristine, snapshotTag, type Dirty, type PristineImage } from "../snapshot/image.ts";
import type { HostBinding, HostModule, HostSink } from "./host-binding.ts";
import { RunningSlot, absoluteNow } from "./interrupt.ts";
import {
  transferList,
  type ActivateResult,
  type CallResult,
  type CallsResult,
  type Envelope,
  type EventResult,
  type FromWorker,
  type LogLine,
  type Request,
  type Response,
  type SnapshotResult,
  type TaskEvent,
  type UpgradeResult,
  KEPT_PER_POOL,
} from "./protocol.ts";
import { DormantError, isDormantError, toErrorData } from "../errors.ts";

export interface ExecutorData {
  cacheDir: string;
  /** URL of the engine module (see `EngineModule`). */
  engineModule: string;
  /** URL of the host module (see `HostModule`). */
  hostModule: string;
  /** The executor's `RunningSlot`, shared with the pool. */
  running: SharedArrayBuffer;
  /** Its share of the partitions the host keeps live at most (see `release`). */
  liveShare: number;
  /** Idle time after which spares kept for that share go (see `release`). */
  spareTrimMs: number;
}

interface Bound {
  instance: GuestInstance;
  binding: HostBinding;
}

/** A snapshot taken of a live instance: its tag (see `encodeSnapshot`), and the chunks it found differing from pristine. */
interface Taken {
  tag: string;
  dirty: Dirty;
}

/**
 * A spare instance, pristine, or still in the state a partition froze in (see `release`):
 * that partition's next wake restores from the snapshot tagged `kept.tag` and finds it here,
 * ready; another partition gets it only once `kept.dirty` is reset to pristine.
 */
interface Spare extends Bound {
  kept?: Taken & { partition: string };
}

interface Live extends Bound {
  /** The compiled variant's key (digest and memory cap): its pristine image and spare pool. */
  key: string;
  /** The last snapshot taken, while the guest has run nothing since. */
  taken?: Taken;
}

const port = parentPort!;
const data = workerData as ExecutorData;
const running = new RunningSlot(data.running);
/** The partition of the guest request running now, to drop if it is interrupted. */
let runningPartition: string | undefined;
const engine = ((await import(data.engineModule)) as EngineModule).createEngine({ cacheDir: data.cacheDir });
const host = (await import(data.hostModule)) as HostModule;
/**
 * Lines guests log during a request go back with its answer. A request that runs long, or
 * logs much, hands its lines over as they come, and warnings and errors go at once: what a
 * runaway or crashing guest said last is not lost with its executor.
 */
let logs: LogLine[] = [];
let requestStartedAt = 0;
const LOG_HOLD_MS = 50;
const LOG_HOLD_LINES = 256;
const sink: HostSink = {
  log: (partition, level, message) => {
    logs.push({ partition, level, message });
    const urgent = level === "warn" || level === "error";
    if (urgent || logs.length >= LOG_HOLD_LINES || performance.now() - requestStartedAt > LOG_HOLD_MS) flushLogs();
  },
};

/** Hand over the lines logged so far (those a request interrupted mid-way never answered with, too), after the answers before them. */
function flushLogs(): void {
  if (logs.length === 0) return;
  flushResponses();
  port.postMessage({ type: "logs", logs } satisfies FromWorker);
  logs = [];
}

function takeLogs(): { logs?: LogLine[] } {
  if (logs.length === 0) return {};
  const taken = logs;
  logs = [];
  return { logs: taken };
}

const live = new Map<string, Live>();
const pristine = new Map<string, PristineImage>();
const pools = new Map<string, Pool>();

interface Pool {
  spare: Spare[];
  size: number;
  filling: boolean;
}

/** Tags of the snapshots taken here: unique to this executor's life, so no stored snapshot names an instance it does not hold. */
const TAG_PREFIX = randomBytes(8).toString("hex");
let tags = 0;

/**
 * Answers wait while the executor has more requests to run, and go together once it has
 * none (or once the oldest has waited ANSWER_HOLD_MS, so a long request does not hold
 * the short ones before it).
 */
let responses: Response[] = [];
let transfers: Transferable[] = [];
let heldSince = 0;
const ANSWER_HOLD_MS = 1;

function answer(response: Response, transfer: Transferable[] = []): void {
  if (responses.length === 0) heldSince = performance.now();
  responses.push(response);
  transfers.push(...transfer);
}

function flushResponses(): void {
  if (responses.length === 0) return;
  port.postMessage({ type: "responses", responses } satisfies FromWorker, transfers as never);
  responses = [];
  transfers = [];
}

function instantiate(compiled: CompiledComponent): Bound {
  const binding = host.createHostBinding(sink);
  const instance = compiled.instantiate(binding.imports);
  if (!pristine.has(compiled.key)) pristine.set(compiled.key, capturePristine(compiled.digest, instance.state));
  return { instance, binding };
}

// Instantiating is slow (milliseconds for a JS guest): the pool is topped up only once the
// executor has been idle for a moment, so refilling never delays the call that follows
// a wake.
const REFILL_IDLE_MS = 5;
let lastRequestAt = 0;

/** Pools an activation took from, topped up once the executor has answered (a timer set before the answer delayed it). */
const toRefill = new Map<CompiledComponent, number>();

/** Top the component's pool of pristine instances up, while the executor is idle. */
function refill(compiled: CompiledComponent, size: number): void {
  let pool = pools.get(compiled.key);
  if (!pool) pools.set(compiled.key, (pool = { spare: [], size, filling: false }));
  pool.size = size;
  if (pool.filling || pool.spare.length >= size) return;
  pool.filling = true;
  const step = (): void => {
    const idleFor = performance.now() - lastRequestAt;
    if (idleFor < REFILL_IDLE_MS) {
      setTimeout(step, REFILL_IDLE_MS - idleFor);
      return;
    }
    if (pool.spare.length < pool.size) {
      try {
        pool.spare.push(instantiate(compiled));
        flushLogs(); // what a start function logged, outside any request
      } catch {
        pool.filling = false; // the next activation reports the failure
        return;
      }
      setTimeout(step, 0);
    } else {
      pool.filling = false;
    }
  };
  setTimeout(step, REFILL_IDLE_MS);
}

async function activate(request: Extract<Request, { op: "activate" }>): Promise<ActivateResult> {
  const result = await activateOnly(request);
  if (!request.event) return result;
  // The event that woke the partition, in the same request: it sees what on-activate changed,
  // and has a deadline of its own. Its failure is the event's, not the activation's.
  running.next(1);
  const partition = live.get(request.partition)!;
  partition.binding.next(request.now);
  result.first = eventResult(request.partition, partition, request.event, request.memoryLimit);
  return result;
}

async function activateOnly(request: Extract<Request, { op: "activate" }>): Promise<ActivateResult> {
  if (live.has(request.partition)) throw new DormantError("activation-failed", `Partition ${request.partition} is already live in this executor.`);
  const compiling = compile(request.component, request.memoryLimit);
  const compiled = compiling instanceof Promise ? await compiling : compiling;
  const t0 = performance.now();
  const pool = pools.get(compiled.key);
  const tag = pool && request.snapshot ? snapshotTag(request.snapshot) : undefined;
  const kept = pool && tag !== undefined ? takeKept(pool, request.partition, tag) : undefined;
  const spare = kept ?? (pool && takeSpare(pool, pristine.get(compiled.key)!));
  const bound = spare ?? instantiate(compiled);
  if (request.spareInstances > 0) toRefill.set(compiled, request.spareInstances);
  const t1 = performance.now();
  bound.binding.attach(request.partition);
  if (request.snapshot && !kept) applySnapshot(bound.instance.state, pristine.get(compiled.key)!, request.snapshot);
  const t2 = performance.now();
  bound.binding.begin(request.host, request.now);
  let effects: unknown;
  try {
    if (!request.resume) bound.instance.exports.lifecycle.onActivate(request.reason);
    effects = bound.binding.end();
  } catch (error) {
    bound.binding.end();
    if (isGuestError(error)) {
      throw new DormantError("activation-failed", `Partition ${request.partition} refused activation (${request.reason}): ${String(error.payload)}`);
    }
    throw new DormantError("guest-trap", `Partition ${request.partition} trapped in on-activate(${request.reason}): ${messageOf(error)}`, {
      details: { phase: "activate" },
      cause: error,
    });
  }
  checkMemory(request.partition, bound.instance, request.memoryLimit, `on-activate(${request.reason})`);
  live.set(request.partition, { instance: bound.instance, binding: bound.binding, key: compiled.key });
  return {
    source: kept ? "kept" : spare ? "pool" : "instantiated",
    effects,
    timings: { instance: t1 - t0, restore: t2 - t1, activate: performance.now() - t2 },
  };
}

/**
 * Start a partition on a new component version. When both versions export `handover`, the
 * old one is restored from its snapshot (without on-activate) to export its state, which the
 * new one imports; then the new one's on-activate(upgraded) runs. Any failure leaves nothing
 * live here: the old version stays as it is stored.
 */
async function upgrade(request: Extract<Request, { op: "upgrade" }>): Promise<UpgradeResult> {
  const { partition, from } = request;
  if (live.has(partition)) throw new DormantError("upgrade-failed", `Partition ${partition} is live in this executor; freeze it before upgrading.`);
  const [oldCompiled, newCompiled] = await Promise.all([compile(from.component, request.memoryLimit), compile(request.component, request.memoryLimit)]);
  const failed = (step: string, error: unknown): DormantError =>
    new DormantError(
      "upgrade-failed",
      `Upgrading partition ${partition} failed in ${step}: ${isGuestError(error) ? String(error.payload) : messageOf(error)}`,
      {
        details: { step },
        cause: error,
      },
    );
  let next: Bound;
  try {
    next = instantiate(newCompiled);
  } catch (error) {
    throw failed("instantiating the new version", error);
  }
  let state: Uint8Array | undefined;
  if (from.snapshot && next.instance.exports.handover) {
    const old = instantiate(oldCompiled);
    if (old.instance.exports.handover) {
      old.binding.attach(partition);
      try {
        applySnapshot(old.instance.state, pristine.get(oldCompiled.key)!, from.snapshot);
      } catch (error) {
        throw failed("restoring the old version from its snapshot", error);
      }
      old.binding.begin(request.host, request.now);
      try {
        state = old.instance.exports.handover.exportState();
      } catch (error) {
        throw failed("the old version's export-state", error);
      } finally {
        old.binding.end(); // what export-state did to tasks does not count: only the new version's on-activate does
      }
    }
  }
  next.binding.attach(partition);
  next.binding.begin(request.host, request.now);
  let effects: unknown;
  try {
    if (state) {
      try {
        next.instance.exports.handover!.importState(state);
      } catch (error) {
        throw failed("the new version's import-state", error);
      }
    }
    try {
      next.instance.exports.lifecycle.onActivate("upgraded");
    } catch (error) {
      throw failed("the new version's on-activate(upgraded)", error);
    }
  } finally {
    effects = next.binding.end();
  }
  checkMemory(partition, next.instance, request.memoryLimit, "on-activate(upgraded)");
  live.set(partition, { ...next, key: newCompiled.key });
  return { effects, handedOver: state?.length };
}

/** Events in order, each seeing what the one before it left (see `CallsResult`). */
function calls(request: Extract<Request, { op: "calls" }>): CallsResult {
  const partition = liveOrThrow(request.partition);
  const results: CallsResult = [];
  partition.binding.begin(request.host, request.now);
  for (const [index, event] of request.events.entries()) {
    if (index > 0) {
      running.next(index);
      partition.binding.next(request.now);
    }
    const result = eventResult(request.partition, partition, event, request.memoryLimit);
    results.push(result);
    // What follows a failed event must see the host's view without its effects: it goes again.
    if (!result.ok || !result.result.outcome.ok) break;
  }
  return results;
}

/** `handleEvent`, its trap as data. */
function eventResult(id: string, partition: Live, event: TaskEvent, memoryLimit: number): EventResult {
  try {
    return { ok: true, result: handleEvent(id, partition, event, memoryLimit) };
  } catch (error) {
    return { ok: false, error: toErrorData(error) };
  }
}

/** `handler.on-task` on a live partition whose binding has begun the call. */
function handleEvent(id: string, partition: Live, event: TaskEvent, memoryLimit: number): CallResult {
  const t0 = performance.now();
  partition.taken = undefined;
  try {
    const reply = partition.instance.exports.handler.onTask(event);
    const effects = partition.binding.end();
    checkMemory(id, partition.instance, memoryLimit, `task ${event.taskName}`);
    return { outcome: { ok: true, reply }, effects, ms: performance.now() - t0 };
  } catch (error) {
    if (isDormantError(error, "memory-limit")) throw error;
    const effects = partition.binding.end();
    if (isGuestError(error)) {
      const message = memoryHint(String(error.payload), partition.instance, memoryLimit);
      return { outcome: { ok: false, error: message }, effects, ms: performance.now() - t0 };
    }
    // A trap leaves the instance in an unknown state: it is dropped, and the partition
    // comes back from its last snapshot.
    live.delete(id);
    throw new DormantError("guest-trap", `Partition ${id} trapped handling task ${event.taskName}: ${messageOf(error)}`, {
      details: { phase: "call" },
      cause: error,
    });
  }
}

function snapshot(request: Extract<Request, { op: "snapshot" }>): SnapshotResult {
  const partition = liveOrThrow(request.partition);
  const t0 = performance.now();
  const tag = `${TAG_PREFIX}-${++tags}`;
  const { bytes, image, stats, dirty } = encodeSnapshot(partition.instance.state, pristine.get(partition.key)!, tag);
  partition.taken = { tag, dirty };
  return { bytes, image, memoryBytes: stats.memoryBytes, deltaBytes: stats.deltaBytes, ms: performance.now() - t0 };
}

/** Spare instances kept per component, by their memory: many small ones, few large ones. */
const SPARE_BYTES = 64 * 2 ** 20;

/**
 * A partition gives up its instance (frozen or dropped), which becomes a spare for the
 * next activation of any partition of its component, which then skips instantiation.
 * Frozen (the guest has run nothing since its last snapshot), it is kept as it is, one of
 * the KEPT_PER_POOL last: that partition's next wake, restoring from that very snapshot,
 * takes it back and restores nothing, and freezing it reset nothing (a StarlingMonkey
 * counter's restore is 0.5–0.7 ms of a 3 ms wake). Any other activation takes a clean spare first, and a kept one only once
 * it is reset to pristine (see `takeSpare`). One that cannot be reset exactly is discarded.
 *
 * Spares are kept up to SPARE_BYTES, or up to the executor's share of the host's live
 * partitions less those live here, whichever is more: instances never hold more memory than
 * the partitions the operator lets be live at once did. A new instance costs a QuickJS wake
 * about 12 ms of CPU here (instantiating, then the first touch of each page of its memory),
 * a spare almost nothing; after a burst of freezes (an idle host, a shutdown, a handover),
 * the wakes that follow find the instances the freezes gave back. Those beyond SPARE_BYTES
 * go once the executor has been idle for `spareTrimMs`: an idle host gives the memory back.
 */
function release(partition: string): boolean {
  const entry = live.get(partition);
  if (!entry) return false;
  live.delete(partition);
  const image = pristine.get(entry.key)!;
  const pool = pools.get(entry.key);
  const budget = pool ? spareBudget(entry.key, pool) : 0;
  const cap = Math.max(budget, data.liveShare - live.size);
  if (!pool || pool.spare.length >= cap) return true;
  const { instance, binding, taken } = entry;
  if (taken) pool.spare.push({ instance, binding, kept: { ...taken, partition } });
  else if (resetToPristine(instance.state, image)) pool.spare.push({ instance, binding });
  else return true;
  binding.detach();
  if (taken) resetOldestKept(pool, image);
  if (pool.spare.length > budget) trimWhenIdle();
  return true;
}

/**
 * Past KEPT_PER_POOL kept instances, the oldest is reset now: a freeze pays for it, not
 * the wake of another partition that would otherwise find only kept spares (after a host
 * froze everything, say), while the partitions frozen last, the likeliest to wake next,
 * keep theirs.
 */
function resetOldestKept(pool: Pool, image: PristineImage): void {
  if (pool.spare.filter((spare) => spare.kept).length <= KEPT_PER_POOL) return;
  const at = pool.spare.findIndex((spare) => spare.kept);
  const reset = pristineAgain(pool.spare[at]!, image);
  if (reset) pool.spare[at] = reset;
  else pool.spare.splice(at, 1);
}

/** A kept spare reset to pristine (only its partition's dirty chunks are copied back); undefined when it cannot be exactly. */
function pristineAgain({ instance, binding, kept }: Spare, image: PristineImage): Spare | undefined {
  return resetToPristine(instance.state, image, kept!.dirty) ? { instance, binding } : undefined;
}

/** The instance `partition` froze in, kept as it was when the snapshot tagged `tag` was taken (see `release`). */
function takeKept(pool: Pool, partition: string, tag: string): Spare | undefined {
  const at = pool.spare.findIndex(({ kept }) => kept?.partition === partition && kept.tag === tag);
  return at < 0 ? undefined : pool.spare.splice(at, 1)[0];
}

/** A pristine spare: a clean one if there is one, else a kept one reset to pristine (those that cannot be are discarded). */
function takeSpare(pool: Pool, image: PristineImage): Spare | undefined {
  for (let at = pool.spare.length - 1; at >= 0; at--) if (!pool.spare[at]!.kept) return pool.spare.splice(at, 1)[0];
  for (let spare = pool.spare.pop(); spare; spare = pool.spare.pop()) {
    const reset = pristineAgain(spare, image);
    if (reset) return reset;
  }
  return undefined;
}

/** Spares a component keeps however idle the executor: its `spareInstances`, or SPARE_BYTES of them. */
function spareBudget(key: string, pool: { size: number }): number {
  const bytes = pristine.get(key)!.memories.reduce((sum, memory) => sum + memory.length, 0);
  return Math.max(pool.size, Math.floor(SPARE_BYTES / Math.max(bytes, 1)));
}

let trimming: NodeJS.Timeout | undefined;

/** Once the executor has been idle for `spareTrimMs`, let the spares beyond each budget go. */
function trimWhenIdle(): void {
  if (trimming) return;
  const check = (): void => {
    const idleFor = performance.now() - lastRequestAt;
    if (idleFor < data.spareTrimMs) {
      trimming = setTimeout(check, data.spareTrimMs - idleFor);
      return;
    }
    trimming = undefined;
    for (const [key, pool] of pools) pool.spare.splice(spareBudget(key, pool));
  };
  trimming = setTimeout(check, data.spareTrimMs);
}

/**
 * After a call: a partition over its memory cap loses the call and its instance (the
 * memory cannot shrink), and comes back from its last snapshot.
 */
function checkMemory(partition: string, instance: GuestInstance, limit: number, what: string): void {
  const used = instance.state.memories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0);
  if (used <= limit) return;
  live.delete(partition);
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  throw new DormantError(
    "memory-limit",
    `Partition ${partition} grew its linear memory to ${mib(used)} in ${what}, over its ${mib(limit)} cap; ` +
      `the call failed and the partition comes back from its last snapshot. Raise the partition's memory limit if it needs more.`,
  );
}

/** A guest that ran out of memory hit its cap (each memory's maximum): say so, and what to do. */
function memoryHint(message: string, instance: GuestInstance, limit: number): string {
  if (!/out of memory/i.test(message)) return message;
  const used = instance.state.memories.reduce((sum, memory) => sum + memory.buffer.byteLength, 0);
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${message} (its linear memory holds ${mib(used)} of its ${mib(limit)} cap; raise the partition's memory limit if it needs more)`;
}

function liveOrThrow(partition: string): Live {
  const found = live.get(partition);
  if (!found) throw new DormantError("partition-not-live", `Partition ${partition} is not live in this executor; activate it first.`);
  return found;
}

/** Components compiled here, by digest and memory cap: found again without waiting a turn (a wake compiles before its deadline starts, then activates). */
const compiledHere = new Map<string, CompiledComponent>();

function compile(component: PreparedComponent, memoryLimit: number): CompiledComponent | Promise<CompiledComponent> {
  const key = `${component.digest}@${memoryLimit}`;
  return (
    compiledHere.get(key) ??
    engine.compile(component, { maxMemoryBytes: memoryLimit }).then((compiled) => {
      compiledHere.set(key, compiled);
      return compiled;
    })
  );
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case "prepare":
      return engine.prepare(request.bytes);
    case "activate":
      return activate(request);
    case "upgrade":
      return upgrade(request);
    case "compile":
      await compile(request.component, request.memoryLimit);
      return undefined;
    case "recover":
      return undefined; // the interrupted request was cleaned up on arrival (see the message handler)
    case "calls":
      return calls(request);
    case "snapshot":
      return snapshot(request);
    case "drop":
      return release(request.partition);
  }
}

/** Requests not yet started, in the order they were sent. */
const inbox: Envelope[] = [];
let pumping = false;

port.on("message", (envelopes: Envelope[]) => {
  // The pool interrupted the previous guest request (it never finished): the interrupt
  // unwound that whole turn, the pump's too. The instance may be half-written, so it is
  // dropped; the partition comes back from its last snapshot. The pool always follows an
  // interrupt with a `recover` request, so the pump starts again here.
  if (running.takeClaimed()) {
    if (runningPartition !== undefined) live.delete(runningPartition);
    pumping = false;
  }
  inbox.push(...envelopes);
  if (!pumping) void pump();
});

/** Run the inbox one request at a time (a guest request must not interleave with another at an await), then answer. */
async function pump(): Promise<void> {
  pumping = true;
  while (inbox.length > 0) {
    if (responses.length > 0 && performance.now() - heldSince > ANSWER_HOLD_MS) flushResponses();
    const envelope = inbox.shift()!;
    // Preparing (transpiling) is long and mostly waits on files: requests behind it go on meanwhile.
    if (envelope.request.op === "prepare") void run(envelope).then(flushResponses);
    else await run(envelope);
  }
  pumping = false;
  flushResponses();
  for (const [compiled, size] of toRefill) refill(compiled, size);
  toRefill.clear();
}

async function run({ id, request }: Envelope): Promise<void> {
  lastRequestAt = requestStartedAt = performance.now();
  flushLogs();
  // A guest request's deadline runs from here (after compiling, the host's work) to its answer.
  let started = false;
  const done = (response: Response, transfer: Transferable[] = []): void => {
    if (started && !running.finish(id)) return awaitInterrupt(runningPartition!);
    answer({ ...response, ...takeLogs() } as Response, transfer);
  };
  try {
    const compiling =
      request.op === "activate"
        ? compile(request.component, request.memoryLimit)
        : request.op === "upgrade"
          ? Promise.all([request.from.component, request.component].map((component) => compile(component, request.memoryLimit)))
          : undefined;
    if (compiling instanceof Promise) await compiling;
    if (request.op === "activate" || request.op === "calls" || request.op === "upgrade") {
      runningPartition = request.partition;
      running.start(id);
      started = true;
    }
    const value = await handle(request);
    const snapshot = request.op === "snapshot" ? (value as SnapshotResult) : undefined;
    done({ id, ok: true, value }, transferList(snapshot?.bytes, snapshot?.image));
  } catch (error) {
    done({ id, ok: false, error: toErrorData(error) });
  }
}

/**
 * The pool claimed this request just as it finished: its interrupt is on the way and must
 * land here, not in the next request. Its result is already answered as a deadline failure,
 * so the instance goes too. Bounded: if no interrupt comes, the pool replaces the executor.
 */
function awaitInterrupt(partition: string): void {
  live.delete(partition);
  const until = absoluteNow() + 5000;
  while (absoluteNow() < until);
  running.takeClaimed();
}

function isGuestError(error: unknown): error is { payload: unknown } {
  return typeof error === "object" && error !== null && Object.hasOwn(error, "payload");
}

/**
 * What a trap says. Guests built by `dormant build` turn an uncaught exception into the
 * call's error, with its message; what still traps is the engine's own failure (stack
 * overflow, out of memory) or a hand-written `unreachable`.
 */
function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!message.includes("unreachable")) return message;
  const hint = "a JS guest built without `dormant build` traps like this on an exception it did not catch, losing its message; rebuild it with `dormant build`";
  return `${message} (${hint})`;
}
