// The `counter-v2` example guest: the next version of guests/counter, to show upgrades
// (`dormant upgrade`). It reads the count counter hands over, answers with its version,
// and adds a nightly cron task; the tasks counter registered stay as they were.
import { register, list } from "dormant:host/background-tasks@0.1.0";
import { log } from "dormant:host/log@0.1.0";

let count = 0;
let activations = 0;
/** Every activation reason this version has seen, oldest first. */
const reasons = [];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function json(status, value) {
  return { status, headers: [["content-type", "application/json"]], body: encoder.encode(JSON.stringify(value)) };
}

const task = (name, trigger, entry, priority) => ({ name, trigger, entry, payload: new Uint8Array(), priority, outlivePartition: false });
const TASKS = [
  task("heartbeat", { tag: "every", val: 60_000 }, "tick", 10),
  task("inbox", { tag: "push" }, "push", 100),
  task("nightly", { tag: "cron", val: { expression: "0 3 * * *", timezone: "UTC" } }, "tick", 10),
];

export const lifecycle = {
  onActivate(reason) {
    activations += 1;
    reasons.push(reason);
    log("info", `counter v2 activated (${reason}), count=${count}`);
    // The host keeps tasks across restores and upgrades: register only what is missing.
    const held = new Set(list().map((t) => t.name));
    for (const spec of TASKS) if (!held.has(spec.name)) register(spec);
  },
};

export const handler = {
  onTask(event) {
    if (event.request) {
      // Any push (whatever task it came through) counts and answers.
      count += 1;
      return json(200, { version: 2, count, activations, reasons, echo: decoder.decode(event.request.body) });
    }
    switch (event.entry) {
      case "tick":
      case "increment":
        count += event.payload.length > 0 ? Number(decoder.decode(event.payload)) : 1;
        return undefined;
      case "get":
        return json(200, { version: 2, count, activations, reasons });
      default:
        throw new Error(`counter v2 has no entry point named '${event.entry}'`);
    }
  },
};

// Reads what counter (format counter/1) and counter-v2 (counter/2) hand over.
export const handover = {
  exportState() {
    return encoder.encode(JSON.stringify({ format: "counter/2", count, activations, reasons }));
  },
  importState(bytes) {
    const state = JSON.parse(decoder.decode(bytes));
    if (state.format !== "counter/1" && state.format !== "counter/2") {
      throw new Error(`counter v2 cannot read state of format ${JSON.stringify(state.format)}; it reads counter/1 and counter/2`);
    }
    count = state.count;
    activations = state.activations;
    reasons.push(...(state.reasons ?? []));
  },
};
