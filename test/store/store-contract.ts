/**
 * Behaviour every store backend must share, run once per implementation
 * (in the spirit of unstorage's `testDriver`). Each harness supplies `open`,
 * returning a fresh, empty store whose `close()` also cleans up after itself.
 */
import type { DormantError } from "../../runtime/index.ts";
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Store } from "../../src/store/open.ts";
import { SnapshotStore } from "../../src/store/snapshot-store.ts";

/** Every byte value, runs of zeros, then random bytes. */
export function awkwardBytes(randomLength = 4096): Uint8Array {
  const out = new Uint8Array(256 + 64 + randomLength);
  for (let i = 0; i < 256; i++) out[i] = i;
  // bytes 256..319 stay zero
  out.set(randomBytes(randomLength), 320);
  return out;
}

/** Deterministic content so a test can tell snapshots apart. */
function snapshotBytes(tag: string, size = 3000): Uint8Array {
  const out = new Uint8Array(size);
  const header = new TextEncoder().encode(tag);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + tag.length * 7) & 0xff;
  out.set(header.subarray(0, size));
  return out;
}

function sameBytes(actual: unknown, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  const a = actual as Uint8Array;
  expect(a.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(expected))).toBe(0);
}

export function describeStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let snapshots: SnapshotStore;

    beforeEach(async () => {
      store = await open();
      snapshots = new SnapshotStore(store.snapshots);
    });

    afterEach(async () => {
      await store.close();
    });

    /** Overwrites a stored snapshot blob (in its slot, seq % 3), bypassing SnapshotStore. */
    const damageBlob = (partitionId: string, seq: number, data: Uint8Array) => store.snapshots.setItemRaw(`${partitionId}:blob-${seq % 3}`, data);
    /** Cuts the head slot of the head whose latest is `seq` (slot seq % 2) short, as a crash mid-write would. */
    const tearHead = async (partitionId: string, seq: number) => {
      const key = `${partitionId}:head-${seq % 2}`;
      const whole = (await store.snapshots.getItemRaw(key)) as Uint8Array;
      await store.snapshots.setItemRaw(key, whole.subarray(0, whole.byteLength - 20));
    };

    const putSeveral = async (partitionId: string, count: number): Promise<Uint8Array[]> => {
      const written: Uint8Array[] = [];
      for (let seq = 1; seq <= count; seq++) {
        const data = snapshotBytes(`${partitionId}#${seq}`);
        await snapshots.put(partitionId, data, 1_000 + seq);
        written.push(data);
      }
      return written;
    };

    describe("key-value storage", () => {
      it("round-trips binary values byte for byte, including zero bytes and every byte value", async () => {
        const data = awkwardBytes();
        await store.components.setItemRaw("blob", data);
        sameBytes(await store.components.getItemRaw("blob"), data);
      });

      it("round-trips a binary value that is a view into a larger buffer", async () => {
        const whole = awkwardBytes(100);
        const view = whole.subarray(10, 300);
        await store.components.setItemRaw("view", view);
        sameBytes(await store.components.getItemRaw("view"), view);
      });

      it("round-trips an empty binary value as zero bytes", async () => {
        await store.components.setItemRaw("empty", new Uint8Array(0));
        sameBytes(await store.components.getItemRaw("empty"), new Uint8Array(0));
      });

      it("round-trips JSON values as equal objects", async () => {
        const value = { name: "counter", n: 42, ratio: 0.5, ok: true, nested: { list: [1, "two", null] }, text: "ünï✓" };
        await store.registrations.setItem("reg", value);
        expect(await store.registrations.getItem("reg")).toEqual(value);
      });

      it("reads a missing key as null and reports it absent", async () => {
        expect(await store.partitions.getItem("nope")).toBeNull();
        expect(await store.partitions.getItemRaw("nope")).toBeNull();
        expect(await store.partitions.hasItem("nope")).toBe(false);
      });

      it("removes a key so it reads as null and is no longer listed", async () => {
        await store.partitions.setItem("a", { v: 1 });
        await store.partitions.setItem("b", { v: 2 });
        await store.partitions.removeItem("a");
        expect(await store.partitions.hasItem("a")).toBe(false);
        expect(await store.partitions.getItem("a")).toBeNull();
        expect(await store.partitions.getKeys()).toEqual(["b"]);
      });

      it("lists each mount's keys relative to the mount, including nested keys", async () => {
        await store.registrations.setItem("alpha", 1);
        await store.registrations.setItem("group:beta", 2);
        await store.components.setItem("gamma", 3);
        expect((await store.registrations.getKeys()).sort()).toEqual(["alpha", "group:beta"]);
        expect(await store.components.getKeys()).toEqual(["gamma"]);
        expect(await store.partitions.getKeys()).toEqual([]);
      });

      it("reads every record of a mount at once, or the named ones, as the bytes written", async () => {
        await store.partitions.setItem("p_a", { id: "p_a" });
        const bytes = awkwardBytes(300);
        await store.partitions.setItemRaw("p_b", bytes);
        await store.partitions.setItem("p_ab", { id: "p_ab" });
        await store.registrations.setItem("p_a", [1]);
        const all = await store.partitions.entries();
        expect(all.map(({ key }) => key).sort()).toEqual(["p_a", "p_ab", "p_b"]);
        expect(JSON.parse(all.find(({ key }) => key === "p_a")!.value.toString("utf8"))).toEqual({ id: "p_a" });
        expect(all.find(({ key }) => key === "p_b")!.value.equals(bytes)).toBe(true);
        const some = await store.partitions.entries(["p_ab", "p_missing"]);
        expect(some.map(({ key }) => key)).toEqual(["p_ab"]);
        expect((await store.registrations.entries()).map(({ key }) => key)).toEqual(["p_a"]);
      });

      it("keeps the same key in different mounts independent", async () => {
        await store.registrations.setItem("same", "registration");
        await store.components.setItem("same", "component");
        await store.registrations.removeItem("same");
        expect(await store.registrations.getItem("same")).toBeNull();
        expect(await store.components.getItem("same")).toBe("component");
        expect((await store.root.getKeys()).sort()).toEqual(["components:same", "store-format"]);
      });

      it("isolates two partitions' prefixes even when one id is a prefix of the other", async () => {
        const { prefixStorage } = await import("unstorage");
        const p1 = prefixStorage(store.partitions, "p1");
        const p10 = prefixStorage(store.partitions, "p10");
        await p1.setItem("state", "one");
        await p10.setItem("state", "ten");
        expect(await p1.getItem("state")).toBe("one");
        expect(await p10.getItem("state")).toBe("ten");
        expect(await p1.getKeys()).toEqual(["state"]);
        await p1.removeItem("state");
        expect(await p10.getItem("state")).toBe("ten");
      });
    });

    describe("SnapshotStore", () => {
      it("returns undefined from load and head for a partition never snapshotted", async () => {
        expect(await snapshots.load("fresh")).toBeUndefined();
        expect(await snapshots.head("fresh")).toBeUndefined();
      });

      it("puts a first snapshot as seq 1 with its size, sha256 and takenAt", async () => {
        const data = snapshotBytes("first");
        const ref = await snapshots.put("p1", data, 1234);
        const { createHash } = await import("node:crypto");
        expect(ref).toEqual({
          seq: 1,
          bytes: data.byteLength,
          sha256: createHash("sha256").update(data).digest("hex"),
          takenAt: 1234,
        });
      });

      it("loads the latest snapshot's exact bytes and ref with nothing skipped", async () => {
        const written = await putSeveral("p1", 2);
        const loaded = await snapshots.load("p1");
        expect(loaded?.ref.seq).toBe(2);
        expect(loaded?.skipped).toEqual([]);
        sameBytes(loaded?.data, written[1]!);
      });

      it("loads binary snapshots containing every byte value identically", async () => {
        const data = awkwardBytes(200_000);
        await snapshots.put("bin", data, 1);
        sameBytes((await snapshots.load("bin"))?.data, data);
      });

      it("reports the latest and previous snapshots in head after two puts", async () => {
        await putSeveral("p1", 2);
        const head = await snapshots.head("p1");
        expect(head?.latest.seq).toBe(2);
        expect(head?.previous?.seq).toBe(1);
        expect(head?.latest.takenAt).toBe(1002);
      });

      it("keeps its snapshots in three blob slots and two head slots however many puts it takes", async () => {
        await putSeveral("p1", 7);
        expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:blob-0", "p1:blob-1", "p1:blob-2", "p1:head-0", "p1:head-1"]);
      });

      it("uses the head before a torn newer one, and reports the torn one", async () => {
        const written = await putSeveral("p1", 4);
        await tearHead("p1", 4);
        const loaded = await snapshots.load("p1");
        expect(loaded?.ref.seq).toBe(3);
        sameBytes(loaded?.data, written[2]!);
        expect(loaded?.skipped).toHaveLength(1);
        expect(loaded?.skipped[0]).toMatchObject({ code: "snapshot-head-corrupt", details: { partitionId: "p1", slot: "head-0" } });
        expect(loaded?.skipped[0]?.message).toMatch(
          /slot "head-0" of partition "p1" is unreadable \(its checksum does not match\); the other slot.s head, whose latest snapshot is 3, is used/,
        );
        expect((await snapshots.head("p1"))?.latest.seq).toBe(3);
      });

      it("goes on from the head before a torn one: the next put takes the torn one's seq and slot", async () => {
        await putSeveral("p1", 4);
        await tearHead("p1", 4);
        const again = snapshotBytes("again");
        expect((await snapshots.put("p1", again, 9)).seq).toBe(4);
        const loaded = await snapshots.load("p1");
        expect([loaded?.ref.seq, loaded?.skipped]).toEqual([4, []]);
        sameBytes(loaded?.data, again);
        expect((await snapshots.head("p1"))?.previous?.seq).toBe(3);
      });

      it("refuses as snapshot-head-corrupt when neither head slot verifies", async () => {
        await putSeveral("p1", 2);
        await tearHead("p1", 1);
        await tearHead("p1", 2);
        const error = await snapshots.load("p1").catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "snapshot-head-corrupt", details: { partitionId: "p1" } });
        expect((error as DormantError).message).toMatch(/head-0: its checksum does not match; head-1: its checksum does not match.*delete\("p1"\)/);
        await expect(snapshots.head("p1")).rejects.toMatchObject({ code: "snapshot-head-corrupt" });
      });

      it("refuses as snapshot-head-corrupt a lone head that does not verify: a first head is written whole, so it was damaged", async () => {
        await putSeveral("p1", 1);
        await tearHead("p1", 1);
        await expect(snapshots.load("p1")).rejects.toMatchObject({ code: "snapshot-head-corrupt" });
      });

      it("reads a partition kept in format 1 (one head, blobs by seq) and moves it into slots at its next puts", async () => {
        const [four, five] = [snapshotBytes("four"), snapshotBytes("five")];
        const { createHash } = await import("node:crypto");
        const refOf = (seq: number, data: Uint8Array) => ({
          seq,
          sha256: createHash("sha256").update(data).digest("hex"),
          bytes: data.byteLength,
          takenAt: seq,
        });
        await store.snapshots.setItemRaw("p1:4", four);
        await store.snapshots.setItemRaw("p1:5", five);
        await store.snapshots.setItem("p1:head", { latest: refOf(5, five), previous: refOf(4, four) });

        const loaded = await snapshots.load("p1");
        expect(loaded?.ref).toEqual({ ...refOf(5, five), blob: "5" });
        sameBytes(loaded?.data, five);

        await snapshots.put("p1", snapshotBytes("six"), 6);
        expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:5", "p1:blob-0", "p1:head-0"]);
        const seven = snapshotBytes("seven");
        await snapshots.put("p1", seven, 7);
        expect((await store.snapshots.getKeys("p1")).sort()).toEqual(["p1:blob-0", "p1:blob-1", "p1:head-0", "p1:head-1"]);
        const reloaded = await new SnapshotStore(store.snapshots).load("p1");
        expect(reloaded?.ref).toEqual(refOf(7, seven));
        sameBytes(reloaded?.data, seven);
      });

      it("keeps snapshots of two partitions apart even when one id prefixes the other", async () => {
        const one = snapshotBytes("one");
        const ten = snapshotBytes("ten", 5000);
        await snapshots.put("p1", one, 1);
        await snapshots.put("p10", ten, 2);
        sameBytes((await snapshots.load("p1"))?.data, one);
        sameBytes((await snapshots.load("p10"))?.data, ten);
        await snapshots.delete("p1");
        expect(await snapshots.load("p1")).toBeUndefined();
        sameBytes((await snapshots.load("p10"))?.data, ten);
      });

      it("deletes every snapshot of a partition so the next put starts again at seq 1", async () => {
        await putSeveral("p1", 3);
        await snapshots.delete("p1");
        expect(await store.snapshots.getKeys("p1")).toEqual([]);
        expect(await snapshots.load("p1")).toBeUndefined();
        expect((await snapshots.put("p1", snapshotBytes("again"), 9)).seq).toBe(1);
      });

      it("gives concurrent puts to one partition distinct consecutive seqs", async () => {
        const refs = await Promise.all([1, 2, 3, 4].map((i) => snapshots.put("p1", snapshotBytes(`c${i}`), i)));
        expect(refs.map((r) => r.seq).sort()).toEqual([1, 2, 3, 4]);
        expect((await snapshots.load("p1"))?.ref.seq).toBe(4);
      });

      it("falls back to the previous snapshot when a byte of the latest blob is flipped", async () => {
        const written = await putSeveral("p1", 2);
        const flipped = Uint8Array.from(written[1]!);
        flipped[100]! ^= 0xff;
        await damageBlob("p1", 2, flipped);

        const loaded = await snapshots.load("p1");
        expect(loaded?.ref.seq).toBe(1);
        sameBytes(loaded?.data, written[0]!);
        expect(loaded?.skipped).toHaveLength(1);
        const [problem] = loaded!.skipped;
        expect(problem).toMatchObject({ code: "snapshot-corrupt" });
        expect(problem).toMatchObject({ code: "snapshot-corrupt", details: { partitionId: "p1", seq: 2, problem: "hash mismatch" } });
        expect(problem!.message).toMatch(/Snapshot 2 of partition "p1".*hash mismatch.*previous snapshot \(seq 1\)/);
      });

      it("falls back to the previous snapshot when the latest blob is truncated", async () => {
        const written = await putSeveral("p1", 2);
        await damageBlob("p1", 2, written[1]!.subarray(0, 1000));

        const loaded = await snapshots.load("p1");
        expect(loaded?.ref.seq).toBe(1);
        sameBytes(loaded?.data, written[0]!);
        expect(loaded?.skipped).toHaveLength(1);
        expect(loaded?.skipped[0]).toMatchObject({ code: "snapshot-corrupt", details: { partitionId: "p1", seq: 2, problem: "size mismatch" } });
        expect(loaded?.skipped[0]?.message).toMatch(/p1.*size mismatch.*expected 3000 bytes, found 1000/);
      });

      it("falls back to the previous snapshot when the latest blob is missing", async () => {
        const written = await putSeveral("p1", 2);
        await store.snapshots.removeItem("p1:blob-2");

        const loaded = await snapshots.load("p1");
        expect(loaded?.ref.seq).toBe(1);
        sameBytes(loaded?.data, written[0]!);
        expect(loaded?.skipped[0]).toMatchObject({ code: "snapshot-corrupt", details: { partitionId: "p1", seq: 2, problem: "missing blob" } });
      });

      it("throws no-usable-snapshot naming both problems when latest and previous are corrupt", async () => {
        const written = await putSeveral("p1", 2);
        await damageBlob("p1", 2, written[1]!.subarray(1));
        await store.snapshots.removeItem("p1:blob-1");

        const error = await snapshots.load("p1").catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "no-usable-snapshot" });
        const noUsable = (error as DormantError).details as { partitionId: string; problems: { seq: number; problem: string }[] };
        expect(noUsable.partitionId).toBe("p1");
        expect(noUsable.problems.map((p) => [p.seq, p.problem])).toEqual([
          [2, "size mismatch"],
          [1, "missing blob"],
        ]);
        expect((error as DormantError).message).toMatch(/"p1" has no usable snapshot.*delete\("p1"\)/);
      });

      it("throws no-usable-snapshot when the only snapshot is corrupt", async () => {
        const written = await putSeveral("solo", 1);
        const flipped = Uint8Array.from(written[0]!);
        flipped[0]! ^= 1;
        await damageBlob("solo", 1, flipped);

        const error = await snapshots.load("solo").catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "no-usable-snapshot" });
        expect(((error as DormantError).details.problems as { message: string }[])[0]?.message).toMatch(/start fresh/);
      });

      it("rejects partition ids that are not 1-128 letters, digits, '_' or '-'", async () => {
        for (const bad of ["", "a:b", "../x", "a/b", "x".repeat(129), "sp ace"]) {
          await expect(snapshots.put(bad, new Uint8Array(1), 0)).rejects.toMatchObject({ code: "invalid-partition-id" });
          await expect(snapshots.load(bad)).rejects.toThrow(/Invalid partition id/);
        }
        expect(await store.snapshots.getKeys()).toEqual([]);
      });
    });
  });
}
