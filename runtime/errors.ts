// The one error type a user of Dormant meets: a DormantError with a code. The code says
// what kind of failure it is (and so its HTTP status, in src/http/errors.ts); the message
// says what was wrong and what to do. Errors cross the executor thread boundary as plain
// data ({ code, message, details }) and are rebuilt here, so `code` survives the hop.

export type DormantCode =
  // Components and guests
  | "invalid-component"
  | "component-in-use"
  | "engine-cache-write"
  | "guest-build"
  | "guest-trap"
  | "activation-failed"
  | "upgrade-failed"
  | "guest-deadline"
  | "partition-quarantined"
  | "memory-limit"
  | "executor-lost"
  | "partition-not-live"
  | "invalid-reply"
  // Snapshots and storage
  | "snapshot-format"
  | "snapshot-corrupt"
  | "no-usable-snapshot"
  | "snapshot-head-corrupt"
  | "snapshot-too-large"
  | "records-corrupt"
  | "store-config"
  | "store-unavailable"
  | "store-locked"
  | "lease-lost"
  | "invalid-key"
  // A cluster of hosts
  | "cluster-config"
  // Partitions, tasks and delivery
  | "unknown-partition"
  | "name-taken"
  | "invalid-partition-id"
  | "partition-unavailable"
  | "partition-gone"
  | "unknown-component"
  | "unknown-task"
  | "invalid-task-spec"
  | "constrained"
  | "push-deadline"
  // Operators' input
  | "invalid-field"
  | "invalid-settings"
  | "power-file"
  | "client";

export interface DormantErrorOptions extends ErrorOptions {
  /** Plain facts for code that handles the error (a trap's phase, a snapshot's seq); they cross threads. */
  details?: Record<string, unknown>;
}

export class DormantError<C extends DormantCode = DormantCode> extends Error {
  readonly code: C;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, options: DormantErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.name = `DormantError [${code}]`;
  }
}

/** Whether `error` is a DormantError (of one of `codes`, when given). */
export function isDormantError<C extends DormantCode>(error: unknown, ...codes: C[]): error is DormantError<C> {
  return error instanceof DormantError && (codes.length === 0 || codes.includes(error.code as C));
}

/** An error as plain data, to cross a thread boundary. */
export interface ErrorData {
  code?: DormantCode;
  name: string;
  message: string;
  details?: Record<string, unknown>;
}

export function toErrorData(error: unknown): ErrorData {
  if (error instanceof DormantError) return { code: error.code, name: error.name, message: error.message, details: { ...error.details } };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: "Error", message: String(error) };
}

/** Rebuild, on this side, the error the other side reported. */
export function fromErrorData(data: ErrorData): Error {
  if (data.code) return new DormantError(data.code, data.message, data.details ? { details: data.details } : {});
  const error = new Error(data.message);
  error.name = data.name;
  return error;
}
