// The events a test host or server emitted, and a way to wait for one.
import type { HostEvent } from "../../src/host.ts";

export interface EventLog {
  readonly events: HostEvent[];
  record(event: HostEvent): void;
  /** The first event (already seen or still to come) that matches. */
  waitFor<E extends HostEvent>(match: (event: HostEvent) => event is E): Promise<E>;
  waitFor(match: (event: HostEvent) => boolean): Promise<HostEvent>;
}

export function eventLog(): EventLog {
  const events: HostEvent[] = [];
  const waiters = new Set<(event: HostEvent) => void>();
  return {
    events,
    record(event) {
      events.push(event);
      for (const waiter of waiters) waiter(event);
    },
    waitFor(match: (event: HostEvent) => boolean): Promise<HostEvent> {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => {
        const waiter = (event: HostEvent) => {
          if (!match(event)) return;
          waiters.delete(waiter);
          resolve(event);
        };
        waiters.add(waiter);
      });
    },
  } as EventLog;
}
