// The in-process timer queue: a binary min-heap ordered by due time, then by arming
// order. Re-arming and disarming leave the old heap entry behind as garbage (checked
// against the live map when popped), so both are O(log n); the heap is compacted when
// garbage outgrows the live entries. A claim re-enters the heap at its lease expiry.
import type { ClaimedTimer, TimerQueue } from "./timer-queue.ts";

interface Entry {
  key: string;
  /** When the entry comes out of the heap: the due time, or a claim's lease expiry. */
  wakeAt: number;
  /** The instant the key was armed for. */
  at: number;
  seq: number;
  claim?: number;
}

export class HeapTimerQueue implements TimerQueue {
  #heap: Entry[] = [];
  readonly #live = new Map<string, Entry>();
  #seq = 0;

  async arm(key: string, at: number): Promise<void> {
    this.#set({ key, wakeAt: at, at, seq: this.#seq++ });
  }

  async disarm(key: string): Promise<void> {
    this.#live.delete(key);
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedTimer[]> {
    const claimed: ClaimedTimer[] = [];
    while (claimed.length < limit) {
      const top = this.#peek();
      if (!top || top.wakeAt > now) break;
      this.#pop();
      const seq = this.#seq++;
      this.#set({ key: top.key, wakeAt: now + leaseMs, at: top.at, seq, claim: seq });
      claimed.push({ key: top.key, at: top.at, claim: seq });
    }
    return claimed;
  }

  async extend(timer: ClaimedTimer, until: number): Promise<boolean> {
    const entry = this.#live.get(timer.key);
    if (entry?.claim !== timer.claim) return false;
    this.#set({ ...entry, wakeAt: until, seq: this.#seq++ });
    return true;
  }

  async ack(timer: ClaimedTimer): Promise<void> {
    if (this.#live.get(timer.key)?.claim === timer.claim) this.#live.delete(timer.key);
  }

  async nextAt(): Promise<number | undefined> {
    return this.#peek()?.wakeAt;
  }

  async size(): Promise<number> {
    return this.#live.size;
  }

  async close(): Promise<void> {
    this.#heap = [];
    this.#live.clear();
  }

  #set(entry: Entry): void {
    this.#live.set(entry.key, entry);
    this.#push(entry);
    if (this.#heap.length > 1024 && this.#heap.length > 2 * this.#live.size) this.#compact();
  }

  /** The earliest live entry, dropping garbage above it. */
  #peek(): Entry | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!;
      if (this.#live.get(top.key) === top) return top;
      this.#pop();
    }
    return undefined;
  }

  #compact(): void {
    // A sorted array is a valid heap.
    this.#heap = [...this.#live.values()].sort((a, b) => (before(a, b) ? -1 : 1));
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heap.length && before(heap[left]!, heap[least]!)) least = left;
      if (right < heap.length && before(heap[right]!, heap[least]!)) least = right;
      if (least === i) return;
      [heap[i], heap[least]] = [heap[least]!, heap[i]!];
      i = least;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.wakeAt < b.wakeAt || (a.wakeAt === b.wakeAt && a.seq < b.seq);
}
