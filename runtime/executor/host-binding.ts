// The host side of the `partition` world as an executor sees it. The runtime does not
// know what background tasks are: a host module (named when the pool starts) builds a
// fresh binding for every instance, and the per-call state it reads and the effects it
// hands back are opaque data carried between the host and the executor. An instance
// serves one partition at a time; the executor recycles it for another only after
// resetting its whole state (memories, globals) to the component's pristine image.
import type { GuestImports } from "../engine.ts";
import type { LogLevel } from "./protocol.ts";

export interface HostBinding<State = unknown, Effects = unknown> {
  readonly imports: GuestImports;
  /** Tie the binding (and so its instance) to one partition. */
  attach(partition: string): void;
  /**
   * Untie it, between calls, once the executor has reset the instance to its pristine
   * state: only then may the instance serve another partition.
   */
  detach(): void;
  /** Before a guest call: what the imports see during it. */
  begin(state: State, now: number): void;
  /** After a guest call: the effects of its imports, to commit if the call succeeded. */
  end(): Effects;
  /**
   * Begin a call that follows the one just ended within the same request (a wake's first
   * event after `on-activate`): it sees the state that call left, its effects included.
   */
  next(now: number): void;
}

export interface HostSink {
  log(partition: string, level: LogLevel, message: string): void;
}

/** What a host module exports. */
export interface HostModule {
  createHostBinding(sink: HostSink): HostBinding;
}
