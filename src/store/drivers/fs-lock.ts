/**
 * One process per fs data directory: the store takes `<dir>/dormant.lock` when it opens and
 * gives it back when it closes. Two hosts appending to one record journal and folding it
 * each their own way would lose acknowledged writes (fs-packed.ts).
 *
 * The lock is a folder holding one file, named for its holder, that says who holds it: the
 * pid, the host name, the machine's boot id and the process's start time. A starter makes
 * such a folder under another name and renames it to `dormant.lock`, which only succeeds
 * while no lock is there (or an empty one): of two starters, one wins.
 *
 * No file stays open and no kernel lock is used, so a holder that dies (SIGKILL, a power cut)
 * leaves its lock behind. A starter that finds a lock removes the holder's file when the
 * holder is gone, then tries the rename again: the holder's file is named for it alone, so a
 * slow starter never removes the file of one that won meanwhile, and again only one of them
 * takes the emptied lock. A holder is gone when its pid runs nothing on this machine, runs a
 * zombie, or runs a process started at another time (the pid was given again), or when the
 * machine has booted since. On another host name it cannot be seen: that lock is only
 * reported, with what to do.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { DormantError } from "../../../runtime/index.ts";

export const LOCK_NAME = "dormant.lock";
/** Tries before giving up on a lock that keeps changing hands under this starter. */
const TRIES = 10;

interface Holder {
  pid: number;
  host: string;
  /** The machine's boot id: a lock from before a reboot is stale whatever its pid. */
  boot?: string | undefined;
  /** The process's start time (clock ticks since boot): a pid given again runs another one. */
  start?: number | undefined;
  /** When it took the lock. */
  since: string;
}

export interface DirLock {
  release(): Promise<void>;
}

/** The lock and the folders starters prepare it in: never a key of the store. */
export function isLockName(name: string): boolean {
  return name === LOCK_NAME || name.startsWith(`${LOCK_NAME}.`);
}

/** Take `dir`'s lock, or fail with `store-locked` naming who holds it. */
export async function lockDir(dir: string, modes: { dirMode: number; fileMode: number }): Promise<DirLock> {
  const lock = join(dir, LOCK_NAME);
  const name = `${process.pid}.${randomBytes(6).toString("hex")}`;
  const prepared = join(dir, `${LOCK_NAME}.${name}`);
  try {
    await fsp.mkdir(prepared, { mode: modes.dirMode });
    await fsp.writeFile(join(prepared, name), `${JSON.stringify(self())}\n`, { mode: modes.fileMode, flag: "wx" });
    for (let tries = 0; tries < TRIES; tries++) {
      try {
        await fsp.rename(prepared, lock);
        return { release: () => release(lock, name) };
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
      }
      const holders = await holdersOf(lock);
      const live = holders.find(({ holder }) => holder && !gone(holder));
      if (live) throw lockedError(dir, lock, live.holder!);
      // Each file names one holder, gone: removing it never removes a lock taken meanwhile.
      for (const stale of holders) await fsp.rm(join(lock, stale.name), { force: true });
    }
    const churn = `The lock ${lock} on the data directory ${dir} kept changing hands while this host tried to take it. Start one host at a time.`;
    throw new DormantError("store-locked", churn, { details: { dir } });
  } catch (error) {
    if (error instanceof DormantError) throw error;
    const reason = (error as Error).message;
    throw new DormantError("store-unavailable", `Cannot take the lock ${lock} on the data directory ${dir}: ${reason}. Check that the directory is writable.`, {
      cause: error,
      details: { dir },
    });
  } finally {
    // Gone once renamed into place; left only when this starter did not take the lock.
    await fsp.rm(prepared, { recursive: true, force: true });
  }
}

async function release(lock: string, name: string): Promise<void> {
  await fsp.rm(join(lock, name), { force: true });
  // Only an empty folder goes: another host may have taken the lock the moment it was empty.
  await fsp.rmdir(lock).catch(() => undefined);
}

/** The files in the lock, and who each says holds it (undefined when unreadable: a power cut before it reached the disk). */
async function holdersOf(lock: string): Promise<{ name: string; holder: Holder | undefined }[]> {
  const names = await fsp.readdir(lock).catch((error: { code?: string }) => {
    if (error.code === "ENOENT") return [] as string[]; // released meanwhile
    throw error;
  });
  return Promise.all(
    names.map(async (name) => {
      const text = await fsp.readFile(join(lock, name), "utf8").catch((error: { code?: string }) => {
        if (error.code === "ENOENT") return ""; // taken out meanwhile by its holder, or by another starter
        throw error;
      });
      let holder: Holder | undefined;
      try {
        const parsed = JSON.parse(text) as Holder;
        if (Number.isSafeInteger(parsed.pid) && parsed.pid > 0 && typeof parsed.host === "string") holder = parsed;
      } catch {
        // Not what a holder writes: never a live one's, whose file is whole before it is in the lock.
      }
      return { name, holder };
    }),
  );
}

function self(): Holder {
  return { pid: process.pid, host: hostname(), boot: bootId(), start: processStat(process.pid)?.start, since: new Date().toISOString() };
}

/** Whether the holder no longer runs. Only a process on this machine can be checked. */
function gone(holder: Holder): boolean {
  if (holder.host !== hostname()) return false;
  const boot = bootId();
  if (boot !== undefined && holder.boot !== undefined && holder.boot !== boot) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as { code?: string }).code === "ESRCH") return true;
  }
  const now = processStat(holder.pid);
  return now !== undefined && (now.state === "Z" || (holder.start !== undefined && now.start !== holder.start));
}

function bootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return undefined; // not Linux: a reboot is told by the pid alone
  }
}

/** A process's state and start time, from /proc (Linux); undefined elsewhere or when it is gone. */
function processStat(pid: number): { state: string; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command name (in parentheses, and it may hold any character): the state, then starttime 19 fields on.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0]!, start: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

function lockedError(dir: string, lock: string, holder: Holder): DormantError<"store-locked"> {
  const who = `pid ${holder.pid}${holder.pid === process.pid && holder.host === hostname() ? " (this process)" : ""} on ${holder.host}, since ${holder.since}`;
  const elsewhere = holder.host !== hostname();
  const message = elsewhere
    ? `The data directory ${dir} is in use by a Dormant host on another machine (${who}), which cannot be checked from ${hostname()}. ` +
      `Stop that host; if it no longer runs, remove ${lock}. Or start this one with another data directory (--data-dir, or --store fs:<dir>).`
    : `The data directory ${dir} is in use by another Dormant host (${who}). Stop that host, or start this one with another data directory (--data-dir, or --store fs:<dir>).`;
  return new DormantError("store-locked", message, { details: { dir, pid: holder.pid, host: holder.host } });
}
