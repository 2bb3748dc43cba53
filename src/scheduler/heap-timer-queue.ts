// The in-process timer queue: a binary min-heap ordered by due time, then by arming
// order. Re-arming and disarming leave the old heap entry behind as garbage (checked
// against the live map when popped), so both are O(log n); the heap is compacted when
// garbage outgrows the live entries.
import type { DueTimer, TimerQueue } from "./timer-queue.ts";

interface Entry {
  key: string;
  at: number;
  seq: number;
}

export class HeapTimerQueue implements TimerQueue {
  #heap: Entry[] = [];
  readonly #live = new Map<string, Entry>();
  #seq = 0;

  async arm(key: string, at: number): Promise<void> {
    this.armNow(key, at);
  }

  /** Synchronous `arm`, for bulk loading. */
  armNow(key: string, at: number): void {
    const entry = { key, at, seq: this.#seq++ };
    this.#live.set(key, entry);
    this.#push(entry);
    if (this.#heap.length > 1024 && this.#heap.length > 2 * this.#live.size) this.#compact();
  }

  async disarm(key: string): Promise<void> {
    this.#live.delete(key);
  }

  async takeDue(now: number, limit: number): Promise<DueTimer[]> {
    const due: DueTimer[] = [];
    while (due.length < limit) {
      const top = this.#peek();
      if (!top || top.at > now) break;
      this.#pop();
      this.#live.delete(top.key);
      due.push({ key: top.key, at: top.at });
    }
    return due;
  }

  async nextAt(): Promise<number | undefined> {
    return this.#peek()?.at;
  }

  async size(): Promise<number> {
    return this.#live.size;
  }

  async close(): Promise<void> {
    this.#heap = [];
    this.#live.clear();
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
    this.#heap = [...this.#live.values()].sort((a, b) => a.at - b.at || a.seq - b.seq);
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
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
