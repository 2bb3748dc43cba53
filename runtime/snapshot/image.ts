// A snapshot of a live instance, stored as the difference from the component's pristine
// (just instantiated) image: only the 4 KiB chunks of linear memory that differ, plus
// every mutable global. Two fresh instances of a component are byte-identical, so
// applying the difference to a fresh instance reproduces the exact state.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { CoreValueType, GlobalCell, StateView, TableView } from "../engine.ts";
import { DormantError } from "../errors.ts";

const MAGIC = Buffer.from("DRMS");
/** Format 2: each changed chunk as it is, raw-deflated (written before format 4; still read). */
const DEFLATED = 2;
/** Format 3: each changed chunk as it is, uncompressed: never stored, the form a warm wake restores from memory (a copy, nothing to inflate). */
const PLAIN = 3;
/**
 * Format 4: each changed chunk XORed with the pristine one, raw-deflated. A guest's heap
 * chunk differs from pristine in a few words (the QuickJS counter's 44 changed chunks: 9%
 * of their words), so the XOR is mostly zeros: 57 KB stored became 10.5 KB, deflated in
 * 0.46 ms instead of 2.4 and inflated in 0.12 instead of 1.4 (Node 20, level 4). Applied to
 * a pristine instance, XORing the chunk in place gives the state back.
 */
const XOR_DEFLATED = 4;
/**
 * Deflate level 4 with an 8 KiB window (two chunks) and small tables: on the XORed counter
 * delta, 10.6 KB in 0.53 ms, inflated in 0.10 ms. zlib's defaults (32 KiB window, 256 KiB
 * of tables) gave 10.5 KB in 0.74 ms, inflated in 0.96: here every call's larger buffers are
 * fresh memory, and a page touched for the first time is dear. Level 1: 11.5 KB in 0.40 ms.
 */
const ZLIB = { level: 4, windowBits: 13, memLevel: 6 } as const;
const CHUNK = 4096;
const PAGE = 65536;

type GlobalValue = number | bigint | "ref" | null;

export interface PristineImage {
  readonly component: string;
  readonly memories: readonly Buffer[];
  readonly globals: readonly GlobalValue[];
}

interface Header {
  component: string;
  chunk: number;
  memories: { byteLength: number; chunks: number[] }[];
  globals: (string | null)[];
}

export interface SnapshotStats {
  /** Bytes of linear memory in the instance. */
  memoryBytes: number;
  /** Bytes of memory that differ from pristine, before compression. */
  deltaBytes: number;
  /** Stored bytes. */
  bytes: number;
}

/** Capture the image of an instance that has just been instantiated and never called. */
export function capturePristine(component: string, view: StateView): PristineImage {
  return {
    component,
    memories: view.memories.map((memory) => Buffer.from(new Uint8Array(memory.buffer).slice())),
    globals: view.globals.map(({ global, type }) => readGlobal(global, type)),
  };
}

/**
 * Encode an instance's state as a delta against its component's pristine image: `bytes` to
 * store (see XOR_DEFLATED), `image` the same snapshot uncompressed (PLAIN), to keep in
 * memory so a warm wake copies chunks in and inflates nothing. Both are accepted by `applySnapshot`.
 */
export function encodeSnapshot(view: StateView, pristine: PristineImage): { bytes: Uint8Array; image: Uint8Array; stats: SnapshotStats; dirty: Dirty } {
  view.tables.forEach(({ table, entries }, i) => {
    if (!tableUnchanged(table, entries)) {
      throw new DormantError(
        "snapshot-format",
        `Table ${i} of component ${pristine.component} changed since instantiation; ` +
          `Dormant cannot snapshot rewritten function tables. Keep the guest from growing or setting tables.`,
      );
    }
  });
  const header: Header = { component: pristine.component, chunk: CHUNK, memories: [], globals: [] };
  let memoryBytes = 0;
  let deltaBytes = 0;
  const currents = view.memories.map((memory, m) => {
    const current = Buffer.from(memory.buffer);
    const base = pristine.memories[m] ?? Buffer.alloc(0);
    const chunks: number[] = [];
    for (let offset = 0; offset < current.length; offset += CHUNK) {
      if (!sameAsBase(current, base, offset, Math.min(offset + CHUNK, current.length))) chunks.push(offset / CHUNK);
    }
    header.memories.push({ byteLength: current.length, chunks });
    memoryBytes += current.length;
    deltaBytes += chunks.length * CHUNK;
    return current;
  });
  header.globals = view.globals.map(({ global, type }, g) => {
    const value = readGlobal(global, type);
    if (value === "ref" || value === null) {
      // References cannot be carried; one the guest set since instantiation would be lost.
      if (value !== pristine.globals[g]) {
        throw new DormantError("snapshot-format", `Global ${g} (${type}) changed since instantiation; a snapshot cannot carry references.`);
      }
      return null;
    }
    return encodeValue(value);
  });
  // One buffer, the image: magic and format, the header's length, the header (padded so the
  // chunks start word-aligned), the chunks. They are XORed in first, to deflate what is stored,
  // then copied in as they are. A buffer made once: fresh memory is dear here (see ZLIB).
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((MAGIC.length + 5 + json.length) % 8)) % 8);
  const image = Buffer.allocUnsafeSlow(MAGIC.length + 5 + json.length + deltaBytes);
  MAGIC.copy(image);
  image[MAGIC.length] = PLAIN;
  image.writeUInt32LE(json.length, MAGIC.length + 1);
  image.write(json, MAGIC.length + 5, "latin1"); // the header is ASCII: digests, numbers
  const dataStart = MAGIC.length + 5 + json.length;
  const eachChunk = (write: (at: number, current: Buffer, base: Buffer, start: number) => void) => {
    let at = dataStart;
    header.memories.forEach(({ chunks }, m) => {
      for (const chunk of chunks) {
        write(at, currents[m]!, pristine.memories[m] ?? Buffer.alloc(0), chunk * CHUNK);
        at += CHUNK;
      }
    });
  };
  eachChunk((at, current, base, start) =>
    xorInto(image.subarray(at, at + CHUNK), current.subarray(start, start + CHUNK), base.subarray(start, Math.min(start + CHUNK, base.length))),
  );
  // Integrity is the store's sha256, so raw deflate (no checksum of its own).
  const bytes = Buffer.concat([MAGIC, Buffer.of(XOR_DEFLATED), deflateRawSync(image.subarray(MAGIC.length + 1), ZLIB)]);
  eachChunk((at, current, _base, start) => current.copy(image, at, start, start + CHUNK));
  return { bytes, image, stats: { memoryBytes, deltaBytes, bytes: bytes.length }, dirty: header.memories.map(({ chunks }) => chunks) };
}

/** target = a XOR b, where b may be shorter (zeros past its end); a word at a time when all three are aligned. */
function xorInto(target: Uint8Array, a: Uint8Array, b: Uint8Array): void {
  const words = b.length >>> 2;
  if (((target.byteOffset | a.byteOffset | b.byteOffset) & 3) === 0) {
    const t = new Int32Array(target.buffer, target.byteOffset, words);
    const x = new Int32Array(a.buffer, a.byteOffset, words);
    const y = new Int32Array(b.buffer, b.byteOffset, words);
    for (let i = 0; i < words; i++) t[i] = x[i]! ^ y[i]!;
  } else {
    for (let i = 0; i < words << 2; i++) target[i] = a[i]! ^ b[i]!;
  }
  for (let i = words << 2; i < b.length; i++) target[i] = a[i]! ^ b[i]!;
  if (b.length < a.length) target.set(a.subarray(b.length), b.length);
}

/** Per memory, the indexes of the chunks that differ from the pristine image. */
export type Dirty = readonly (readonly number[])[];

/** Apply a snapshot to a pristine instance of the same component. */
export function applySnapshot(view: StateView, pristine: PristineImage, bytes: Uint8Array): void {
  const { header, data, xor } = decode(bytes);
  if (header.component !== pristine.component) {
    throw new DormantError("snapshot-format", `The snapshot is of component ${header.component}, not ${pristine.component}.`);
  }
  if (header.memories.length !== view.memories.length || header.globals.length !== view.globals.length) {
    throw new DormantError(
      "snapshot-format",
      `The snapshot has ${header.memories.length} memories and ${header.globals.length} globals; ` +
        `the instance has ${view.memories.length} and ${view.globals.length}.`,
    );
  }
  let offset = 0;
  header.memories.forEach(({ byteLength, chunks }, m) => {
    const memory = view.memories[m]!;
    const have = memory.buffer.byteLength;
    if (byteLength < have || byteLength % PAGE !== 0) {
      throw new DormantError("snapshot-format", `Memory ${m} in the snapshot is ${byteLength} bytes; a fresh instance already has ${have}.`);
    }
    if (byteLength > have) memory.grow((byteLength - have) / PAGE);
    const target = new Uint8Array(memory.buffer);
    for (const chunk of chunks) {
      const start = chunk * header.chunk;
      const length = Math.min(header.chunk, byteLength - start);
      if (start >= byteLength || offset + length > data.length) {
        throw new DormantError("snapshot-format", `Memory ${m} chunk ${chunk} lies outside the snapshot's data; the snapshot is damaged.`);
      }
      const chunkData = data.subarray(offset, offset + length);
      // The instance is pristine, so XORing the stored difference in gives the state.
      if (xor) xorInto(target.subarray(start, start + length), chunkData, target.subarray(start, start + length));
      else target.set(chunkData, start);
      offset += length;
    }
  });
  if (offset !== data.length) throw new DormantError("snapshot-format", "The snapshot has trailing data; it is damaged.");
  header.globals.forEach((encoded, g) => {
    const { global, type } = view.globals[g]!;
    if (encoded !== null) global.value = decodeValue(encoded, type);
  });
}

/**
 * Put an instance back in its component's pristine state, so another partition can use
 * it: every memory chunk that differs is copied back and every global is reset. Returns
 * false, changing nothing, when that cannot be done exactly — a memory grew (memories
 * cannot shrink), a table changed, or a global holds what JS cannot read or write.
 * `dirty`, when the caller knows it (the instance ran nothing since `encodeSnapshot` said
 * so), spares comparing every chunk: only those are copied back.
 */
export function resetToPristine(view: StateView, pristine: PristineImage, dirty?: Dirty): boolean {
  if (view.memories.some((memory, m) => memory.buffer.byteLength !== pristine.memories[m]?.length)) return false;
  if (view.tables.some(({ table, entries }) => !tableUnchanged(table, entries))) return false;
  if (
    view.globals.some(
      ({ global, type }, g) =>
        pristine.globals[g] === null || readGlobal(global, type) === null || (pristine.globals[g] === "ref" && readGlobal(global, type) !== "ref"),
    )
  )
    return false;
  view.memories.forEach((memory, m) => {
    const current = Buffer.from(memory.buffer);
    const base = pristine.memories[m]!;
    if (dirty) {
      for (const chunk of dirty[m] ?? []) base.copy(current, chunk * CHUNK, chunk * CHUNK, Math.min((chunk + 1) * CHUNK, base.length));
      return;
    }
    for (let offset = 0; offset < current.length; offset += CHUNK) {
      const end = Math.min(offset + CHUNK, current.length);
      if (current.compare(base, offset, end, offset, end) !== 0) base.copy(current, offset, offset, end);
    }
  });
  view.globals.forEach(({ global }, g) => {
    const value = pristine.globals[g];
    if (typeof value === "number" || typeof value === "bigint") global.value = value;
  });
  return true;
}

function decode(bytes: Uint8Array): { header: Header; data: Buffer; xor: boolean } {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 5 || !buffer.subarray(0, 4).equals(MAGIC)) {
    throw new DormantError("snapshot-format", "Not a Dormant snapshot (bad magic).");
  }
  if (buffer[4] !== DEFLATED && buffer[4] !== XOR_DEFLATED && buffer[4] !== PLAIN) {
    throw new DormantError("snapshot-format", `Snapshot format ${buffer[4]} is not supported (expected ${XOR_DEFLATED}, ${PLAIN} or ${DEFLATED}).`);
  }
  let body = buffer.subarray(5);
  try {
    // Format 2 was written with zlib's default window.
    if (buffer[4] !== PLAIN) body = inflateRawSync(body, buffer[4] === XOR_DEFLATED ? { windowBits: ZLIB.windowBits } : {});
  } catch (error) {
    throw new DormantError("snapshot-format", `The snapshot does not decompress: ${(error as Error).message}.`);
  }
  if (body.length < 4) throw new DormantError("snapshot-format", "The snapshot is truncated; it is damaged.");
  const length = body.readUInt32LE(0);
  let header: Header;
  try {
    header = JSON.parse(body.subarray(4, 4 + length).toString("utf8")) as Header;
  } catch {
    throw new DormantError("snapshot-format", "The snapshot header is not valid JSON; the snapshot is damaged.");
  }
  return { header, data: body.subarray(4 + length), xor: buffer[4] === XOR_DEFLATED };
}

/** Whether current[offset, end) equals the pristine image there (zeros past its end). */
function sameAsBase(current: Buffer, base: Buffer, offset: number, end: number): boolean {
  const baseEnd = Math.min(end, base.length);
  if (offset < baseEnd && current.compare(base, offset, baseEnd, offset, baseEnd) !== 0) return false;
  const zeroFrom = Math.max(offset, baseEnd);
  return zeroFrom >= end || current.compare(ZERO, 0, end - zeroFrom, zeroFrom, end) === 0;
}

const ZERO = Buffer.alloc(CHUNK);

/** Numbers for numeric globals; for references whether one is set; null for what JS cannot read (v128). */
function readGlobal(global: GlobalCell, type: CoreValueType): GlobalValue {
  if (type === "i32" || type === "i64" || type === "f32" || type === "f64") return global.value as number | bigint;
  if (type === "v128") return null;
  return global.value === null ? null : "ref";
}

function encodeValue(value: number | bigint): string {
  if (typeof value === "bigint") return value.toString();
  return Object.is(value, -0) ? "-0" : String(value);
}

function decodeValue(encoded: string, type: CoreValueType): number | bigint {
  return type === "i64" ? BigInt(encoded) : Number(encoded);
}

function tableUnchanged(table: TableView, entries: readonly unknown[]): boolean {
  if (table.length !== entries.length) return false;
  for (let i = 0; i < entries.length; i++) if (table.get(i) !== entries[i]) return false;
  return true;
}
