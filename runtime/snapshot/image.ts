// A snapshot of a live instance, stored as the difference from the component's pristine
// (just instantiated) image: the 4 KiB chunks of linear memory that differ (of each, the
// runs of words that differ), plus every mutable global. Two fresh instances of a component are byte-identical, so
// applying the difference to a fresh instance reproduces the exact state.
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { CoreValueType, GlobalCell, StateView, TableView } from "../engine.ts";
import { DormantError } from "../errors.ts";
import { changedRuns, CHUNK_WORDS } from "./changed-runs.ts";

const MAGIC = Buffer.from("DRMS");
/** Format 2: each changed chunk as it is, raw-deflated (written before format 4; still read). */
const DEFLATED = 2;
/** Format 4: each changed chunk XORed with the pristine one, raw-deflated (written before format 5; still read). */
const XOR_DEFLATED = 4;
/**
 * Format 5: in each changed chunk, only the runs of words that differ from pristine, as
 * they are, raw-deflated. A guest's heap chunk differs from pristine in a few words (the
 * QuickJS counter's: 9% of the words of its 44 changed chunks), so deflate reads a tenth of
 * what the XORed chunks of format 4 gave it, and the image kept in memory for a warm wake
 * is a tenth of the size. Written onto a pristine instance, the runs give the state back.
 */
const SPANS_DEFLATED = 5;
/** Format 6: format 5 uncompressed: the image a warm wake restores from memory (nothing to inflate), and what is stored when small (PLAIN_STORED_MAX). */
const SPANS_PLAIN = 6;
/**
 * Images up to this size are stored as they are. Deflating the QuickJS counter's 10 KB
 * image saved 6 KB of disk and cost its executor 0.4 ms a freeze on a 2-core machine, the
 * largest part of a freeze there; larger images (StarlingMonkey's are 120–180 KB) shrink
 * enough to be worth it.
 */
const PLAIN_STORED_MAX = 32 * 1024;
/** Bytes before the body of a format 6 image: magic, format and padding, so the body's words are aligned. */
const PLAIN_PREFIX = 8;
/**
 * Deflate level 4 with an 8 KiB window and small tables: on the XORed counter delta of
 * format 4, 10.6 KB in 0.53 ms, inflated in 0.10 ms. zlib's defaults (32 KiB window, 256
 * KiB of tables) gave 10.5 KB in 0.74 ms, inflated in 0.96: here every call's larger
 * buffers are fresh memory, and a page touched for the first time is dear.
 */
const ZLIB = { level: 4, windowBits: 13, memLevel: 6 } as const;
const WORDS = CHUNK_WORDS;
const CHUNK = WORDS * 4;
/** Chunks compared at once before each of them is (see `encodeSnapshot`). */
const BLOCK = 16 * CHUNK;
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
  /** The executor's tag of the instance the snapshot was taken from (see `encodeSnapshot`). */
  instance?: string;
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
    // Each its own buffer, so its words are aligned.
    memories: view.memories.map((memory) => Buffer.from(new Uint8Array(memory.buffer).slice().buffer)),
    globals: view.globals.map(({ global, type }) => readGlobal(global, type)),
  };
}

/**
 * Encode an instance's state as a delta against its component's pristine image: `bytes` to
 * store (see SPANS_DEFLATED; the image itself when small), `image` the same snapshot
 * uncompressed (SPANS_PLAIN), to keep in memory so a warm wake copies chunks in and inflates
 * nothing. Both are accepted by `applySnapshot`.
 */
export function encodeSnapshot(
  view: StateView,
  pristine: PristineImage,
  /** A tag for this instance in this state, written into the header: the executor finds the instance again by it (see its kept spares). */
  instance?: string,
): { bytes: Uint8Array; image: Uint8Array; stats: SnapshotStats; dirty: Dirty } {
  view.tables.forEach(({ table, entries }, i) => {
    if (!tableUnchanged(table, entries)) {
      throw new DormantError(
        "snapshot-format",
        `Table ${i} of component ${pristine.component} changed since instantiation; ` +
          `Dormant cannot snapshot rewritten function tables. Keep the guest from growing or setting tables.`,
      );
    }
  });
  // The tag first: `snapshotTag` finds it at the start of the header.
  const header: Header = { ...(instance === undefined ? {} : { instance }), component: pristine.component, chunk: CHUNK, memories: [], globals: [] };
  let memoryBytes = 0;
  let deltaBytes = 0;
  const currents = view.memories.map((memory, m) => {
    const current = Buffer.from(memory.buffer);
    const base = pristine.memories[m] ?? Buffer.alloc(0);
    const chunks: number[] = [];
    // A block of chunks at a time first: most of a memory is as it was, and each compare is a call into C++.
    for (let block = 0; block < current.length; block += BLOCK) {
      const blockEnd = Math.min(block + BLOCK, current.length);
      if (sameAsBase(current, base, block, blockEnd)) continue;
      for (let offset = block; offset < blockEnd; offset += CHUNK) {
        if (!sameAsBase(current, base, offset, Math.min(offset + CHUNK, current.length))) chunks.push(offset / CHUNK);
      }
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
  // Per changed chunk: its run count, each run (first word << 16 | words), the runs' words.
  const nows = currents.map(words);
  const runs = header.memories.map(({ chunks }, m) => {
    const was = words(pristine.memories[m] ?? Buffer.alloc(0));
    return chunks.map((chunk) => changedRuns(nows[m]!, was, chunk * WORDS));
  });
  let dataWords = 0;
  for (const chunk of runs.flat()) {
    dataWords += 1 + chunk.length / 2;
    for (let r = 1; r < chunk.length; r += 2) dataWords += chunk[r]!;
  }
  // One buffer, the image: magic, format and padding, the header's length, the header
  // (padded so the data starts word-aligned), the data. A buffer made once: fresh memory is dear here (see ZLIB).
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((4 + json.length) % 8)) % 8);
  const image = Buffer.allocUnsafeSlow(PLAIN_PREFIX + 4 + json.length + dataWords * 4);
  MAGIC.copy(image);
  image.fill(0, MAGIC.length, PLAIN_PREFIX);
  image[MAGIC.length] = SPANS_PLAIN;
  image.writeUInt32LE(json.length, PLAIN_PREFIX);
  image.write(json, PLAIN_PREFIX + 4, "latin1"); // the header is ASCII: digests, numbers
  const data = new Int32Array(image.buffer, image.byteOffset + PLAIN_PREFIX + 4 + json.length, dataWords);
  let at = 0;
  runs.forEach((chunks, m) => {
    const current = nows[m]!;
    header.memories[m]!.chunks.forEach((chunk, c) => {
      const found = chunks[c]!;
      data[at++] = found.length / 2;
      for (let r = 0; r < found.length; r += 2) data[at++] = (found[r]! << 16) | found[r + 1]!;
      for (let r = 0; r < found.length; r += 2) {
        const from = chunk * WORDS + found[r]!;
        data.set(current.subarray(from, from + found[r + 1]!), at);
        at += found[r + 1]!;
      }
    });
  });
  // Integrity is the store's sha256, so raw deflate (no checksum of its own).
  const bytes =
    image.length <= PLAIN_STORED_MAX ? image : Buffer.concat([MAGIC, Buffer.of(SPANS_DEFLATED), deflateRawSync(image.subarray(PLAIN_PREFIX), ZLIB)]);
  return { bytes, image, stats: { memoryBytes, deltaBytes, bytes: bytes.length }, dirty: header.memories.map(({ chunks }) => chunks) };
}

/** A buffer's words (its offset is word-aligned: memories, pristine images and the images made here are). */
function words(bytes: Uint8Array): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
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
  const { header, data, format } = decode(bytes);
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
  const spans = format === SPANS_DEFLATED || format === SPANS_PLAIN;
  if (spans && (header.chunk !== CHUNK || data.length % 4 !== 0)) throw damaged("its data is not whole words");
  // Inflated data may start anywhere in its buffer; the runs are read a word at a time.
  const dataWords = spans ? words(data.byteOffset % 4 === 0 ? data : Buffer.from(new Uint8Array(data).buffer)) : undefined;
  let offset = 0;
  header.memories.forEach(({ byteLength, chunks }, m) => {
    const memory = view.memories[m]!;
    const have = memory.buffer.byteLength;
    if (byteLength < have || byteLength % PAGE !== 0) {
      throw new DormantError("snapshot-format", `Memory ${m} in the snapshot is ${byteLength} bytes; a fresh instance already has ${have}.`);
    }
    if (byteLength > have) memory.grow((byteLength - have) / PAGE);
    for (const chunk of chunks) {
      if (chunk * header.chunk >= byteLength) throw damaged(`memory ${m} chunk ${chunk} lies outside the memory`);
    }
    if (dataWords) {
      offset = writeRuns(words(new Uint8Array(memory.buffer)), chunks, dataWords, offset, m);
      return;
    }
    const target = new Uint8Array(memory.buffer);
    for (const chunk of chunks) {
      const start = chunk * header.chunk;
      const length = Math.min(header.chunk, byteLength - start);
      if (offset + length > data.length) throw damaged(`memory ${m} chunk ${chunk} lies outside the snapshot's data`);
      const chunkData = data.subarray(offset, offset + length);
      // The instance is pristine, so XORing the stored difference in gives the state.
      if (format === XOR_DEFLATED) xorInto(target.subarray(start, start + length), chunkData, target.subarray(start, start + length));
      else target.set(chunkData, start);
      offset += length;
    }
  });
  if (offset !== (dataWords ? dataWords.length : data.length)) throw damaged("it has trailing data");
  header.globals.forEach((encoded, g) => {
    const { global, type } = view.globals[g]!;
    if (encoded !== null) global.value = decodeValue(encoded, type);
  });
}

/**
 * Runs longer than this many words are copied with one `set`: restoring a StarlingMonkey
 * counter (some 300k words in 500 chunks) took 1.13 ms word by word and 0.77 ms so.
 */
const COPY_RUN_WORDS = 64;

/** Write each chunk's runs (format 5) into a pristine memory; returns the word after the last one read. */
function writeRuns(memory: Int32Array, chunks: readonly number[], data: Int32Array, from: number, m: number): number {
  let at = from;
  for (const chunk of chunks) {
    const count = data[at++];
    if (count === undefined || count < 0 || count > WORDS || at + count > data.length) throw damaged(`memory ${m} chunk ${chunk} has no valid runs`);
    let word = at + count;
    for (let r = 0; r < count; r++) {
      const run = data[at + r]!;
      const first = run >>> 16;
      const length = run & 0xffff;
      if (first + length > WORDS || word + length > data.length) throw damaged(`memory ${m} chunk ${chunk} has a run outside it`);
      const into = chunk * WORDS + first;
      // A long run is one memcpy; a short one is cheaper word by word than a view made for it.
      if (length > COPY_RUN_WORDS) memory.set(data.subarray(word, word + length), into);
      else for (let i = 0; i < length; i++) memory[into + i] = data[word + i]!;
      word += length;
    }
    at = word;
  }
  return at;
}

function damaged(what: string): DormantError {
  return new DormantError("snapshot-format", `The snapshot is damaged: ${what}.`);
}

/**
 * Put an instance back in its component's pristine state, so another partition can use
 * it: every memory chunk that differs is copied back and every global is reset. Returns
 * false, changing nothing, when that cannot be done exactly — a memory grew (memories
 * cannot shrink), a table changed, or a global holds what JS cannot read or write.
 * `dirty`, when the caller knows it (the instance ran nothing since `encodeSnapshot` said
 * so), spares comparing every chunk, only those are copied back, and spares reading the
 * tables again (`encodeSnapshot` found them unchanged).
 */
export function resetToPristine(view: StateView, pristine: PristineImage, dirty?: Dirty): boolean {
  if (view.memories.some((memory, m) => memory.buffer.byteLength !== pristine.memories[m]?.length)) return false;
  if (!dirty && view.tables.some(({ table, entries }) => !tableUnchanged(table, entries))) return false;
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

const TAG_KEY = Buffer.from('{"instance":"');
/** Longer than any tag an executor writes (16 hex digits, a dash, a count). */
const TAG_MAX = 64;

/**
 * The instance tag (see `encodeSnapshot`) of an uncompressed snapshot, the form a warm wake
 * restores from memory, read from the start of its header without parsing the rest;
 * undefined for any other. Byte by byte in JavaScript: on a wake just after idle, the four
 * calls into Buffer's C++ this took otherwise cost 45 µs.
 */
export function snapshotTag(bytes: Uint8Array): string | undefined {
  const from = PLAIN_PREFIX + 4 + TAG_KEY.length;
  if (bytes.length < from || bytes[4] !== SPANS_PLAIN) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) return undefined;
  for (let i = 0; i < TAG_KEY.length; i++) if (bytes[PLAIN_PREFIX + 4 + i] !== TAG_KEY[i]) return undefined;
  let tag = "";
  for (let i = from; i < Math.min(bytes.length, from + TAG_MAX); i++) {
    if (bytes[i] === 0x22) return tag;
    tag += String.fromCharCode(bytes[i]!);
  }
  return undefined;
}

function decode(bytes: Uint8Array): { header: Header; data: Buffer; format: number } {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 5 || !buffer.subarray(0, 4).equals(MAGIC)) {
    throw new DormantError("snapshot-format", "Not a Dormant snapshot (bad magic).");
  }
  const format = buffer[4]!;
  if (format !== DEFLATED && format !== XOR_DEFLATED && format !== SPANS_DEFLATED && format !== SPANS_PLAIN) {
    throw new DormantError(
      "snapshot-format",
      `Snapshot format ${format} is not supported (expected ${SPANS_DEFLATED}, ${SPANS_PLAIN}, ${XOR_DEFLATED} or ${DEFLATED}).`,
    );
  }
  let body: Buffer;
  try {
    // Format 2 was written with zlib's default window.
    if (format === SPANS_PLAIN) body = buffer.subarray(PLAIN_PREFIX);
    else body = inflateRawSync(buffer.subarray(5), format === DEFLATED ? {} : { windowBits: ZLIB.windowBits });
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
  return { header, data: body.subarray(4 + length), format };
}

/** Whether current[offset, end) equals the pristine image there (zeros past its end). */
function sameAsBase(current: Buffer, base: Buffer, offset: number, end: number): boolean {
  const baseEnd = Math.min(end, base.length);
  if (offset < baseEnd && current.compare(base, offset, baseEnd, offset, baseEnd) !== 0) return false;
  const zeroFrom = Math.max(offset, baseEnd);
  return zeroFrom >= end || current.compare(ZERO, 0, end - zeroFrom, zeroFrom, end) === 0;
}

const ZERO = Buffer.alloc(BLOCK);

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
