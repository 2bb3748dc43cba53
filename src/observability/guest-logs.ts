// Recent guest log lines per partition, for the admin API, `dormant logs` and the status
// page. Bounded three ways: lines and bytes per partition, and bytes for the whole host;
// past the host's cap the partition written to least recently loses its oldest lines first.
import type { LogLevel } from "../../runtime/index.ts";

export interface GuestLogLine {
  /** Increases by one with each line the host keeps, across partitions: ask for lines `since` one. */
  seq: number;
  at: number;
  level: LogLevel;
  message: string;
}

export interface GuestLogLimits {
  linesPerPartition: number;
  bytesPerPartition: number;
  hostBytes: number;
  /** Longer messages are cut to this many characters. */
  messageChars: number;
}

export const GUEST_LOG_LIMITS: GuestLogLimits = { linesPerPartition: 200, bytesPerPartition: 64 * 1024, hostBytes: 16 * 1024 * 1024, messageChars: 4096 };

/** What a line is counted as: its text (UTF-16 code units, close to bytes for log text) and a fixed overhead for the record. */
const OVERHEAD = 48;
const sizeOf = (line: GuestLogLine) => line.message.length + OVERHEAD;

interface Ring {
  lines: GuestLogLine[];
  bytes: number;
  /** Lines dropped to stay within the limits. */
  dropped: number;
}

export class GuestLogs {
  /** In order of the latest write: the first is the partition written to least recently. */
  readonly #rings = new Map<string, Ring>();
  readonly #clock: () => number;
  readonly #limits: GuestLogLimits;
  #bytes = 0;
  #seq = 0;

  constructor(clock: () => number, limits: Partial<GuestLogLimits> = {}) {
    this.#clock = clock;
    this.#limits = { ...GUEST_LOG_LIMITS, ...limits };
  }

  get bytes(): number {
    return this.#bytes;
  }

  add(partition: string, level: LogLevel, message: string): void {
    const { messageChars, linesPerPartition, bytesPerPartition, hostBytes } = this.#limits;
    const text = message.length > messageChars ? `${message.slice(0, messageChars)}… (${message.length - messageChars} more characters)` : message;
    const line: GuestLogLine = { seq: ++this.#seq, at: this.#clock(), level, message: text };
    const ring = this.#rings.get(partition) ?? { lines: [], bytes: 0, dropped: 0 };
    this.#rings.delete(partition); // re-inserted last: the most recently written
    this.#rings.set(partition, ring);
    ring.lines.push(line);
    ring.bytes += sizeOf(line);
    this.#bytes += sizeOf(line);
    while (ring.lines.length > linesPerPartition || (ring.bytes > bytesPerPartition && ring.lines.length > 1)) this.#dropOldest(partition, ring);
    for (const [other, oldest] of this.#rings) {
      if (this.#bytes <= hostBytes) break;
      while (this.#bytes > hostBytes && oldest.lines.length > (other === partition ? 1 : 0)) this.#dropOldest(other, oldest);
    }
  }

  /** A partition's kept lines, oldest first, after `since` (a seq), at most `limit` of the newest. */
  of(partition: string, since = 0, limit = Infinity): { lines: GuestLogLine[]; dropped: number } {
    const ring = this.#rings.get(partition);
    if (!ring) return { lines: [], dropped: 0 };
    const after = ring.lines.filter((line) => line.seq > since);
    return { lines: after.slice(Math.max(0, after.length - limit)), dropped: ring.dropped };
  }

  forget(partition: string): void {
    const ring = this.#rings.get(partition);
    if (!ring) return;
    this.#bytes -= ring.bytes;
    this.#rings.delete(partition);
  }

  #dropOldest(partition: string, ring: Ring): void {
    const line = ring.lines.shift()!;
    ring.bytes -= sizeOf(line);
    this.#bytes -= sizeOf(line);
    ring.dropped++;
    if (ring.lines.length === 0) this.#rings.delete(partition);
  }
}
