import { ComponentError, GuestTrapError, NotAComponentError, WrongWorldError, ComponentPrepareError } from "../errors.ts";
import { SnapshotFormatError, SnapshotUnsupportedError } from "../snapshot/image.ts";
import type { ErrorData } from "./protocol.ts";

/** The guest's `on-activate` returned an error, or the partition cannot be activated here. */
export class ActivationFailedError extends Error {
  override name = "ActivationFailedError";
}

/** A call or snapshot named a partition that has no live instance in the executor. */
export class PartitionNotLiveError extends Error {
  override name = "PartitionNotLiveError";
}

/** A guest ran past its CPU deadline; its executor was terminated and replaced. */
export class GuestDeadlineError extends Error {
  override name = "GuestDeadlineError";
}

/** A guest grew its linear memory past the partition's cap; the call failed and its instance was dropped. */
export class MemoryLimitError extends Error {
  override name = "MemoryLimitError";
}

/** An executor died (crashed or was terminated) while it held the request. */
export class ExecutorLostError extends Error {
  override name = "ExecutorLostError";
}

export function serializeError(error: unknown): ErrorData {
  if (error instanceof GuestTrapError) return { name: error.name, message: error.message, phase: error.phase };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: "Error", message: String(error) };
}

const KNOWN: Record<string, new (message: string) => Error> = {
  ComponentError,
  NotAComponentError,
  WrongWorldError,
  ComponentPrepareError,
  SnapshotFormatError,
  SnapshotUnsupportedError,
  ActivationFailedError,
  PartitionNotLiveError,
  MemoryLimitError,
};

/** Rebuild, on the main thread, the typed error an executor reported. */
export function deserializeError(data: ErrorData): Error {
  if (data.name === "GuestTrapError") return new GuestTrapError(data.message, (data.phase ?? "call") as GuestTrapError["phase"]);
  const Type = KNOWN[data.name];
  const error = Type ? new Type(data.message) : new Error(data.message);
  if (!Type) error.name = data.name;
  return error;
}
