// The snapshot format on real WebAssembly memories and globals, without a guest: what a
// snapshot carries, and that snapshots written by earlier versions still restore.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { StateView } from "../../runtime/engine.ts";
import { applySnapshot, capturePristine, encodeSnapshot } from "../../runtime/snapshot/image.ts";

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

  it("restores a snapshot written before the XOR format (format 2: the changed chunks as they are)", () => {
    const live = state(pattern);
    const pristine = capturePristine("c1", live);
    new Uint8Array(live.memories[0]!.buffer).fill(3, 70_000, 80_000);
    live.globals[0]!.global.value = 42n;
    const restored = state(pattern);
    applySnapshot(restored, pristine, asFormat2(encodeSnapshot(live, pristine).bytes, pristine.memories[0]!));
    expect(bytesOf(restored).equals(bytesOf(live))).toBe(true);
    expect(restored.globals[0]!.global.value).toBe(42n);
  });

  it("refuses a snapshot of another component, saying which", () => {
    const live = state(pattern);
    const { bytes } = encodeSnapshot(live, capturePristine("c1", live));
    expect(() => applySnapshot(state(pattern), capturePristine("c2", state(pattern)), bytes)).toThrow(/component c1, not c2/);
  });
});

/** The same snapshot as format 2 wrote it: header, then each changed chunk as it is (not XORed), raw-deflated. */
function asFormat2(bytes: Uint8Array, base: Buffer): Uint8Array {
  const body = inflateRawSync(Buffer.from(bytes).subarray(5));
  const length = body.readUInt32LE(0);
  const header = JSON.parse(body.subarray(4, 4 + length).toString()) as { memories: { chunks: number[] }[] };
  const data = Buffer.from(body.subarray(4 + length));
  header.memories[0]!.chunks.forEach((chunk, i) => {
    for (let j = 0; j < 4096; j++) data[i * 4096 + j]! ^= base[chunk * 4096 + j] ?? 0;
  });
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(json.length);
  return Buffer.concat([Buffer.from("DRMS"), Buffer.of(2), deflateRawSync(Buffer.concat([prefix, json, data]))]);
}
