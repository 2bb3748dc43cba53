// The `hello-ts` example guest: a TypeScript guest with a cron task and a push task.
// Its types come from wit/types/guest.d.ts (see tsconfig.json); `dormant build` bundles it.
import { register, type RegistrationError, type TaskSpec } from "dormant:host/background-tasks@0.1.0";
import type { TaskEvent, Reply } from "dormant:host/handler@0.1.0";
import type { ActivationReason } from "dormant:host/lifecycle@0.1.0";
import { log } from "dormant:host/log@0.1.0";

const encoder = new TextEncoder();
let greetings = 0;
let lastMinute: number | undefined;

const tasks: TaskSpec[] = [
  {
    name: "every-minute",
    trigger: { tag: "cron", val: { expression: "* * * * *", timezone: "Europe/Berlin" } },
    entry: "minute",
    payload: new Uint8Array(),
    priority: 10,
    outlivePartition: false,
  },
  { name: "greet", trigger: { tag: "push" }, entry: "greet", payload: new Uint8Array(), priority: 100, outlivePartition: false },
];

function text(status: number, body: string): Reply {
  return { status, headers: [["content-type", "text/plain; charset=utf-8"]], body: encoder.encode(`${body}\n`) };
}

export const lifecycle = {
  onActivate(reason: ActivationReason): void {
    // The host keeps registrations: only a fresh partition makes them.
    if (reason !== "fresh") return;
    for (const spec of tasks) {
      try {
        const info = register(spec);
        log("info", `registered ${info.name}${info.pushUrl ? ` at ${info.pushUrl}` : ""}`);
      } catch (error) {
        // A refused spec: the payload says which field and what to change.
        const { payload } = error as RegistrationError;
        throw new Error(`cannot register ${spec.name}: ${payload.tag}: ${payload.val}`);
      }
    }
  },
};

export const handler = {
  onTask(event: TaskEvent): Reply | undefined {
    if (event.entry === "minute") {
      lastMinute = event.firedAt;
      console.info(`minute at ${event.firedAt} (${event.occurrences} occurrence(s))`);
      return undefined;
    }
    greetings += 1;
    const who = new TextDecoder().decode(event.request?.body ?? new Uint8Array()) || "world";
    const minute = lastMinute === undefined ? "no minute yet" : `last minute at ${lastMinute}`;
    return text(200, `hello, ${who} (greeting #${greetings}; ${minute})`);
  },
};
