// The ring of recent guest log lines: what it keeps, and its three bounds.
import { describe, expect, it } from "vitest";
import { GuestLogs } from "../../src/observability/guest-logs.ts";

const clock = () => 1_800_000_000_000;

describe("guest logs", () => {
  it("keep each partition's lines in order with their level and time, numbered across partitions", () => {
    const logs = new GuestLogs(clock);
    logs.add("p_a", "info", "one");
    logs.add("p_b", "warn", "other");
    logs.add("p_a", "error", "two");
    expect(logs.of("p_a")).toEqual({
      lines: [
        { seq: 1, at: clock(), level: "info", message: "one" },
        { seq: 3, at: clock(), level: "error", message: "two" },
      ],
      dropped: 0,
    });
    expect(logs.of("p_a", 1).lines.map((l) => l.message)).toEqual(["two"]);
    expect(logs.of("p_none")).toEqual({ lines: [], dropped: 0 });
  });

  it("keep the last lines of a partition, counting the ones dropped", () => {
    const logs = new GuestLogs(clock, { linesPerPartition: 3 });
    for (let i = 1; i <= 5; i++) logs.add("p_a", "info", `line ${i}`);
    expect(logs.of("p_a")).toMatchObject({ lines: [{ message: "line 3" }, { message: "line 4" }, { message: "line 5" }], dropped: 2 });
    expect(logs.of("p_a", 0, 2).lines.map((l) => l.message)).toEqual(["line 4", "line 5"]);
  });

  it("keep a partition within its bytes, and cut a long message", () => {
    const logs = new GuestLogs(clock, { bytesPerPartition: 1000, messageChars: 300 });
    for (let i = 0; i < 10; i++) logs.add("p_a", "info", "x".repeat(400));
    const { lines } = logs.of("p_a");
    expect(lines.length).toBe(2); // 2 × (300 + a note + overhead) fits in 1000, 3 do not
    expect(lines[0]!.message).toBe(`${"x".repeat(300)}… (100 more characters)`);
    expect(logs.bytes).toBeLessThanOrEqual(1000);
  });

  it("stay within the host's bytes by dropping the oldest lines of the partition written to least recently", () => {
    const logs = new GuestLogs(clock, { hostBytes: 600 }); // four lines of 100 characters fit
    const line = (c: string) => c.repeat(100);
    logs.add("p_quiet", "info", line("1"));
    logs.add("p_quiet", "info", line("2"));
    logs.add("p_busy", "info", line("a"));
    logs.add("p_busy", "info", line("b"));
    logs.add("p_busy", "info", line("c"));
    expect(logs.of("p_quiet").lines.map((l) => l.message)).toEqual([line("2")]);
    logs.add("p_busy", "info", line("d"));
    expect(logs.of("p_quiet").lines).toEqual([]);
    logs.add("p_busy", "info", line("e"));
    expect(logs.of("p_busy").lines.map((l) => l.message)).toEqual([line("b"), line("c"), line("d"), line("e")]);
    expect(logs.bytes).toBeLessThanOrEqual(600);
  });

  it("forget a partition's lines and their bytes", () => {
    const logs = new GuestLogs(clock);
    logs.add("p_a", "info", "one");
    logs.forget("p_a");
    expect(logs.of("p_a").lines).toEqual([]);
    expect(logs.bytes).toBe(0);
  });
});
