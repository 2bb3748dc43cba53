/**
 * unstorage driver for a directory on disk whose writes survive crashes.
 *
 * unstorage's own fs driver writes files in place, so a process killed
 * mid-write leaves a torn file behind. Here every write goes to a temp file
 * in the target's directory, is fsynced, and is then renamed over the target:
 * rename is atomic within a filesystem, so readers see either the old or the
 * new content, never a mix (a raw write whose reader verifies it may skip that: see
 * RawWriteOptions). Keys map to paths like unstorage's fs driver
 * ("a:b:c" → "<base>/a/b/c"), except in the `packed` mounts, whose small records share
 * bucket files behind a journal (see fs-packed.ts).
 *
 * A write is done whole on the writer thread (fs-writer.ts), and skips the mkdir of a
 * directory it knows exists.
 *
 * `prepare` (the store's open) takes the data directory's lock and `dispose` gives it back
 * (fs-lock.ts): one process per data directory.
 */
import { promises as fsp, type Dirent } from "node:fs";
import { dirname, join, relative, resolve, sep, isAbsolute } from "node:path";
import { defineDriver } from "unstorage";
import { DormantError } from "../../../runtime/index.ts";
import { isLockName, lockDir, type DirLock } from "./fs-lock.ts";
import { PACKED_DIR, PackedMount, type CompactAfter, type PackedIo } from "./fs-packed.ts";
import { removeFile, writeAtomically, writeInPlace } from "./fs-writer.ts";
import { randomText } from "../../random.ts";

/**
 * What a caller may say of a raw write. `inPlace`: the caller verifies what it reads back and
 * can tell a torn value from a whole one (a snapshot blob against its head's hash, a head slot
 * against its own), so the file is written over itself: no temp file, no rename, and a
 * directory fsync only when the file is new. A crash mid-write leaves a torn file. Other
 * drivers ignore it.
 */
export interface RawWriteOptions {
  inPlace?: boolean;
}

export interface FsAtomicOptions {
  /** Directory holding the data; created on first write if missing. */
  base: string;
  /** Mode for directories the driver creates (default 0o700, owner-only). */
  dirMode?: number;
  /** Mode for files the driver creates (default 0o600, owner-only). */
  fileMode?: number;
  /** Top-level mounts ("partitions") whose items are packed into bucket files: many small records, read all at once. */
  packed?: readonly string[];
  /** When a packed mount's journal is folded into its buckets (defaults in fs-packed.ts; tests make it small). */
  compactAfter?: CompactAfter;
  /** Told each time folding a packed mount's journal fails, and each time it works (fs-packed.ts). */
  onFold?: PackedIo["onFold"];
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

/** Files read at once by a bulk read of loose files. */
const READS_AT_ONCE = 64;
/** Directories remembered as existing. */
const KNOWN_DIRS = 10_000;

/** A copy the caller cannot change after the write was handed over. */
function copyOf(bytes: Uint8Array | string): Buffer {
  return typeof bytes === "string" ? Buffer.from(bytes, "utf8") : Buffer.from(bytes);
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

  /** An item key's segments, refusing any that name no file of their own under `base`. */
  const checkedSegments = (key: string, segments = segmentsOf(key)): string[] => {
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
    return segments;
  };

  /** Absolute path for an item key, refusing anything that could leave `base`. */
  const pathOf = (key: string): string => {
    const path = join(base, ...checkedSegments(key));
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

  /**
   * Directories known to exist, so a write need not mkdir its directory again: those made
   * or written into lately (bounded, the oldest forgotten first). One removed under us is
   * made again by the write that finds it gone.
   */
  const knownDirs = new Set<string>();

  const remember = (dir: string): void => {
    knownDirs.delete(dir);
    knownDirs.add(dir);
    if (knownDirs.size > KNOWN_DIRS) knownDirs.delete(knownDirs.values().next().value!);
  };

  /** Forget what is known of `dir` and every directory under it: they were removed, or may have been. */
  const forget = (dir: string): void => {
    const under = (path: string) => path === dir || path.startsWith(dir + sep);
    for (const known of [...knownDirs]) if (under(known)) knownDirs.delete(known);
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

  const writeAtomic = (key: string, data: Uint8Array | string): Promise<void> => writeFileAtomic(pathOf(key), data);

  /** `syncDirAfter: false` for a caller that writes many files into one directory and fsyncs it once after them. */
  const writeFileAtomic = (target: string, data: Uint8Array | string, syncDirAfter = true): Promise<void> =>
    intoDir(target, (dir, mkdir) => {
      const temp = join(dir, `.${target.slice(dir.length + 1)}.${process.pid}.${randomText(6, "hex")}.tmp`);
      return writeAtomically({ dir, mkdir, dirMode, temp, fileMode, target, data, syncDir: syncDirAfter });
    });

  /** A file written over itself (see RawWriteOptions). */
  const writeFileInPlace = (target: string, data: Uint8Array): Promise<void> =>
    intoDir(target, (dir, mkdir) => writeInPlace({ dir, mkdir, dirMode, fileMode, target, data }));

  /**
   * One write on the writer thread (fs-writer.ts) into `target`'s directory, made first unless
   * known to exist; made again and the write tried once more if it was removed under us (by
   * hand, or by a clear racing this write).
   */
  const intoDir = async (target: string, write: (dir: string, mkdir: boolean) => Promise<void>): Promise<void> => {
    const dir = dirname(target);
    const known = knownDirs.has(dir);
    try {
      await write(dir, !known);
    } catch (err) {
      if (!known || errnoCode(err) !== "ENOENT") throw err;
      forget(dir);
      await write(dir, true);
    }
    remember(dir);
  };

  const read = async (key: string, encoding?: "utf8"): Promise<Buffer | string | null> => {
    try {
      return encoding ? await fsp.readFile(pathOf(key), encoding) : await fsp.readFile(pathOf(key));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };

  const packedIo: PackedIo = { writeFile: writeFileAtomic, syncDir, isTempFile: isTempFileName, dirMode, fileMode, onFold: options.onFold };
  let lock: DirLock | undefined;
  const packed = new Map((options.packed ?? []).map((mount) => [mount, new PackedMount(base, mount, packedIo, options.compactAfter)]));

  /** The packed mount a key is in, with the key relative to it; undefined for a key stored as its own file. */
  const packedOf = (key: string): { mount: PackedMount; rest: string } | undefined => {
    const segments = segmentsOf(key);
    const mount = segments.length > 1 ? packed.get(segments[0]!) : undefined;
    if (!mount) return undefined;
    checkedSegments(key, segments); // the same keys are refused as anywhere else (no path is made: a packed item has no file)
    return { mount, rest: segments.slice(1).join(":") };
  };

  /** Keys of every packed item under `prefix` (its whole segments), as full keys. */
  const packedKeys = async (prefix: string): Promise<string[]> => {
    const [first, ...rest] = segmentsOf(prefix);
    const mounts = first === undefined ? [...packed.values()] : [packed.get(first)].filter((m) => m !== undefined);
    const within = rest.length > 0 ? `${rest.join(":")}:` : "";
    const keys = await Promise.all(
      mounts.map(async (mount) => (await mount.entries()).filter(({ key }) => key.startsWith(within)).map(({ key }) => `${mount.mount}:${key}`)),
    );
    return keys.flat();
  };

  /** Keys of all files under `dir`, relative to base, skipping temp files and packed buckets. */
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
        if (dir === base && isLockName(entry.name)) return [];
        if (entry.isDirectory()) return entry.name === PACKED_DIR ? [] : walk(path);
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
      const inPack = packedOf(key);
      if (inPack) return (await inPack.mount.get(inPack.rest)) !== null;
      try {
        return (await fsp.stat(pathOf(key))).isFile();
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async getItem(key: string) {
      const inPack = packedOf(key);
      if (inPack) return (await inPack.mount.get(inPack.rest))?.toString("utf8") ?? null;
      return read(key, "utf8");
    },
    getItemRaw(key: string) {
      const inPack = packedOf(key);
      if (inPack) return inPack.mount.get(inPack.rest);
      return read(key);
    },
    setItem(key: string, value: string) {
      const inPack = packedOf(key);
      if (inPack) return inPack.mount.set(inPack.rest, Buffer.from(value, "utf8"));
      return writeAtomic(key, value);
    },
    setItemRaw(key: string, value: unknown, options?: RawWriteOptions) {
      const inPack = packedOf(key);
      if (inPack) return inPack.mount.set(inPack.rest, copyOf(toBytes(value, key)));
      const bytes = toBytes(value, key);
      return options?.inPlace && typeof bytes !== "string" ? writeFileInPlace(pathOf(key), bytes) : writeAtomic(key, bytes);
    },
    async removeItem(key: string) {
      const inPack = packedOf(key);
      if (inPack) return inPack.mount.remove(inPack.rest);
      await removeFile(pathOf(key));
    },
    /** Every item under a whole-segment prefix, or the named ones, as raw bytes: few reads where items are packed. */
    async getEntriesRaw(prefix: string, keys?: readonly string[]): Promise<{ key: string; value: Buffer }[]> {
      const [first, ...rest] = segmentsOf(prefix);
      const mount = first === undefined ? undefined : packed.get(first);
      const within = rest.length > 0 ? `${rest.join(":")}:` : "";
      if (mount) {
        const found = await mount.entries(keys?.map((key) => within + segmentsOf(key).join(":")));
        return found.filter(({ key }) => key.startsWith(within)).map(({ key, value }) => ({ key: key.slice(within.length), value }));
      }
      const names = keys ?? (await walk(dirOf(prefix))).map((key) => key.slice(segmentsOf(prefix).join(":").length + 1));
      const found: { key: string; value: Buffer }[] = [];
      let next = 0;
      // A bounded number of files open at once: a mount may hold far more files than the process may open.
      const reader = async () => {
        while (next < names.length) {
          const key = names[next++]!;
          const value = await read(`${prefix}${key}`);
          if (value) found.push({ key, value: value as Buffer });
        }
      };
      await Promise.all(Array.from({ length: Math.min(READS_AT_ONCE, names.length) }, reader));
      return found;
    },
    async getKeys(prefix: string | undefined) {
      // unstorage filters by prefix itself; starting the walk at the prefix's
      // directory just avoids reading unrelated mounts. A prefix that ends
      // mid-segment ("snap") must walk from its parent. The root mount gets
      // `undefined`.
      const p = prefix ?? "";
      const wholeSegments = p === "" || /[:/\\]$/.test(p);
      const from = wholeSegments ? p : segmentsOf(p).slice(0, -1).join(":");
      // Packed keys first: listing them folds a store's loose files from before packing into its buckets.
      const inPacks = await packedKeys(from);
      return [...(await walk(dirOf(from))), ...inPacks];
    },
    async clear(prefix: string | undefined) {
      // Unlike unstorage's fs driver, honour the prefix: clearing one mount
      // must not wipe the others. The base directory itself is kept, and its lock.
      const [first, ...rest] = segmentsOf(prefix ?? "");
      const inPack = first === undefined ? undefined : packed.get(first);
      // A packed mount is cleared through its journal, which its kept-open file and overlay would otherwise outlive.
      if (inPack) return inPack.clear(rest.length > 0 ? `${rest.join(":")}:` : "");
      const dir = dirOf(prefix ?? "");
      if (dir !== base) {
        forget(dir);
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
      forget(base);
      await Promise.all(names.filter((n) => !isLockName(n)).map((n) => packed.get(n)?.clear("") ?? fsp.rm(join(base, n), { recursive: true, force: true })));
    },
    /**
     * Take the data directory's lock, then fold a store's loose record files from before packing into buckets:
     * at open, however long it takes, before any operation's deadline runs.
     */
    async prepare() {
      lock ??= await lockDir(base, { dirMode, fileMode });
      try {
        await Promise.all([...packed.values()].map((mount) => mount.prepare()));
      } catch (error) {
        await lock.release();
        lock = undefined;
        throw error;
      }
    },
    /** Wait for the packed mounts' writes under way, close their journals, and give the lock back. */
    async dispose() {
      await Promise.all([...packed.values()].map((mount) => mount.close()));
      forget(base);
      await lock?.release();
      lock = undefined;
    },
  };
});
