// Atomic file writes done whole on a thread of their own: write a temp file, fsync it, rename
// it over the target, fsync the directory. Through fs/promises each of those steps is a
// round trip to libuv's threadpool, and each costs the main thread 30–50 µs here (a
// dispatch and a completion): eight per write, two writes per freeze. Here a write is one
// message there and one back, and writes asked for together go together. File removals
// go the same way (a removal through fs/promises is two round trips), and in order with
// the writes: a removal asked for after a write of the same file comes after it.
//
// One writer serves every fs store of the process. It holds the process open only while
// writes are pending, and one that dies fails what it had and is started again.
import { Worker } from "node:worker_threads";

export interface AtomicWrite {
  /** The target's directory, made first (recursively, with `dirMode`) when `mkdir`. */
  dir: string;
  mkdir: boolean;
  dirMode: number;
  /** Written with `fileMode`, never following or reusing an existing file ("wx"), then renamed over `target`. */
  temp: string;
  fileMode: number;
  target: string;
  data: Uint8Array | string;
  /** fsync the directory after the rename, so the rename survives power loss. */
  syncDir: boolean;
}

/** An error as the writer thread reports it: what Node's fs error carried, so callers can tell ENOENT from ENOSPC. */
interface WriteError {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

// Plain CommonJS, evaluated in the worker: nothing to compile or resolve.
const WRITER = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
parentPort.on("message", (batch) => parentPort.postMessage(batch.map((item) => (item.remove !== undefined ? remove(item) : item.temp === undefined ? writeInPlace(item) : write(item)))));
function failed(id, error) {
  return { id, error: { message: error.message, code: error.code, errno: error.errno, syscall: error.syscall, path: error.path } };
}
function remove({ id, remove }) {
  try {
    fs.rmSync(remove, { force: true });
    return { id };
  } catch (error) {
    return failed(id, error);
  }
}
function writeInPlace({ id, dir, mkdir, dirMode, fileMode, target, data }) {
  let fd;
  let created = false;
  try {
    if (mkdir) fs.mkdirSync(dir, { recursive: true, mode: dirMode });
    // Over the file's own blocks, cut to length after: truncating first would free them and allocate them again.
    try {
      fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
    } catch (error) {
      if (error.code !== "ENOENT") throw error;
      fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, fileMode);
      created = true;
    }
    for (let at = 0; at < data.length; ) at += fs.writeSync(fd, data, at, data.length - at, at);
    if (!created && fs.fstatSync(fd).size !== data.length) fs.ftruncateSync(fd, data.length);
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  } catch (error) {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    try { fs.rmSync(target, { force: true }); } catch {}
    return failed(id, error);
  }
  // A new file's name must reach the disk too; an overwritten one's already has.
  if (created) fsyncDir(dir);
  return { id };
}
function fsyncDir(dir) {
  // Some filesystems refuse to fsync a directory; a rename is still atomic for a crashed process.
  try { const d = fs.openSync(dir, "r"); try { fs.fsyncSync(d); } finally { fs.closeSync(d); } } catch {}
}
function write({ id, dir, mkdir, dirMode, temp, fileMode, target, data, syncDir }) {
  let fd;
  try {
    if (mkdir) fs.mkdirSync(dir, { recursive: true, mode: dirMode });
    fd = fs.openSync(temp, "wx", fileMode);
    if (typeof data === "string") fs.writeFileSync(fd, data);
    else for (let at = 0; at < data.length; ) at += fs.writeSync(fd, data, at, data.length - at);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, target);
  } catch (error) {
    if (fd !== undefined) try { fs.closeSync(fd); } catch {}
    try { fs.rmSync(temp, { force: true }); } catch {}
    return failed(id, error);
  }
  if (syncDir) fsyncDir(dir);
  return { id };
}
`;

/**
 * A file whose reader checks what it reads (a snapshot blob or head slot): written over the
 * file's own blocks and synced, without a temp file or a rename; the directory is fsynced only
 * when the file is new. A write cut short leaves a torn file, one that fails is removed.
 */
export interface InPlaceWrite {
  dir: string;
  mkdir: boolean;
  dirMode: number;
  fileMode: number;
  target: string;
  data: Uint8Array;
}

interface Writer {
  worker: Worker;
  pending: Map<number, { resolve: () => void; reject: (error: Error) => void }>;
  outbox: ((AtomicWrite | InPlaceWrite | { remove: string }) & { id: number })[];
}

let writer: Writer | undefined;
let nextId = 1;

/** Write `data` to `target` atomically and durably (see AtomicWrite). */
export function writeAtomically(write: AtomicWrite): Promise<void> {
  return send(write);
}

/** Write a file where it is (see InPlaceWrite), durably. */
export function writeInPlace(write: InPlaceWrite): Promise<void> {
  return send(write);
}

/** Remove a file (or nothing, if there is none), after every write and removal asked for before. */
export function removeFile(path: string): Promise<void> {
  return send({ remove: path });
}

function send(item: AtomicWrite | InPlaceWrite | { remove: string }): Promise<void> {
  const current = (writer ??= start());
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (current.pending.size === 0) current.worker.ref();
    current.pending.set(id, { resolve, reject });
    if (current.outbox.length === 0) queueMicrotask(() => flush(current));
    current.outbox.push({ ...item, id });
  });
}

function flush(current: Writer): void {
  const batch = current.outbox;
  current.outbox = [];
  current.worker.postMessage(batch);
}

function start(): Writer {
  const worker = new Worker(WRITER, { eval: true });
  const started: Writer = { worker, pending: new Map(), outbox: [] };
  worker.unref();
  worker.on("message", (answers: { id: number; error?: WriteError }[]) => {
    for (const { id, error } of answers) {
      const waiting = started.pending.get(id);
      started.pending.delete(id);
      if (error) waiting?.reject(Object.assign(new Error(error.message), error));
      else waiting?.resolve();
    }
    if (started.pending.size === 0) worker.unref();
  });
  const lost = (error: Error) => {
    if (writer === started) writer = undefined;
    for (const { reject } of started.pending.values())
      reject(new Error(`The file writer thread stopped (${error.message}); the write or removal was not made.`));
    started.pending.clear();
  };
  worker.on("error", lost);
  worker.on("exit", (code) => lost(new Error(`exit code ${code}`)));
  return started;
}
