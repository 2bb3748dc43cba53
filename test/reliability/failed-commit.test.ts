// A per-activation event counts only when both its snapshot and its effects (the tasks it
// registered) are stored. When the effects cannot be written, the snapshot already written
// does not become the restore point and the instance is dropped, so the retry starts from
// the state before the event and is applied once.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testHosts } from "../support/host.ts";
import { bodyText, event } from "../support/runtime.ts";

const hosts = testHosts();

describe("a per-activation event whose effects cannot be stored", () => {
  it("leaves the restore point before the event and drops the instance, so its retry is applied once", async () => {
    const h = await hosts.start();
    const component = await h.deploy("counter", { engine: "quickjs" });
    const { id } = await h.partitions.create({ name: "c", component, durability: "per-activation" });
    await h.partitions.deliver(id, event("increment", "1"));
    const before = (await h.snapshots.head(id))!.latest.seq;
    const register = event("register", JSON.stringify({ name: "later", entry: "tick", after: 3_600_000 }));

    // The registrations cannot be written (their folder is a file now); snapshots still can.
    const registrations = join(h.dataDir, "registrations");
    await rm(registrations, { recursive: true, force: true });
    await writeFile(registrations, "not a folder");
    const failed = h.partitions.deliver(id, register);
    await expect(failed).rejects.toMatchObject({ code: "store-unavailable" });
    await expect(failed).rejects.toThrow(/registrations/);
    expect((await h.snapshots.head(id))!.latest.seq).toBe(before);
    expect(h.partitions.stateOf(id)).toBe("frozen");

    await rm(registrations);
    await mkdir(registrations);
    const replyOf = async (e: ReturnType<typeof event>) => {
      const outcome = await h.partitions.deliver(id, e);
      if (!outcome.ok) throw new Error(outcome.error);
      return JSON.parse(bodyText(outcome.reply?.body));
    };
    const retried = await replyOf(register); // the retry
    expect(retried.names.filter((name: string) => name === "later")).toEqual(["later"]);
    expect((await replyOf(event("get"))).count).toBe(1);
  });
});
