// The guest side of the WIT boundary, the same on both JS engines (see README.md).
// __DORMANT_ENGINE__ (the engine's name) and __DORMANT_LACKS__ (what it lacks, with a
// hint each) are defined by `dormant build`.

const MAX_U64_NUMBER = Number.MAX_SAFE_INTEGER;

/** Into the guest: QuickJS hands u64 over as a Number, StarlingMonkey as a BigInt. Guests see Numbers. */
function u64In(value) {
  return typeof value === "bigint" ? Number(value) : value;
}

/** Into the guest: QuickJS gives `none` as null, StarlingMonkey as undefined. Guests see undefined. */
function optionIn(value) {
  return value === null ? undefined : value;
}

/** Out of the guest: QuickJS traps on a BigInt u64 and on a negative one; both engines wrap or trap on junk. */
function u64Out(value, field) {
  const number = typeof value === "bigint" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isInteger(number) || number < 0) {
    throw new TypeError(`${field} must be a whole number ≥ 0 (a Number or a BigInt), not ${describe(value)}.`);
  }
  // Past 2^53 a Number is inexact; such a time is past the year 9999 and the host refuses it anyway.
  return number > MAX_U64_NUMBER ? MAX_U64_NUMBER + 1 : number;
}

function intOut(value, field, max) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TypeError(`${field} must be a whole number from 0 to ${max}, not ${describe(value)}.`);
  }
  return value;
}

function describe(value) {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  return String(value);
}

function triggerIn(trigger) {
  if (trigger.tag === "cron") return { tag: "cron", val: { expression: trigger.val.expression, timezone: optionIn(trigger.val.timezone) } };
  if (trigger.tag === "push") return { tag: "push" };
  return { tag: trigger.tag, val: u64In(trigger.val) };
}

function triggerOut(trigger) {
  if (trigger === null || typeof trigger !== "object") throw new TypeError(`task-spec.trigger must be a { tag, val } object, not ${describe(trigger)}.`);
  if (trigger.tag === "at" || trigger.tag === "after" || trigger.tag === "every") {
    return { tag: trigger.tag, val: u64Out(trigger.val, `task-spec.trigger.val (${trigger.tag})`) };
  }
  return trigger;
}

/** A task-info as the guest sees it. */
export function infoIn(info) {
  return { ...info, trigger: triggerIn(info.trigger), nextFire: u64In(optionIn(info.nextFire)), pushUrl: optionIn(info.pushUrl) };
}

/** A task-spec as the engine can lower it. */
export function specOut(spec) {
  if (spec === null || typeof spec !== "object") throw new TypeError(`register() takes a task-spec object, not ${describe(spec)}.`);
  const out = { ...spec, trigger: triggerOut(spec.trigger), priority: intOut(spec.priority ?? 0, "task-spec.priority", 255) };
  if (spec.retry != null) {
    out.retry = {
      maxAttempts: intOut(spec.retry.maxAttempts, "task-spec.retry.maxAttempts", 0xffffffff),
      initialBackoffMs: u64Out(spec.retry.initialBackoffMs, "task-spec.retry.initialBackoffMs"),
      maxBackoffMs: u64Out(spec.retry.maxBackoffMs, "task-spec.retry.maxBackoffMs"),
    };
  }
  return out;
}

function eventIn(event) {
  return { ...event, scheduledAt: u64In(event.scheduledAt), firedAt: u64In(event.firedAt), request: optionIn(event.request) };
}

function replyOut(reply) {
  if (reply === undefined || reply === null) return undefined;
  if (typeof reply !== "object") throw new TypeError(`on-task must return a reply object or nothing, not ${describe(reply)}.`);
  intOut(reply.status, "reply.status", 0xffff);
  const header = (h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string";
  if (!Array.isArray(reply.headers) || !reply.headers.every(header)) {
    throw new TypeError("reply.headers must be an array of [name, value] string pairs.");
  }
  const body = reply.body;
  if (!(body instanceof Uint8Array) && !Array.isArray(body)) {
    throw new TypeError(`reply.body must be bytes (a Uint8Array), not ${typeof body === "string" ? "a string: encode it with TextEncoder" : describe(body)}.`);
  }
  return reply;
}

/** What a thrown value says, as the call's `err(string)`. */
export function errorText(error) {
  if (typeof error === "string") return error;
  if (error !== null && typeof error === "object" && "payload" in error) {
    // A host import's err the guest did not catch (e.g. a refused registration).
    const payload = error.payload;
    return payload !== null && typeof payload === "object" && "tag" in payload ? `${payload.tag}: ${payload.val}` : String(payload);
  }
  if (error instanceof Error) {
    const text = String(error);
    const missing = error instanceof ReferenceError && /^(\S+) is not defined$/.exec(error.message);
    const hint = missing && Object.hasOwn(__DORMANT_LACKS__, missing[1]) ? __DORMANT_LACKS__[missing[1]] : undefined;
    return hint ? `${text}: ${__DORMANT_ENGINE__} guests do not have ${missing[1]} (${hint})` : text;
  }
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

// An exception the guest did not catch becomes the call's `err`. Left alone, StarlingMonkey
// would trap with a bare `unreachable` and lose the message, and QuickJS would trap on a
// thrown non-Error. The JS heap is consistent after an exception, so the instance lives on.
function guarded(call) {
  try {
    return call();
  } catch (error) {
    throw errorText(error);
  }
}

export function wrapHandler(handler) {
  if (typeof handler?.onTask !== "function") {
    throw new TypeError("The guest must export `handler` with an `onTask(event)` method (see the handler interface in wit/dormant-host.wit).");
  }
  return { onTask: (event) => guarded(() => replyOut(handler.onTask(eventIn(event)))) };
}

export function wrapLifecycle(lifecycle) {
  if (typeof lifecycle?.onActivate !== "function") {
    throw new TypeError("The guest must export `lifecycle` with an `onActivate(reason)` method (see the lifecycle interface in wit/dormant-host.wit).");
  }
  return {
    onActivate: (reason) =>
      guarded(() => {
        lifecycle.onActivate(reason);
      }),
  };
}

/** The optional `handover` export: its state as bytes, out of the old version and into the new one. */
export function wrapHandover(handover) {
  if (typeof handover?.exportState !== "function" || typeof handover?.importState !== "function") {
    throw new TypeError(
      "A guest that exports `handover` must give it `exportState()` (returning bytes) and `importState(bytes)` methods (see the handover interface in wit/dormant-host.wit).",
    );
  }
  return {
    exportState: () =>
      guarded(() => {
        const state = handover.exportState();
        if (!(state instanceof Uint8Array)) {
          throw new TypeError(
            `handover.exportState must return bytes (a Uint8Array), not ${typeof state === "string" ? "a string: encode it with TextEncoder" : describe(state)}.`,
          );
        }
        return state;
      }),
    importState: (state) =>
      guarded(() => {
        handover.importState(state);
      }),
  };
}
