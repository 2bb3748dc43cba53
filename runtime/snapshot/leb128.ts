/**
 * LEB128 helpers for the WebAssembly binary format.
 *
 * Readers take an explicit `end` so callers can bound a read to the
 * enclosing section rather than to the whole buffer.
 */

/** Thrown on a malformed or truncated LEB128; `offset` is where the number starts. */
export class Leb128Error extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = "Leb128Error";
    this.offset = offset;
  }
}

export interface LebRead {
  value: number;
  /** Offset of the first byte after the number. */
  next: number;
}

/** Reads an unsigned LEB128 that must fit in 32 bits (at most 5 bytes). */
export function readU32(bytes: Uint8Array, offset: number, end: number = bytes.length): LebRead {
  let result = 0;
  let shift = 0;
  let pos = offset;
  for (;;) {
    if (pos >= end) {
      throw new Leb128Error("truncated LEB128 (ran past the end of the enclosing data)", offset);
    }
    const byte = bytes[pos++]!;
    if (shift === 28) {
      // Fifth byte: only 4 payload bits remain and no continuation is allowed.
      if ((byte & 0xf0) !== 0) {
        throw new Leb128Error("unsigned LEB128 does not fit in 32 bits", offset);
      }
      // `>>> 0` via multiplication keeps the result an unsigned float64.
      return { value: result + byte * 0x10000000, next: pos };
    }
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value: result >>> 0, next: pos };
    shift += 7;
  }
}

/**
 * Skips a LEB128 (signed or unsigned) of at most `maxBytes` bytes without
 * decoding it; returns the offset after it. Used for immediates we only need
 * to step over (i32/i64 consts, u64 limits, heap types).
 */
export function skipLeb128(bytes: Uint8Array, offset: number, end: number, maxBytes: number): number {
  const limit = offset + maxBytes;
  let pos = offset;
  for (;;) {
    if (pos >= end) {
      throw new Leb128Error("truncated LEB128 (ran past the end of the enclosing data)", offset);
    }
    if (pos >= limit) {
      throw new Leb128Error(`LEB128 longer than ${maxBytes} bytes`, offset);
    }
    if ((bytes[pos++]! & 0x80) === 0) return pos;
  }
}

/** Number of bytes the minimal unsigned LEB128 encoding of `value` takes. */
export function u32Size(value: number): number {
  checkU32(value);
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Writes the minimal unsigned LEB128 encoding of `value` at `offset`; returns the offset after it. */
export function writeU32(target: Uint8Array, offset: number, value: number): number {
  checkU32(value);
  let pos = offset;
  while (value >= 0x80) {
    target[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  target[pos++] = value;
  return pos;
}

function checkU32(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`not an unsigned 32-bit integer: ${value}`);
  }
}
