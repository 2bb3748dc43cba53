// The `counter` example guest: keeps a count in linear memory across calls and
// freezes, and registers a heartbeat interval when it is activated.
import { register, list } from "dormant:host/background-tasks@0.1.0";
import { log } from "dormant:host/log@0.1.0";

let count = 0;
let activations = 0;

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
        trigger: { tag: "every", val: 60_000n },
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
        count += 1;
        const body = event.request ? decoder.decode(event.request.body) : "";
        return json(200, { count, activations, echo: body });
      }
      case "get":
        return json(200, { count, activations });
      case "fail":
        throw new Error(`asked to fail at count ${count}`);
      default:
        throw new Error(`counter has no entry point named '${event.entry}'`);
    }
  },
};
