// Structured logs: one JSON line per delivery (partition, task, how its partition was
// activated, duration, outcome), and one per freeze, failure or budget decision. `at` is
// always the line's own time. A crash while handling an event is one line: the delivery's,
// marked `trap`, since every trap in a call ends that delivery attempt.
import type { HostEvent } from "../events.ts";

export function structuredLog(write: (line: string) => void, clock: () => number = Date.now): (event: HostEvent) => void {
  const activationOf = new Map<string, string>();
  const trapped = new Set<string>();
  const line = (fields: Record<string, unknown>) => write(JSON.stringify({ at: new Date(clock()).toISOString(), ...fields }));
  return (event) => {
    switch (event.type) {
      case "activated":
        activationOf.set(event.partition, event.kind);
        break;
      case "delivered": {
        const activation = activationOf.get(event.partition) ?? "warm";
        activationOf.delete(event.partition);
        line({
          event: "delivery",
          partition: event.partition,
          task: event.name,
          source: event.kind,
          activation,
          attempt: event.attempt,
          ms: Number(event.ms.toFixed(2)),
          ok: event.outcome.ok,
          ...(event.outcome.ok ? {} : { error: event.outcome.error }),
          ...(trapped.delete(event.partition) ? { trap: true } : {}),
        });
        break;
      }
      case "frozen":
        line({ event: "frozen", partition: event.partition, bytes: event.bytes, ms: Number(event.ms.toFixed(2)) });
        break;
      case "checkpointed":
        line({ event: "checkpointed", partition: event.partition, bytes: event.bytes, ms: Number(event.ms.toFixed(2)) });
        break;
      case "trap":
        trapped.add(event.partition);
        break;
      case "snapshot-problem":
      case "freeze-failed":
        line({ event: event.type, partition: event.partition, error: event.error.message });
        break;
      case "activation-failed":
        line({ event: "activation-failed", partition: event.partition, reason: event.reason, error: event.error.message });
        break;
      case "upgraded":
        line({
          event: "upgraded",
          partition: event.partition,
          from: event.from,
          to: event.to,
          handedOver: event.handedOver ?? null,
          ms: Number(event.ms.toFixed(2)),
        });
        break;
      case "upgrade-failed":
        line({ event: "upgrade-failed", partition: event.partition, from: event.from, to: event.to, error: event.error.message });
        break;
      case "error":
        line({ event: "error", ...(event.partition ? { partition: event.partition } : {}), error: event.error.message });
        break;
      case "store-recovered":
        line({ event: "store-recovered", store: event.store, ...(event.detail ? { detail: event.detail } : {}) });
        break;
      case "reregistered":
        line({ event: "reregistered", partition: event.partition });
        break;
      case "retry-scheduled": {
        const { type, at: retryAt, ...rest } = event;
        line({ event: type, ...rest, retryAt: new Date(retryAt).toISOString() });
        break;
      }
      case "shards-acquired":
      case "shards-released":
      case "takeover":
      case "dead-letter-evicted":
      case "component-removed":
      case "engine-cache-evicted":
      case "misfire":
      case "dead-lettered":
      case "postponed":
      case "dropped":
      case "reprovisioned": {
        const { type, ...rest } = event;
        line({ event: type, ...rest });
        break;
      }
    }
  };
}
