// The `task-recorder` example guest: registers whatever tasks it is asked to, remembers
// them in its own memory (so it can re-register them when the host asks), and records
// every event it receives. Tests and operators use it to watch the task service work.
import { cancel, list, register } from "dormant:host/background-tasks@0.1.0";
import { log } from "dormant:host/log@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The tasks this guest wants, by name: its own copy, kept across freezes. */
const wanted = new Map();
const received = [];
const activations = [];
/** Memory kept on purpose (`grow`), to test the host's memory cap. */
const hoard = [];

function reply(status, value) {
  return { status, headers: [["content-type", "application/json"]], body: encoder.encode(JSON.stringify(value)) };
}

function triggerOf(json) {
  if (json.at !== undefined) return { tag: "at", val: json.at };
  if (json.after !== undefined) return { tag: "after", val: json.after };
  if (json.every !== undefined) return { tag: "every", val: json.every };
  if (json.cron !== undefined) return { tag: "cron", val: { expression: json.cron, timezone: json.timezone } };
  return { tag: "push" };
}

/** A WIT task-spec from its JSON form: `{name, every|after|at|cron|push, entry?, payload?, ...}`. */
function specOf(json) {
  return {
    name: json.name,
    trigger: triggerOf(json),
    entry: json.entry ?? "record",
    payload: encoder.encode(json.payload ?? ""),
    priority: json.priority ?? 0,
    outlivePartition: json.outlive ?? false,
    retry: json.retry
      ? { maxAttempts: json.retry.maxAttempts, initialBackoffMs: json.retry.initialBackoffMs, maxBackoffMs: json.retry.maxBackoffMs }
      : undefined,
    misfire: json.misfire,
    whenConstrained: json.whenConstrained,
  };
}

function infoOf(task) {
  return {
    id: task.id,
    name: task.name,
    trigger: task.trigger.tag,
    entry: task.entry,
    priority: task.priority,
    nextFire: task.nextFire ?? null,
    pushUrl: task.pushUrl ?? null,
  };
}

function registerAll(specs) {
  const registered = [];
  for (const json of specs) {
    try {
      registered.push(infoOf(register(specOf(json))));
      wanted.set(json.name, json);
    } catch (error) {
      // A refused registration arrives as an error whose payload is the WIT task-error.
      return reply(400, { error: error.payload ?? String(error), registered });
    }
  }
  return reply(200, { registered });
}

export const lifecycle = {
  onActivate(reason) {
    activations.push(reason);
    if (reason === "fresh") return;
    // Restored or re-provisioned: put back any wanted task the host no longer holds.
    const held = new Set(list().map((task) => task.name));
    const missing = [...wanted.values()].filter((json) => !held.has(json.name));
    for (const json of missing) register(specOf(json));
    if (missing.length > 0) log("info", `re-registered ${missing.length} tasks after ${reason} activation`);
  },
};

export const handler = {
  onTask(event) {
    const text = decoder.decode(event.payload);
    switch (event.entry) {
      case "register":
        return registerAll(JSON.parse(text));
      case "register-then-fail":
        registerAll(JSON.parse(text));
        throw "registered, then failed on purpose";
      case "cancel":
        wanted.delete(text);
        return reply(200, { cancelled: cancel(text) });
      case "list":
        return reply(200, { tasks: list().map(infoOf) });
      case "report":
        return reply(200, { received, activations });
      case "grow": {
        const chunk = new Uint8Array(Number(text));
        chunk.fill(1);
        hoard.push(chunk);
        return reply(200, { held: hoard.reduce((sum, c) => sum + c.length, 0) });
      }
      case "throw":
        throw new TypeError(text);
      case "spin": {
        // Busy work for as many rounds as the payload says (deadline tests).
        let x = 0;
        for (let i = 0; i < Number(text); i++) x = (x * 31 + i) % 1_000_003;
        return reply(200, { x });
      }
      default: {
        // A push to `<push URL>/report` reads the report instead of being recorded.
        if (event.request?.path === "/report") return reply(200, { received, activations });
        // A one-shot that fired is spent: it is no longer wanted.
        const spec = wanted.get(event.taskName);
        if (spec && (spec.at !== undefined || spec.after !== undefined)) wanted.delete(event.taskName);
        received.push({
          name: event.taskName,
          entry: event.entry,
          payload: text,
          scheduledAt: event.scheduledAt,
          firedAt: event.firedAt,
          attempt: event.attempt,
          occurrences: event.occurrences,
          ...(event.request ? { body: decoder.decode(event.request.body) } : {}),
        });
        // `fail:N` fails the first N attempts of each event.
        const failures = text.startsWith("fail:") ? Number(text.slice(5)) : 0;
        if (event.attempt <= failures) throw `attempt ${event.attempt} of ${event.taskName} failed on purpose`;
        // A push gets its own request back, as the guest saw it (`no-reply`: nothing).
        if (event.request && text !== "no-reply") {
          const { method, path, query, headers, body } = event.request;
          return reply(200, { method, path, query, headers, body: decoder.decode(body) });
        }
        return undefined;
      }
    }
  },
};
