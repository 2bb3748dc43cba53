// Stored records are plain JSON, readable in Redis or on disk: byte arrays are written as
// {"$bytes": "<base64>"}. Values written by earlier versions with V8's serializer (they
// carried WIT BigInts) are still read, converted, and reported so the caller can rewrite them.
import { deserialize } from "node:v8";
import type { Storage } from "unstorage";

const BYTES = "$bytes";

export function encodeRecord(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return { [BYTES]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
    if (typeof v === "bigint") return Number(v);
    return v;
  });
}

export function decodeRecord<T>(text: string): T {
  // A walk after a plain parse, not a reviver: a reviver is called for every value, and a
  // host decodes every partition's records when it starts.
  const value: unknown = JSON.parse(text);
  return (text.includes(BYTES) ? withBytes(value) : value) as T;
}

/** `{"$bytes": "<base64>"}` objects, anywhere in a parsed value, as byte arrays. */
function withBytes(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = withBytes(value[i]);
    return value;
  }
  const fields = value as Record<string, unknown>;
  const bytes = fields[BYTES];
  if (typeof bytes === "string") return new Uint8Array(Buffer.from(bytes, "base64"));
  for (const key in fields) fields[key] = withBytes(fields[key]);
  return value;
}

/** A V8-serialized value starts with its version tag (0xFF); JSON never does. */
const V8_TAG = 0xff;

/** Read one record; `legacy` says it was in the old V8 encoding (numbers now, not BigInts). */
export async function readRecord<T>(storage: Storage, key: string): Promise<{ value: T; legacy: boolean } | undefined> {
  const raw = await storage.getItemRaw<Uint8Array | string>(key);
  if (raw === null || raw === undefined) return undefined;
  return decodeStored<T>(bytesOf(raw));
}

function decodeStored<T>(bytes: Buffer): { value: T; legacy: boolean } {
  if (bytes[0] === V8_TAG) return { value: withoutBigInts(deserialize(bytes)) as T, legacy: true };
  return { value: decodeRecord<T>(bytes.toString("utf8")), legacy: false };
}

function bytesOf(raw: Uint8Array | string): Buffer {
  return typeof raw === "string" ? Buffer.from(raw, "utf8") : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}

export function writeRecord(storage: Storage, key: string, value: unknown): Promise<void> {
  return storage.setItemRaw(key, Buffer.from(encodeRecord(value), "utf8"));
}

/** A record: its key within its mount and its stored bytes. */
export interface RawEntry {
  key: string;
  value: Buffer;
}

/**
 * A mount of many small records that a host reads all at once (at start) or many at a time
 * (adopting a shard): each driver does it in few round trips (see open.ts).
 */
export interface RecordMount extends Storage {
  /** Every record under the mount, or those of `keys` that exist; in no particular order. */
  entries(keys?: readonly string[]): Promise<RawEntry[]>;
}

/** Every record of a mount (or of the given keys), decoded, in no particular order, migrating legacy ones to JSON as they are read. */
export async function readAllRecords<T>(mount: RecordMount, keys?: readonly string[]): Promise<{ key: string; value: T }[]> {
  const records: { key: string; value: T }[] = [];
  for (const { key, value } of await mount.entries(keys)) {
    const found = decodeStored<T>(value);
    if (found.legacy) await writeRecord(mount, key, found.value);
    records.push({ key, value: found.value });
  }
  return records;
}

/** Reads in flight at once where a driver can only read one record at a time. */
const READS_AT_ONCE = 64;

/** `entries` for a driver without a bulk read: one read per key, a bounded number at a time. */
export async function entriesOneByOne(storage: Storage, keys?: readonly string[]): Promise<RawEntry[]> {
  const names = keys ?? (await storage.getKeys());
  const found: RawEntry[] = [];
  let next = 0;
  const reader = async () => {
    while (next < names.length) {
      const key = names[next++]!;
      const raw = await storage.getItemRaw<Uint8Array | string>(key);
      if (raw !== null && raw !== undefined) found.push({ key, value: bytesOf(raw) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(READS_AT_ONCE, names.length) }, reader));
  return found;
}

function withoutBigInts(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(withoutBigInts);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutBigInts(v)]));
}
