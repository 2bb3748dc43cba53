// Stopping one runaway guest call without stopping its executor, and knowing which call an
// executor is running, so deadlines count only the guest's own run time.
//
// Node cannot interrupt a worker's JavaScript (or Wasm) from outside short of
// `worker.terminate()`, which loses every other partition's unsaved state in that thread.
// The inspector can: `Runtime.terminateExecution`, sent to the worker's session through the
// main thread's `NodeWorker` domain, stops the JS running there and lets the thread take
// its next message. It costs nothing until used; `vm.runInContext(…, { timeout })` would
// start a watchdog thread on every call (~250 µs; a warm QuickJS call is ~100 µs).
import { Session } from "node:inspector";
import type { Worker } from "node:worker_threads";

/** Absolute milliseconds, comparable across threads (each thread's `performance.now()` has its own origin). */
export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * One executor's "what is running now": written by the executor around each guest
 * request, read by the pool when a deadline check fires. Slot 0 holds the running
 * request's id (0 when none, CLAIMED once the pool has decided to interrupt it), slot 1
 * its phase (which of its guest calls runs: 1 once an activation moved on to the event it
 * carried, n for the (n+1)th event of a `calls` request).
 */
export class RunningSlot {
  static readonly CLAIMED = -1;
  readonly #ids: Int32Array;
  readonly #phase: Int32Array;
  readonly #startedAt: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.#ids = new Int32Array(buffer, 0, 1);
    this.#phase = new Int32Array(buffer, 4, 1);
    this.#startedAt = new Float64Array(buffer, 8, 1);
  }

  /** Executor side: request `id` starts running guest code. */
  start(id: number): void {
    this.#startedAt[0] = absoluteNow();
    Atomics.store(this.#phase, 0, 0);
    Atomics.store(this.#ids, 0, id);
  }

  /** Executor side: the running request moves on to its guest call number `phase` (an activation's event is 1); its deadline counts afresh. */
  next(phase: number): void {
    this.#startedAt[0] = absoluteNow();
    Atomics.store(this.#phase, 0, phase);
  }

  /** Pool side: the running request's phase (see `next`). */
  phase(): number {
    return Atomics.load(this.#phase, 0);
  }

  /** Executor side: request `id` is done. False if the pool claimed it meanwhile: an interrupt is on its way. */
  finish(id: number): boolean {
    return Atomics.compareExchange(this.#ids, 0, id, 0) === id;
  }

  /** Executor side: whether the last guest request was claimed (and so interrupted); resets the slot. */
  takeClaimed(): boolean {
    return Atomics.compareExchange(this.#ids, 0, RunningSlot.CLAIMED, 0) === RunningSlot.CLAIMED;
  }

  /** Pool side: when request `id` started, if it is the one running. */
  startedAt(id: number): number | undefined {
    return Atomics.load(this.#ids, 0) === id ? this.#startedAt[0] : undefined;
  }

  /** Pool side: claim request `id` for interruption; false if it finished first. */
  claim(id: number): boolean {
    return Atomics.compareExchange(this.#ids, 0, id, RunningSlot.CLAIMED) === id;
  }
}

let session: Session | undefined;
let unavailable = false;
/** Inspector session of each attached worker, by thread id. */
const sessions = new Map<number, string>();

/**
 * Attach to every worker thread of this process (once), so `interrupt` can reach them.
 * False where Node was built without the inspector: the pool then falls back to
 * terminating the executor.
 */
export function watchWorkers(): boolean {
  if (session || unavailable) return !unavailable;
  try {
    session = new Session();
    session.connect();
  } catch {
    unavailable = true;
    session = undefined;
    return false;
  }
  // The inspector's `workerId` counts workers in the order they attach, which two workers
  // starting together can swap; the title Node gives a worker names its thread.
  session.on("NodeWorker.attachedToWorker", ({ params }) => {
    const thread = /^\[worker (\d+)\]$/.exec(params.workerInfo.title)?.[1];
    if (thread !== undefined) sessions.set(Number(thread), params.sessionId);
  });
  session.on("NodeWorker.detachedFromWorker", ({ params }) => {
    for (const [thread, id] of sessions) if (id === params.sessionId) sessions.delete(thread);
  });
  session.post("NodeWorker.enable", { waitForDebuggerOnStart: false }, (error) => {
    if (error) unavailable = true;
  });
  return true;
}

/** Whether `worker` can be interrupted (its inspector session is attached). */
export function canInterrupt(worker: Worker): boolean {
  return !unavailable && sessions.has(worker.threadId);
}

/** Stop the JavaScript running in `worker` now (the thread lives on and takes its next message). */
export function interrupt(worker: Worker): boolean {
  const sessionId = sessions.get(worker.threadId);
  if (!session || sessionId === undefined) return false;
  const message = JSON.stringify({ id: 1, method: "Runtime.terminateExecution" });
  session.post("NodeWorker.sendMessageToWorker", { sessionId, message });
  return true;
}
