// The `counter` example guest: keeps a count in linear memory across calls and
// freezes, and registers a heartbeat interval when it is activated. It hands its count
// over to a new version (`dormant upgrade`, see guests/counter-v2).
import { register, list } from "dormant:host/background-tasks@0.1.0";
import { log } from "dormant:host/log@0.1.0";

let count = 0;
let activations = 0;
let reminders = 0;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function json(status, value) {
  return {
    status,
    headers: [["content-type", "application/json"]],
    body: encoder.encode(JSON.stringify(value)),
  };
}

export const lifecycle = {
  onActivate(reason) {
    activations += 1;
    log("info", `counter activated (${reason}), count=${count}`);
    if (reason !== "restored" || list().length === 0) {
      register({
        name: "heartbeat",
        trigger: { tag: "every", val: 60_000 },
        entry: "tick",
        payload: new Uint8Array(),
        priority: 10,
        outlivePartition: false,
      });
      register({
        name: "inbox",
        trigger: { tag: "push" },
        entry: "push",
        payload: new Uint8Array(),
        priority: 100,
        outlivePartition: false,
      });
    }
  },
};

export const handler = {
  onTask(event) {
    switch (event.entry) {
      case "tick":
      case "increment": {
        const by = event.payload.length > 0 ? Number(decoder.decode(event.payload)) : 1;
        count += by;
        return undefined;
      }
      case "push": {
        // A push to `<push URL>/remind` with milliseconds as its body asks for a one-shot timer that adds one when it fires.
        if (event.request?.path === "/remind") {
          const name = `remind-${++reminders}`;
          const after = BigInt(decoder.decode(event.request.body));
          register({ name, trigger: { tag: "after", val: after }, entry: "increment", payload: new Uint8Array(), priority: 10, outlivePartition: false });
          return json(200, { count, activations, reminder: name });
        }
        count += 1;
        const body = event.request ? decoder.decode(event.request.body) : "";
        return json(200, { count, activations, echo: body });
      }
      case "get":
        return json(200, { count, activations });
      case "spin": {
        // Busy work for as many rounds as the payload says (tests that the host stays responsive).
        const rounds = Number(decoder.decode(event.payload));
        let x = 0;
        for (let i = 0; i < rounds; i++) x = (x * 31 + i) % 1_000_003;
        return json(200, { x });
      }
      case "register": {
        const spec = JSON.parse(decoder.decode(event.payload));
        // A u64 may be a Number (as the guest receives them) or a BigInt.
        const after = BigInt(spec.after ?? 1000);
        const info = register({ ...spec, trigger: { tag: "after", val: after }, payload: new Uint8Array(), priority: 0, outlivePartition: false });
        return json(200, { id: info.id, names: list().map((task) => task.name) });
      }
      // Throwing returns `err(string)`: a string as it is, an Error as "Name: message".
      case "fail":
        throw `asked to fail at count ${count}`;
      default:
        throw `counter has no entry point named '${event.entry}'`;
    }
  },
};

// Upgrades: the state a next version reads, as JSON with a format name it can check.
export const handover = {
  exportState() {
    return encoder.encode(JSON.stringify({ format: "counter/1", count, activations }));
  },
  importState(bytes) {
    const state = JSON.parse(decoder.decode(bytes));
    if (state.format !== "counter/1") throw new Error(`counter cannot read state of format ${JSON.stringify(state.format)}`);
    count = state.count;
    activations = state.activations;
  },
};
