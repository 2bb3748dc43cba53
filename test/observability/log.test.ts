// The structured log as an operator reads it: `at` is always the line's own time.
import { describe, expect, it } from "vitest";
import { structuredLog } from "../../src/observability/log.ts";

const ref = { task: "t_1", name: "nightly", partition: "p_1" };

describe("structured log", () => {
  it("gives a scheduled retry's due time as retryAt, keeping at for the line's time", () => {
    const lines: string[] = [];
    const log = structuredLog(
      (line) => lines.push(line),
      () => Date.UTC(2030, 0, 1),
    );
    log({ type: "retry-scheduled", delivery: "e_1", attempt: 2, at: Date.UTC(2030, 0, 1, 0, 0, 2), error: "boom", ...ref });
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { at: "2030-01-01T00:00:00.000Z", event: "retry-scheduled", delivery: "e_1", attempt: 2, error: "boom", ...ref, retryAt: "2030-01-01T00:00:02.000Z" },
    ]);
  });
});
