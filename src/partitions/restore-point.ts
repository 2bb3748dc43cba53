// Where an activation restores a partition from: its latest snapshot that verifies. A
// snapshot that does not verify (or that the engine cannot apply) is reported; with none
// left the partition starts fresh, or is refused when the host is set to refuse.
import { DormantError, isDormantError } from "../../runtime/index.ts";
import type { SnapshotStore } from "../store/snapshot-store.ts";

export class RestorePoints {
  readonly #snapshots: SnapshotStore;
  readonly #onUnusable: "fresh" | "fail";
  readonly #report: (partition: string, error: Error) => void;

  constructor(snapshots: SnapshotStore, onUnusable: "fresh" | "fail", report: (partition: string, error: Error) => void) {
    this.#snapshots = snapshots;
    this.#onUnusable = onUnusable;
    this.#report = report;
  }

  /** The snapshot to restore `partition` from; undefined to start it fresh. */
  async load(partition: string): Promise<Uint8Array | undefined> {
    try {
      const loaded = await this.#snapshots.load(partition);
      for (const problem of loaded?.skipped ?? []) this.#report(partition, problem);
      return loaded?.data;
    } catch (error) {
      if (!isDormantError(error, "no-usable-snapshot")) throw error;
      this.unusable(partition, error);
      return undefined;
    }
  }

  /** No snapshot of `partition` can be used: report it, and refuse a fresh start if the host says so. */
  unusable(partition: string, error: Error): void {
    this.#report(partition, error);
    if (this.#onUnusable === "fail") {
      const message = `Partition ${partition} has no usable snapshot (${error.message}) and the host is set to refuse a fresh start.`;
      throw new DormantError("partition-unavailable", message, { cause: error });
    }
  }
}
