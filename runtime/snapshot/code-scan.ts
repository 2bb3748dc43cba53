/**
 * Whether a core module's code can change a table after instantiation. A snapshot cannot
 * carry a rewritten function table, so every freeze used to read each table entry back to
 * check (the QuickJS guest's 773 entries: about 0.1 ms a freeze). When no core module of a
 * component has an instruction that writes a table, nothing can (the host never does, and
 * jco's glue only fills tables while instantiating), and the check is skipped.
 *
 * The scan decodes every instruction of every function body, stepping over immediates.
 * Anything it does not know (the GC proposal's instructions, an opcode added later, a
 * malformed body) counts as a possible write: the answer is never a wrong "no".
 */

/** A possible table write, or something the scan cannot step over. */
class MayWrite extends Error {}

const stop = (): never => {
  throw new MayWrite();
};

class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  byte(): number {
    if (this.pos >= this.end) stop();
    return this.bytes[this.pos++]!;
  }

  u32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte();
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    return stop();
  }

  /** Any LEB128 (signed or unsigned) of at most `max` bytes. */
  leb(max: number): void {
    for (let i = 0; i < max; i++) if ((this.byte() & 0x80) === 0) return;
    stop();
  }

  skip(count: number): void {
    if (count > this.end - this.pos) stop();
    this.pos += count;
  }

  memarg(): void {
    const align = this.u32();
    if (align & 0x40) this.u32(); // multi-memory: a memory index follows
    this.leb(10); // offset: u64
  }

  valueType(): void {
    const type = this.byte();
    if (type === 0x63 || type === 0x64)
      this.leb(5); // (ref null? heaptype)
    else if (type < 0x68 || type > 0x7f || (type > 0x74 && type < 0x7b)) stop();
  }

  blockType(): void {
    const first = this.bytes[this.pos];
    if (first === undefined) stop();
    else if (first === 0x40) this.pos++;
    else if ((first & 0xc0) === 0x40)
      this.valueType(); // a one-byte negative: a value type
    else this.leb(5); // a type index (s33)
  }
}

/** Whether the code section (`start` to `end`, its contents) has an instruction that may write a table. */
export function codeMayWriteTables(module: Uint8Array, start: number, end: number): boolean {
  const c = new Cursor(module, start, end);
  try {
    const functions = c.u32();
    for (let f = 0; f < functions; f++) {
      const size = c.u32();
      const bodyEnd = c.pos + size;
      if (bodyEnd > end) return true;
      const body = new Cursor(module, c.pos, bodyEnd);
      const groups = body.u32();
      for (let g = 0; g < groups; g++) {
        body.u32();
        body.valueType();
      }
      while (body.pos < bodyEnd) instruction(body);
      c.pos = bodyEnd;
    }
    return c.pos !== end;
  } catch (error) {
    if (error instanceof MayWrite) return true;
    throw error;
  }
}

/** Step over one instruction; throws MayWrite on a table write or anything unknown. */
function instruction(c: Cursor): void {
  const op = c.byte();
  if (op >= 0x45 && op <= 0xc4) return; // numeric, sign extension
  if (op >= 0x28 && op <= 0x3e) return c.memarg(); // loads and stores
  if (op >= 0x20 && op <= 0x25) return void c.u32(); // locals, globals, table.get
  switch (op) {
    case 0x00: // unreachable
    case 0x01: // nop
    case 0x05: // else
    case 0x0a: // throw_ref
    case 0x0b: // end
    case 0x0f: // return
    case 0x19: // catch_all
    case 0x1a: // drop
    case 0x1b: // select
    case 0xd1: // ref.is_null
    case 0xd3: // ref.eq
    case 0xd4: // ref.as_non_null
      return;
    case 0x02: // block
    case 0x03: // loop
    case 0x04: // if
    case 0x06: // try
      return c.blockType();
    case 0x07: // catch
    case 0x08: // throw
    case 0x09: // rethrow
    case 0x0c: // br
    case 0x0d: // br_if
    case 0x10: // call
    case 0x12: // return_call
    case 0x14: // call_ref
    case 0x15: // return_call_ref
    case 0x18: // delegate
    case 0xd2: // ref.func
    case 0xd5: // br_on_null
    case 0xd6: // br_on_non_null
    case 0x3f: // memory.size
    case 0x40: // memory.grow
      return void c.u32();
    case 0x11: // call_indirect
    case 0x13: // return_call_indirect
      c.u32();
      return void c.u32();
    case 0x0e: {
      // br_table
      const targets = c.u32();
      for (let i = 0; i <= targets; i++) c.u32();
      return;
    }
    case 0x1c: {
      // select with types
      const types = c.u32();
      for (let i = 0; i < types; i++) c.valueType();
      return;
    }
    case 0x1f: {
      // try_table
      c.blockType();
      const catches = c.u32();
      for (let i = 0; i < catches; i++) {
        const kind = c.byte();
        if (kind > 3) stop();
        if (kind < 2) c.u32(); // a tag
        c.u32(); // a label
      }
      return;
    }
    case 0x41:
      return c.leb(5);
    case 0x42:
      return c.leb(10);
    case 0x43:
      return c.skip(4);
    case 0x44:
      return c.skip(8);
    case 0xd0: // ref.null
      return c.leb(5);
    case 0xfc:
      return miscellaneous(c);
    case 0xfd:
      return vector(c);
    case 0xfe:
      return atomic(c);
    default: // 0x26 table.set, 0xfb (GC) and unknown opcodes
      return stop();
  }
}

function miscellaneous(c: Cursor): void {
  const op = c.u32();
  if (op <= 7) return; // saturating truncations
  switch (op) {
    case 8: // memory.init
    case 10: // memory.copy
      c.u32();
      return void c.u32();
    case 9: // data.drop
    case 11: // memory.fill
    case 13: // elem.drop
    case 16: // table.size
      return void c.u32();
    default: // 12 table.init, 14 table.copy, 15 table.grow, 17 table.fill, and unknown
      return stop();
  }
}

function vector(c: Cursor): void {
  const op = c.u32();
  if (op <= 11 || op === 92 || op === 93) return c.memarg(); // loads and stores
  if (op === 12 || op === 13) return c.skip(16); // v128.const, i8x16.shuffle
  if (op >= 21 && op <= 34) return c.skip(1); // lane extract and replace
  if (op >= 84 && op <= 91) {
    c.memarg();
    return c.skip(1); // lane loads and stores
  }
  if (op <= 0x113) return; // the rest, relaxed SIMD included, have no immediates
  stop();
}

function atomic(c: Cursor): void {
  const op = c.u32();
  if (op === 3) return c.skip(1); // atomic.fence
  if (op <= 2 || (op >= 0x10 && op <= 0x4e)) return c.memarg();
  stop();
}
