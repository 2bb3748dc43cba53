/**
 * unstorage driver for a directory on disk whose writes survive crashes.
 *
 * unstorage's own fs driver writes files in place, so a process killed
 * mid-write leaves a torn file behind. Here every write goes to a temp file
 * in the target's directory, is fsynced, and is then renamed over the target:
 * rename is atomic within a filesystem, so readers see either the old or the
 * new content, never a mix. Keys map to paths like unstorage's fs driver
 * ("a:b:c" → "<base>/a/b/c").
 */
import { randomBytes } from "node:crypto";
import { promises as fsp, type Dirent } from "node:fs";
import { dirname, join, relative, resolve, sep, isAbsolute } from "node:path";
import { defineDriver } from "unstorage";
import { DormantError } from "../../../runtime/index.ts";

export interface FsAtomicOptions {
  /** Directory holding the data; created on first write if missing. */
  base: string;
  /** Mode for directories the driver creates (default 0o700, owner-only). */
  dirMode?: number;
  /** Mode for files the driver creates (default 0o600, owner-only). */
  fileMode?: number;
}

/** A key that cannot be stored safely under the base directory. */
export function invalidKeyError(key: string, reason: string): DormantError<"invalid-key"> {
  return new DormantError(
    "invalid-key",
    `[fs-atomic] Invalid key ${JSON.stringify(key)}: ${reason}. Use ":"-separated segments of ordinary names (no "." or ".." segments, no empty segments).`,
    { details: { key } },
  );
}

const DRIVER_NAME = "fs-atomic";

/** Temp files are `.<name>.<pid>.<12 hex>.tmp`; keys matching this are reserved. */
const TEMP_FILE_RE = /^\..+\.\d+\.[0-9a-f]{12}\.tmp$/;

export function isTempFileName(name: string): boolean {
  return TEMP_FILE_RE.test(name);
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

/** Missing files read as "no value", matching unstorage's drivers. */
function isNotFound(err: unknown): boolean {
  const code = errnoCode(err);
  return code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR";
}

function toBytes(value: unknown, key: string): Uint8Array | string {
  if (typeof value === "string" || value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`[fs-atomic] Cannot store raw value for key ${JSON.stringify(key)}: expected a Uint8Array, ArrayBuffer or string, got ${typeof value}.`);
}

export default defineDriver((options: FsAtomicOptions) => {
  if (!options?.base) {
    throw new TypeError(`[fs-atomic] Missing required option "base" (the data directory).`);
  }
  const base = resolve(options.base);
  const dirMode = options.dirMode ?? 0o700;
  const fileMode = options.fileMode ?? 0o600;

  /** Key segments; accepts ":", "/" and "\" as separators like unstorage does. */
  const segmentsOf = (key: string): string[] => key.split(/[:/\\]/).filter((s) => s !== "");

  /** Absolute path for an item key, refusing anything that could leave `base`. */
  const pathOf = (key: string): string => {
    const segments = segmentsOf(key);
    if (segments.length === 0) throw invalidKeyError(key, "it is empty");
    for (const segment of segments) {
      if (segment === "." || segment === "..") {
        throw invalidKeyError(key, `"${segment}" segments would escape the data directory`);
      }
      if (segment.includes("\0")) throw invalidKeyError(key, "it contains a NUL byte");
    }
    const last = segments[segments.length - 1] ?? "";
    if (isTempFileName(last)) {
      throw invalidKeyError(key, "its last segment is reserved for in-flight temp files");
    }
    const path = join(base, ...segments);
    const rel = relative(base, path);
    if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
      throw invalidKeyError(key, "it resolves outside the data directory");
    }
    return path;
  };

  /** Directory for a key prefix such as "snapshots:p1:" (base itself for ""). */
  const dirOf = (prefix: string): string => {
    const segments = segmentsOf(prefix);
    if (segments.some((s) => s === "." || s === "..")) {
      throw invalidKeyError(prefix, "prefix would escape the data directory");
    }
    return join(base, ...segments);
  };

  /** fsync a directory so a rename inside it is durable across power loss. */
  const syncDir = async (dir: string): Promise<void> => {
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(dir, "r");
      await handle.sync();
    } catch {
      // Some platforms/filesystems refuse to fsync directories; the rename is
      // still atomic with respect to process crashes, which is what we promise.
    } finally {
      await handle?.close();
    }
  };

  const writeAtomic = async (key: string, data: Uint8Array | string): Promise<void> => {
    const target = pathOf(key);
    const dir = dirname(target);
    await fsp.mkdir(dir, { recursive: true, mode: dirMode });
    const name = target.slice(dir.length + 1);
    const temp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    let handle: fsp.FileHandle | undefined;
    try {
      // "wx": never follow or reuse an existing file at the temp path.
      handle = await fsp.open(temp, "wx", fileMode);
      await handle.writeFile(data);
      await handle.sync();
      await handle.close();
      handle = undefined;
      await fsp.rename(temp, target);
    } catch (err) {
      await handle?.close().catch(() => {});
      await fsp.rm(temp, { force: true }).catch(() => {});
      throw err;
    }
    await syncDir(dir);
  };

  const read = async (key: string, encoding?: "utf8"): Promise<Buffer | string | null> => {
    try {
      return encoding ? await fsp.readFile(pathOf(key), encoding) : await fsp.readFile(pathOf(key));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };

  /** Keys of all files under `dir`, relative to base, skipping temp files. */
  const walk = async (dir: string): Promise<string[]> => {
    let entries: Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const nested = await Promise.all(
      entries.map(async (entry): Promise<string[]> => {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) return walk(path);
        if (!entry.isFile() || isTempFileName(entry.name)) return [];
        return [relative(base, path).split(sep).join(":")];
      }),
    );
    return nested.flat();
  };

  return {
    name: DRIVER_NAME,
    options,
    async hasItem(key: string) {
      try {
        return (await fsp.stat(pathOf(key))).isFile();
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    getItem(key: string) {
      return read(key, "utf8");
    },
    getItemRaw(key: string) {
      return read(key);
    },
    setItem(key: string, value: string) {
      return writeAtomic(key, value);
    },
    setItemRaw(key: string, value: unknown) {
      return writeAtomic(key, toBytes(value, key));
    },
    async removeItem(key: string) {
      await fsp.rm(pathOf(key), { force: true });
    },
    getKeys(prefix: string | undefined) {
      // unstorage filters by prefix itself; starting the walk at the prefix's
      // directory just avoids reading unrelated mounts. A prefix that ends
      // mid-segment ("snap") must walk from its parent. The root mount gets
      // `undefined`.
      const p = prefix ?? "";
      const wholeSegments = p === "" || /[:/\\]$/.test(p);
      return walk(wholeSegments ? dirOf(p) : dirname(dirOf(p)));
    },
    async clear(prefix: string | undefined) {
      // Unlike unstorage's fs driver, honour the prefix: clearing one mount
      // must not wipe the others. The base directory itself is kept.
      const dir = dirOf(prefix ?? "");
      if (dir !== base) {
        await fsp.rm(dir, { recursive: true, force: true });
        return;
      }
      let names: string[];
      try {
        names = await fsp.readdir(base);
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      await Promise.all(names.map((n) => fsp.rm(join(base, n), { recursive: true, force: true })));
    },
    dispose() {
      // No handles are held between calls.
    },
  };
});
