// The snapshot format on real WebAssembly memories and globals, without a guest: what a
// snapshot carries, and that snapshots written by earlier versions still restore.
import { deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { StateView } from "../../runtime/engine.ts";
import { applySnapshot, capturePristine, encodeSnapshot, snapshotTag } from "../../runtime/snapshot/image.ts";

const PAGE = 65536;

/** An instance's state as an engine shows it: one memory (its pristine bytes set by `fill`) and one i64 global. */
function state(fill: (bytes: Uint8Array) => void = () => undefined): StateView {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 8 });
  fill(new Uint8Array(memory.buffer));
  return {
    memories: [memory],
    globals: [{ global: new WebAssembly.Global({ value: "i64", mutable: true }, 0n), type: "i64" }],
    tables: [],
  };
}

/** Pristine content that does not compress (a fixed pseudo-random sequence), like a guest's heap more than zeros. */
const pattern = (bytes: Uint8Array) => {
  let x = 1;
  for (let i = 0; i < bytes.length; i++) bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
};

const bytesOf = (view: StateView) => Buffer.from(new Uint8Array(view.memories[0]!.buffer));

describe("snapshot image", () => {
  it("restores memory the guest changed, grew, and left untouched, and the globals", () => {
    const live = state(pattern);
    const pristine = capturePristine("c1", live);
    const memory = new Uint8Array(live.memories[0]!.buffer);
    memory[5] = 0xaa; // one byte in the first chunk
    memory.fill(7, PAGE + 100, PAGE + 9000); // across chunks
    live.memories[0]!.grow(2);
    new Uint8Array(live.memories[0]!.buffer).fill(9, 3 * PAGE + 10, 3 * PAGE + 20); // past the pristine end
    live.globals[0]!.global.value = 2n ** 40n;

    const { bytes, image, stats } = encodeSnapshot(live, pristine);
    expect(stats).toMatchObject({ memoryBytes: 4 * PAGE, deltaBytes: 5 * 4096 });
    // What is stored, and the uncompressed image a warm wake restores from memory.
    for (const snapshot of [bytes, image]) {
      const restored = state(pattern);
      applySnapshot(restored, pristine, snapshot);
      expect(bytesOf(restored).equals(bytesOf(live))).toBe(true);
      expect(restored.globals[0]!.global.value).toBe(2n ** 40n);
    }
  });

  it("restores any set of changed bytes exactly, from what is stored and from the image", () => {
    // Edits of one byte up to a few thousand: runs of every length, short ones copied word by word and long ones at once.
    const edit = fc.tuple(fc.nat(4 * PAGE - 1), fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4000 })), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 300 }), fc.boolean(), (edits, grow) => {
        const live = state(pattern);
        const pristine = capturePristine("c1", live);
        if (grow) live.memories[0]!.grow(2);
        const memory = new Uint8Array(live.memories[0]!.buffer);
        for (const [offset, length, value] of edits) memory.fill(value, offset, Math.min(offset + length, memory.length));
        const { bytes, image } = encodeSnapshot(live, pristine);
        for (const snapshot of [bytes, image]) {
          const restored = state(pattern);
          applySnapshot(restored, pristine, snapshot);
          expect(bytesOf(restored).equals(bytesOf(live))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("stores a few changed words in a chunk as little more than their size, whatever the chunk held", () => {
    const live = state(pattern);
    const pristine = capturePristine("c1", live);
    const memory = new Uint8Array(live.memories[0]!.buffer);
    for (let chunk = 0; chunk < 32; chunk++) memory[chunk * 4096 + 8]! ^= 1;
    const { bytes, stats } = encodeSnapshot(live, pristine);
    expect(stats.deltaBytes).toBe(32 * 4096);
    // The chunks as they are (128 KiB of noise) would not deflate; their difference from pristine does.
    expect(bytes.length).toBeLessThan(1000);
  });

  it("names the instance it was taken from where a wake reads it at once, and restores all the same", () => {
    const live = state(pattern);
    const pristine = capturePristine("c1", live);
    new Uint8Array(live.memories[0]!.buffer)[100]! ^= 1;
    const tagged = encodeSnapshot(live, pristine, "e1-7");
    expect(snapshotTag(tagged.image)).toBe("e1-7");
    expect(snapshotTag(encodeSnapshot(live, pristine).image)).toBeUndefined();
    const restored = state(pattern);
    applySnapshot(restored, pristine, tagged.image);
    expect(bytesOf(restored).equals(bytesOf(live))).toBe(true);
    // Stored deflated, the tag is not read (a wake from the store restores).
    new Uint8Array(live.memories[0]!.buffer).fill(7, 0, 100_000);
    expect(snapshotTag(encodeSnapshot(live, pristine, "e1-8").bytes)).toBeUndefined();
  });

  it("stores a small snapshot as its image, and deflates a large one", () => {
    const live = state(pattern);
    const pristine = capturePristine("c1", live);
    const memory = new Uint8Array(live.memories[0]!.buffer);
    memory[100]! ^= 1;
    const small = encodeSnapshot(live, pristine);
    expect(small.bytes).toBe(small.image);
    memory.fill(7, 0, 100_000);
    const large = encodeSnapshot(live, pristine);
    expect(large.bytes.length).toBeLessThan(large.image.length / 10);
    const restored = state(pattern);
    applySnapshot(restored, pristine, large.bytes);
    expect(bytesOf(restored).equals(bytesOf(live))).toBe(true);
  });

  for (const [format, encode] of [
    [2, "each changed chunk as it is"],
    [4, "each changed chunk XORed with the pristine one"],
  ] as const) {
    it(`restores a snapshot written by an earlier version (format ${format}: ${encode})`, () => {
      const live = state(pattern);
      const pristine = capturePristine("c1", live);
      new Uint8Array(live.memories[0]!.buffer).fill(3, 70_000, 80_000);
      live.globals[0]!.global.value = 42n;
      const restored = state(pattern);
      applySnapshot(restored, pristine, earlierFormat(format, live, pristine.memories[0]!));
      expect(bytesOf(restored).equals(bytesOf(live))).toBe(true);
      expect(restored.globals[0]!.global.value).toBe(42n);
    });
  }

  it("refuses a damaged snapshot whose runs point outside their chunk, saying it is damaged", () => {
    const live = state(pattern);
    const pristine = capturePristine("c1", live);
    new Uint8Array(live.memories[0]!.buffer)[100]! ^= 1;
    const { image } = encodeSnapshot(live, pristine);
    const damaged = Buffer.from(image);
    // The first run's header (after the chunk's run count) now says 2,000 words from word 0.
    const dataStart = damaged.length - 3 * 4;
    expect(damaged.readInt32LE(dataStart)).toBe(1);
    damaged.writeInt32LE(2000, dataStart + 4);
    expect(() => applySnapshot(state(pattern), pristine, damaged)).toThrow(/damaged: memory 0 chunk 0 has a run outside it/);
  });

  it("refuses a snapshot of another component, saying which", () => {
    const live = state(pattern);
    const { bytes } = encodeSnapshot(live, capturePristine("c1", live));
    expect(() => applySnapshot(state(pattern), capturePristine("c2", state(pattern)), bytes)).toThrow(/component c1, not c2/);
  });
});

/** The state of `live` as format 2 (its changed chunks as they are) or format 4 (XORed with pristine) wrote it, raw-deflated. */
function earlierFormat(format: 2 | 4, live: StateView, base: Buffer): Uint8Array {
  const memory = bytesOf(live);
  const chunks: number[] = [];
  for (let chunk = 0; chunk * 4096 < memory.length; chunk++) {
    if (!memory.subarray(chunk * 4096, (chunk + 1) * 4096).equals(base.subarray(chunk * 4096, (chunk + 1) * 4096))) chunks.push(chunk);
  }
  const data = Buffer.concat(chunks.map((chunk) => Buffer.from(memory.subarray(chunk * 4096, (chunk + 1) * 4096))));
  if (format === 4)
    chunks.forEach((chunk, i) => {
      for (let j = 0; j < 4096; j++) data[i * 4096 + j]! ^= base[chunk * 4096 + j] ?? 0;
    });
  const header = { component: "c1", chunk: 4096, memories: [{ byteLength: memory.length, chunks }], globals: [String(live.globals[0]!.global.value)] };
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(json.length);
  const body = Buffer.concat([prefix, json, data]);
  return Buffer.concat([Buffer.from("DRMS"), Buffer.of(format), deflateRawSync(body, format === 4 ? { windowBits: 13 } : {})]);
}
