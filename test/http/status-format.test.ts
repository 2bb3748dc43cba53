// How the status page words triggers, sizes and durations.
import { describe, expect, it } from "vitest";
import { duration, millis, size, triggerText, when } from "../../src/http/status/format.ts";

describe("the status page's wording", () => {
  it("writes triggers as a person reads them", () => {
    expect(triggerText({ tag: "every", val: 300_000 })).toBe("every 5 min");
    expect(triggerText({ tag: "every", val: 5_400_000 })).toBe("every 1 h 30 min");
    expect(triggerText({ tag: "after", val: 250 })).toBe("after 250 ms");
    expect(triggerText({ tag: "cron", val: { expression: "0 9 * * 1-5", timezone: "Europe/Berlin" } })).toBe("cron 0 9 * * 1-5 (Europe/Berlin)");
    expect(triggerText({ tag: "at", val: Date.UTC(2026, 10, 27, 20, 0) })).toBe("at 2026-11-27 20:00");
    expect(triggerText({ tag: "push" })).toBe("on push");
  });

  it("writes sizes in B, KiB and MiB", () => {
    expect([size(0), size(1023), size(1536), size(167 * 1024 + 300), size(25 * 1024 * 1024)]).toEqual(["0 B", "1023 B", "1.5 KiB", "167 KiB", "25 MiB"]);
  });

  it("writes durations in at most two units, measured times to a sensible precision, and times to the minute unless seconds matter", () => {
    expect([duration(0), duration(86_400_000 + 3_600_000 + 1000), duration(61_000)]).toEqual(["0 ms", "1 d 1 h", "1 min 1 s"]);
    expect([millis(0.843), millis(12.34), millis(1626.3)]).toEqual(["0.84 ms", "12.3 ms", "1.6 s"]);
    expect([when(Date.UTC(2026, 10, 27, 20, 0, 5)), when(null)]).toEqual(["2026-11-27 20:00:05", "—"]);
  });
});
