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
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === "object" && BYTES in v && typeof (v as Record<string, unknown>)[BYTES] === "string") {
      return new Uint8Array(Buffer.from((v as Record<string, string>)[BYTES]!, "base64"));
    }
    return v;
  }) as T;
}

/** A V8-serialized value starts with its version tag (0xFF); JSON never does. */
const V8_TAG = 0xff;

/** Read one record; `legacy` says it was in the old V8 encoding (numbers now, not BigInts). */
export async function readRecord<T>(storage: Storage, key: string): Promise<{ value: T; legacy: boolean } | undefined> {
  const raw = await storage.getItemRaw<Uint8Array | string>(key);
  if (raw === null || raw === undefined) return undefined;
  const bytes = typeof raw === "string" ? Buffer.from(raw, "utf8") : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (bytes[0] === V8_TAG) return { value: withoutBigInts(deserialize(bytes)) as T, legacy: true };
  return { value: decodeRecord<T>(bytes.toString("utf8")), legacy: false };
}

export function writeRecord(storage: Storage, key: string, value: unknown): Promise<void> {
  return storage.setItemRaw(key, Buffer.from(encodeRecord(value), "utf8"));
}

/** Reads in flight at once when a host loads a store: a start with many records waits on I/O, not on CPU. */
const READS_AT_ONCE = 64;

/** `read` for every key under `storage` (that `only` accepts), a bounded number at a time; results in key order. */
export async function readEach<T>(storage: Storage, read: (key: string) => Promise<T>, only?: (key: string) => boolean): Promise<T[]> {
  const all = await storage.getKeys();
  const keys = only ? all.filter(only) : all;
  const results = new Array<T>(keys.length);
  let next = 0;
  const reader = async () => {
    while (next < keys.length) {
      const i = next++;
      results[i] = await read(keys[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READS_AT_ONCE, keys.length) }, reader));
  return results;
}

/** Every record under a storage (whose key `only` accepts), migrating legacy ones to JSON as they are read. */
export async function readAllRecords<T>(storage: Storage, only?: (key: string) => boolean): Promise<{ key: string; value: T }[]> {
  const records = await readEach(
    storage,
    async (key) => {
      const found = await readRecord<T>(storage, key);
      if (found?.legacy) await writeRecord(storage, key, found.value);
      return found && { key, value: found.value };
    },
    only,
  );
  return records.filter((record) => record !== undefined);
}

function withoutBigInts(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(withoutBigInts);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutBigInts(v)]));
}
