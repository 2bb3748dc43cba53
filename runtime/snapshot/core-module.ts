/**
 * Rewrites a core WebAssembly module so that every memory, table and global it
 * defines is also exported under a reserved name. Snapshotting needs to read
 * (and restore) state that toolchains keep private, such as the shadow stack
 * pointer global.
 *
 * Only the import, table, memory, global and export sections are parsed, and the
 * code section scanned for table writes; all sections (notably code and data) are
 * copied as whole slices.
 */
import type { CoreValueType } from "../engine.ts";
import { codeMayWriteTables } from "./code-scan.ts";
import { Leb128Error, readU32, skipLeb128, u32Size, writeU32 } from "./leb128.ts";
import { DormantError } from "../errors.ts";

export interface DefinedState {
  /** Export names added (or reused) for each defined memory, in index order. */
  memories: { index: number; exportName: string }[];
  /** Each defined global: its index in the global index space, value type, mutability, and the export name to read it by. */
  globals: { index: number; type: CoreValueType; mutable: boolean; exportName: string }[];
  tables: { index: number; exportName: string }[];
  /** Whether the module's code may write a table (any module's, through an import too): see `codeMayWriteTables`. */
  writesTables: boolean;
}

export interface ExposedModule {
  /** A fresh buffer (never aliases the input), typed so it can go straight to WebAssembly.compile. */
  bytes: Uint8Array<ArrayBuffer>;
  state: DefinedState;
}

/** Malformed or unsupported input; the message says what is wrong and at which byte offset (also in `details.offset`). */
export function coreModuleFormatError(message: string, offset?: number): DormantError<"invalid-component"> {
  return new DormantError("invalid-component", message, { details: offset === undefined ? {} : { offset } });
}

const SECTION_NAMES: Record<number, string> = {
  0: "custom",
  1: "type",
  2: "import",
  3: "function",
  4: "table",
  5: "memory",
  6: "global",
  7: "export",
  8: "start",
  9: "element",
  10: "code",
  11: "data",
  12: "datacount",
  13: "tag",
};

// Position of each known non-custom section in the mandated order; ids are not
// monotonic (datacount 12 precedes code 10, tag 13 precedes global 6).
const SECTION_ORDER: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};

const EXPORT_SECTION_ID = 7;

const VALUE_TYPES: Record<number, CoreValueType> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

const EXTERN_KIND = { func: 0, table: 1, memory: 2, global: 3, tag: 4 } as const;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

const hex = (byte: number): string => `0x${byte.toString(16).padStart(2, "0")}`;

/** Bounded cursor over one section that reports errors with location context. */
class Reader {
  pos: number;
  /** Describes the current entry for error messages, e.g. "global 3"; built lazily. */
  entryKind = "";
  entryIndex = -1;

  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
    readonly section: string,
  ) {
    this.pos = start;
  }

  fail(message: string, offset: number = this.pos): never {
    const where = this.entryIndex >= 0 ? `${this.section}, ${this.entryKind} ${this.entryIndex}` : this.section;
    throw coreModuleFormatError(`${message} at byte offset ${offset} (in ${where})`, offset);
  }

  byte(what: string): number {
    if (this.pos >= this.end) this.fail(`truncated: expected ${what}, but the ${this.section} ends`);
    return this.bytes[this.pos++]!;
  }

  u32(what: string): number {
    try {
      const { value, next } = readU32(this.bytes, this.pos, this.end);
      this.pos = next;
      return value;
    } catch (e) {
      if (e instanceof Leb128Error) this.fail(`bad ${what}: ${e.message}`, e.offset);
      throw e;
    }
  }

  skipLeb(maxBytes: number, what: string): void {
    try {
      this.pos = skipLeb128(this.bytes, this.pos, this.end, maxBytes);
    } catch (e) {
      if (e instanceof Leb128Error) this.fail(`bad ${what}: ${e.message}`, e.offset);
      throw e;
    }
  }

  skip(count: number, what: string): void {
    if (count > this.end - this.pos) {
      this.fail(`truncated: ${what} needs ${count} bytes but only ${this.end - this.pos} remain`);
    }
    this.pos += count;
  }

  skipName(what: string): void {
    const length = this.u32(`${what} length`);
    this.skip(length, what);
  }

  name(what: string): string {
    const length = this.u32(`${what} length`);
    const start = this.pos;
    this.skip(length, what);
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      this.fail(`${what} is not valid UTF-8`, start);
    }
  }

  expectEnd(): void {
    if (this.pos !== this.end) {
      this.fail(`${this.section} size mismatch: contents end at byte offset ${this.pos} but the declared size ends at ${this.end}`);
    }
  }
}

interface GlobalType {
  type: CoreValueType;
  mutable: boolean;
}

function readValueType(r: Reader): CoreValueType {
  const offset = r.pos;
  const byte = r.byte("value type");
  const type = VALUE_TYPES[byte];
  if (type === undefined) r.fail(`unknown value type ${hex(byte)}`, offset);
  return type;
}

function readGlobalType(r: Reader): GlobalType {
  const type = readValueType(r);
  const offset = r.pos;
  const mut = r.byte("global mutability");
  if (mut !== 0 && mut !== 1) r.fail(`invalid global mutability ${hex(mut)} (expected 0x00 or 0x01)`, offset);
  return { type, mutable: mut === 1 };
}

function readRefType(r: Reader): void {
  const offset = r.pos;
  const byte = r.byte("reference type");
  if (byte === 0x70 || byte === 0x6f) return;
  // Typed function references: (ref null? <heaptype>), heaptype is an s33.
  if (byte === 0x63 || byte === 0x64) {
    r.skipLeb(5, "heap type");
    return;
  }
  r.fail(`unknown reference type ${hex(byte)}`, offset);
}

/** Limits for tables and memories: flag bit0 = has max, bit1 = shared, bit2 = 64-bit, bit3 = custom page size. */
function skipLimits(r: Reader, allowPageSize: boolean): void {
  const offset = r.pos;
  const flags = r.byte("limits flags");
  const allowed = allowPageSize ? 0x0f : 0x07;
  if ((flags & ~allowed) !== 0) r.fail(`invalid limits flags ${hex(flags)}`, offset);
  const is64 = (flags & 0x04) !== 0;
  const skipBound = (what: string): void => {
    if (is64) r.skipLeb(10, what);
    else r.u32(what);
  };
  skipBound("minimum size");
  if (flags & 0x01) skipBound("maximum size");
  if (flags & 0x08) r.u32("page size log2");
}

function skipTableType(r: Reader): void {
  readRefType(r);
  skipLimits(r, false);
}

/** Steps over a constant expression up to and including its `end` (0x0B). */
function skipConstExpr(r: Reader): void {
  for (;;) {
    const offset = r.pos;
    const op = r.byte("constant expression opcode (or end 0x0b)");
    switch (op) {
      case 0x0b:
        return;
      case 0x41: // i32.const
        r.skipLeb(5, "i32.const immediate");
        break;
      case 0x42: // i64.const
        r.skipLeb(10, "i64.const immediate");
        break;
      case 0x43: // f32.const
        r.skip(4, "f32.const immediate");
        break;
      case 0x44: // f64.const
        r.skip(8, "f64.const immediate");
        break;
      case 0x23: // global.get
        r.u32("global.get index");
        break;
      case 0xd0: // ref.null heaptype (s33; abstract types are one byte)
        r.skipLeb(5, "ref.null heap type");
        break;
      case 0xd2: // ref.func
        r.u32("ref.func index");
        break;
      case 0x6a: // i32.add
      case 0x6b: // i32.sub
      case 0x6c: // i32.mul
      case 0x7c: // i64.add
      case 0x7d: // i64.sub
      case 0x7e: // i64.mul
        break;
      case 0xfd: {
        const subOffset = r.pos;
        const sub = r.u32("SIMD opcode");
        if (sub !== 12) r.fail(`unsupported SIMD opcode 0xfd ${sub} in constant expression (only v128.const, 12, is allowed)`, subOffset);
        r.skip(16, "v128.const immediate");
        break;
      }
      default:
        r.fail(`unknown opcode ${hex(op)} in constant expression`, offset);
    }
  }
}

interface ImportCounts {
  funcs: number;
  tables: number;
  memories: number;
  globals: number;
  tags: number;
}

function parseImports(r: Reader, counts: ImportCounts): void {
  const count = r.u32("import count");
  r.entryKind = "import";
  for (let i = 0; i < count; i++) {
    r.entryIndex = i;
    r.skipName("import module name");
    r.skipName("import field name");
    const offset = r.pos;
    const kind = r.byte("import kind");
    switch (kind) {
      case EXTERN_KIND.func:
        r.u32("function type index");
        counts.funcs++;
        break;
      case EXTERN_KIND.table:
        skipTableType(r);
        counts.tables++;
        break;
      case EXTERN_KIND.memory:
        skipLimits(r, true);
        counts.memories++;
        break;
      case EXTERN_KIND.global:
        readGlobalType(r);
        counts.globals++;
        break;
      case EXTERN_KIND.tag:
        r.byte("tag attribute");
        r.u32("tag type index");
        counts.tags++;
        break;
      default:
        r.fail(`unknown import kind ${hex(kind)}`, offset);
    }
  }
  r.entryIndex = -1;
  r.expectEnd();
}

function parseTables(r: Reader): number {
  const count = r.u32("table count");
  r.entryKind = "table";
  for (let i = 0; i < count; i++) {
    r.entryIndex = i;
    if (r.pos < r.end && r.bytes[r.pos] === 0x40) {
      // Table with an explicit initializer: 0x40 0x00 tabletype expr.
      r.pos++;
      const offset = r.pos;
      const reserved = r.byte("reserved byte after 0x40");
      if (reserved !== 0) r.fail(`expected 0x00 after 0x40 in table with initializer, got ${hex(reserved)}`, offset);
      skipTableType(r);
      skipConstExpr(r);
    } else {
      skipTableType(r);
    }
  }
  r.entryIndex = -1;
  r.expectEnd();
  return count;
}

interface MemoryLimits {
  flags: number;
  /** Byte span of the entry's limits, to copy unchanged what is not capped. */
  start: number;
  end: number;
  min: number;
  max?: number;
}

function parseMemories(r: Reader): MemoryLimits[] {
  const count = r.u32("memory count");
  const memories: MemoryLimits[] = [];
  r.entryKind = "memory";
  for (let i = 0; i < count; i++) {
    r.entryIndex = i;
    const start = r.pos;
    const flags = r.bytes[r.pos] ?? 0;
    skipLimits(r, true);
    // Bounds of 32-bit memories with the default page size are plain u32s: reread them.
    const plain = (flags & 0x0c) === 0;
    const min = plain ? readU32(r.bytes, start + 1, r.end) : undefined;
    const max = plain && flags & 0x01 ? readU32(r.bytes, min!.next, r.end).value : undefined;
    memories.push({ flags, start, end: r.pos, min: min?.value ?? 0, ...(max === undefined ? {} : { max }) });
  }
  r.entryIndex = -1;
  r.expectEnd();
  return memories;
}

/**
 * The memory section with every defined memory's maximum lowered to `maxPages` (never
 * below its minimum), so `memory.grow` fails inside the guest at the cap instead of the
 * host allocating whatever the guest asks for. 64-bit and custom-page memories are copied
 * unchanged (none of our toolchains emits them).
 */
function encodeCappedMemories(module: Uint8Array, memories: MemoryLimits[], maxPages: number): Uint8Array {
  const entries: Uint8Array[] = memories.map((m) => {
    if ((m.flags & 0x0c) !== 0) return module.subarray(m.start, m.end);
    const max = Math.max(m.min, Math.min(m.max ?? Infinity, maxPages));
    const out = new Uint8Array(1 + u32Size(m.min) + u32Size(max));
    out[0] = m.flags | 0x01;
    writeU32(out, writeU32(out, 1, m.min), max);
    return out;
  });
  const bodySize = u32Size(memories.length) + entries.reduce((sum, e) => sum + e.length, 0);
  const out = new Uint8Array(1 + u32Size(bodySize) + bodySize);
  out[0] = 5;
  let pos = writeU32(out, writeU32(out, 1, bodySize), memories.length);
  for (const e of entries) {
    out.set(e, pos);
    pos += e.length;
  }
  return out;
}

function parseGlobals(r: Reader): GlobalType[] {
  const count = r.u32("global count");
  const globals: GlobalType[] = [];
  r.entryKind = "global";
  for (let i = 0; i < count; i++) {
    r.entryIndex = i;
    globals.push(readGlobalType(r));
    skipConstExpr(r);
  }
  r.entryIndex = -1;
  r.expectEnd();
  return globals;
}

interface ExportSection {
  count: number;
  /** Offset of the first entry (just after the count), so entries can be copied as one slice. */
  entriesStart: number;
  end: number;
  names: Set<string>;
}

function parseExports(r: Reader): ExportSection {
  const count = r.u32("export count");
  const entriesStart = r.pos;
  const names = new Set<string>();
  r.entryKind = "export";
  for (let i = 0; i < count; i++) {
    r.entryIndex = i;
    names.add(r.name("export name"));
    const offset = r.pos;
    const kind = r.byte("export kind");
    if (kind > EXTERN_KIND.tag) r.fail(`unknown export kind ${hex(kind)}`, offset);
    r.u32("export index");
  }
  r.entryIndex = -1;
  r.expectEnd();
  return { count, entriesStart, end: r.end, names };
}

function checkHeader(module: Uint8Array): void {
  const isMagic = module.length >= 4 && module[0] === 0x00 && module[1] === 0x61 && module[2] === 0x73 && module[3] === 0x6d;
  if (!isMagic) {
    const head = Array.from(module.subarray(0, 4), hex).join(" ");
    throw coreModuleFormatError(
      `not a core WebAssembly module: expected the magic bytes 0x00 0x61 0x73 0x6d ("\\0asm") at byte offset 0, got ${head || "no bytes"}`,
      0,
    );
  }
  if (module.length < 8) {
    throw coreModuleFormatError(
      `not a core WebAssembly module: truncated header, the 4-byte version at byte offset 4 is missing (input is ${module.length} bytes)`,
      module.length,
    );
  }
  const [v0, v1, v2, v3] = [module[4]!, module[5]!, module[6]!, module[7]!];
  if (v0 === 0x01 && v1 === 0x00 && v2 === 0x00 && v3 === 0x00) return;
  if (v2 === 0x01 && v3 === 0x00) {
    throw coreModuleFormatError(
      `not a core WebAssembly module: this is a component, not a core module (layer 1 header ${[v0, v1, v2, v3].map(hex).join(" ")} at byte offset 4)`,
      4,
    );
  }
  throw coreModuleFormatError(
    `not a core WebAssembly module: unsupported version ${[v0, v1, v2, v3].map(hex).join(" ")} at byte offset 4 (expected 0x01 0x00 0x00 0x00)`,
    4,
  );
}

interface SectionSpan {
  id: number;
  /** Offset of the section id byte. */
  start: number;
  contentStart: number;
  end: number;
}

function readSections(module: Uint8Array): SectionSpan[] {
  const sections: SectionSpan[] = [];
  let pos = 8;
  while (pos < module.length) {
    const start = pos;
    const id = module[pos++]!;
    if (SECTION_NAMES[id] === undefined) {
      throw coreModuleFormatError(`unknown section id ${id} at byte offset ${start}`, start);
    }
    let size: number;
    try {
      ({ value: size, next: pos } = readU32(module, pos));
    } catch (e) {
      if (!(e instanceof Leb128Error)) throw e;
      throw coreModuleFormatError(
        `bad size of ${SECTION_NAMES[id]} section (id ${id}) starting at byte offset ${start}: ${e.message} at byte offset ${e.offset}`,
        e.offset,
      );
    }
    const end = pos + size;
    if (end > module.length) {
      throw coreModuleFormatError(
        `truncated ${SECTION_NAMES[id]} section (id ${id}) starting at byte offset ${start}: ` +
          `declares ${size} bytes of contents but only ${module.length - pos} remain`,
        module.length,
      );
    }
    sections.push({ id, start, contentStart: pos, end });
    pos = end;
  }
  return sections;
}

interface NewExport {
  name: Uint8Array;
  kind: number;
  index: number;
}

function encodeExportSection(module: Uint8Array, existing: ExportSection | undefined, added: NewExport[]): Uint8Array {
  const count = (existing?.count ?? 0) + added.length;
  const oldEntries = existing ? module.subarray(existing.entriesStart, existing.end) : new Uint8Array(0);
  let bodySize = u32Size(count) + oldEntries.length;
  for (const e of added) bodySize += u32Size(e.name.length) + e.name.length + 1 + u32Size(e.index);
  const out = new Uint8Array(1 + u32Size(bodySize) + bodySize);
  out[0] = EXPORT_SECTION_ID;
  let pos = writeU32(out, 1, bodySize);
  pos = writeU32(out, pos, count);
  out.set(oldEntries, pos);
  pos += oldEntries.length;
  for (const e of added) {
    pos = writeU32(out, pos, e.name.length);
    out.set(e.name, pos);
    pos += e.name.length;
    out[pos++] = e.kind;
    pos = writeU32(out, pos, e.index);
  }
  return out;
}

/**
 * Rewrite a core module so every memory, table and global it defines is exported under a
 * reserved name ("$dormant:memory:<index>", "$dormant:table:<index>", "$dormant:global:<index>",
 * index in the respective index space including imports). With `maxMemoryPages`, every
 * defined memory's maximum is also lowered to that many 64 KiB pages.
 */
export function exposeDefinedState(module: Uint8Array, options: { maxMemoryPages?: number } = {}): ExposedModule {
  checkHeader(module);
  const sections = readSections(module);

  const imported: ImportCounts = { funcs: 0, tables: 0, memories: 0, globals: 0, tags: 0 };
  let definedTables = 0;
  let definedMemories: MemoryLimits[] = [];
  let memorySpan: SectionSpan | undefined;
  let definedGlobals: GlobalType[] = [];
  let exportSection: ExportSection | undefined;
  let exportSpan: SectionSpan | undefined;
  let writesTables = false;
  const seen = new Set<number>();

  for (const s of sections) {
    if (s.id !== 0) {
      if (seen.has(s.id)) {
        throw coreModuleFormatError(`duplicate ${SECTION_NAMES[s.id]} section at byte offset ${s.start}`, s.start);
      }
      seen.add(s.id);
    }
    const reader = (): Reader => new Reader(module, s.contentStart, s.end, `${SECTION_NAMES[s.id]} section`);
    switch (s.id) {
      case 2:
        parseImports(reader(), imported);
        break;
      case 4:
        definedTables = parseTables(reader());
        break;
      case 5:
        definedMemories = parseMemories(reader());
        memorySpan = s;
        break;
      case 6:
        definedGlobals = parseGlobals(reader());
        break;
      case EXPORT_SECTION_ID:
        exportSection = parseExports(reader());
        exportSpan = s;
        break;
      case 10:
        writesTables = codeMayWriteTables(module, s.contentStart, s.end);
        break;
    }
  }

  const state: DefinedState = { memories: [], globals: [], tables: [], writesTables };
  const added: NewExport[] = [];
  const reserve = (kind: number, label: string, index: number): string => {
    const name = `$dormant:${label}:${index}`;
    if (exportSection?.names.has(name)) {
      throw coreModuleFormatError(
        `the module already exports "${name}", a name reserved for exposing its state (export section at byte offset ${exportSpan!.start})`,
        exportSpan!.start,
      );
    }
    added.push({ name: utf8Encoder.encode(name), kind, index });
    return name;
  };
  for (let i = 0; i < definedMemories.length; i++) {
    const index = imported.memories + i;
    state.memories.push({ index, exportName: reserve(EXTERN_KIND.memory, "memory", index) });
  }
  for (let i = 0; i < definedTables; i++) {
    const index = imported.tables + i;
    state.tables.push({ index, exportName: reserve(EXTERN_KIND.table, "table", index) });
  }
  definedGlobals.forEach((g, i) => {
    const index = imported.globals + i;
    state.globals.push({ index, type: g.type, mutable: g.mutable, exportName: reserve(EXTERN_KIND.global, "global", index) });
  });

  const { maxMemoryPages } = options;
  const memories = memorySpan && maxMemoryPages !== undefined ? encodeCappedMemories(module, definedMemories, maxMemoryPages) : undefined;
  const slice = (s: SectionSpan): Uint8Array => (s === memorySpan && memories ? memories : module.subarray(s.start, s.end));
  const chunks: Uint8Array[] = [module.subarray(0, 8)];
  if (added.length === 0) {
    for (const s of sections) chunks.push(slice(s));
  } else {
    const newExports = encodeExportSection(module, exportSection, added);
    let inserted = false;
    for (const s of sections) {
      if (s === exportSpan) {
        chunks.push(newExports);
        inserted = true;
        continue;
      }
      if (!inserted && !exportSpan && s.id !== 0 && SECTION_ORDER[s.id]! > SECTION_ORDER[EXPORT_SECTION_ID]!) {
        chunks.push(newExports);
        inserted = true;
      }
      chunks.push(slice(s));
    }
    if (!inserted) chunks.push(newExports);
  }

  return { bytes: concat(chunks), state };
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const c of chunks) length += c.length;
  const out = new Uint8Array(length);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}
