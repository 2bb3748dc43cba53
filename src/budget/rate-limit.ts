// A token bucket per key (a push token, a client's failed sign-ins, a partition's
// activations): `perSecond` on average, bursts up to `burst`. The clock is passed in.

export interface RateLimit {
  perSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept at most; full ones are forgotten first (they carry no state). */
const MAX_BUCKETS = 100_000;

export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #clock: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limit: RateLimit, clock: () => number) {
    this.#limit = limit;
    this.#clock = clock;
  }

  /** Take one request's worth; returns 0 when allowed, else the whole seconds to wait (for Retry-After). */
  take(key: string): number {
    return Math.ceil(this.takeMs(key) / 1000);
  }

  /** Take one request's worth; returns 0 when allowed, else the milliseconds to wait. */
  takeMs(key: string): number {
    const bucket = this.#refill(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return this.#msFor(bucket);
  }

  /** The seconds to wait before `take` would allow one, taking nothing. */
  wait(key: string): number {
    const bucket = this.#refill(key);
    return bucket.tokens >= 1 ? 0 : Math.ceil(this.#msFor(bucket) / 1000);
  }

  /** Whole tokens in the key's bucket now. */
  available(key: string): number {
    return Math.floor(this.#refill(key).tokens);
  }

  /** Spend `n` tokens taken outside `take` (never below empty). */
  spend(key: string, n: number): void {
    const bucket = this.#refill(key);
    bucket.tokens = Math.max(0, bucket.tokens - n);
  }

  #refill(key: string): Bucket {
    const now = this.#clock();
    const { perSecond, burst } = this.#limit;
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    if (!this.#buckets.has(key)) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#forgetFull(now);
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }

  #msFor(bucket: Bucket): number {
    return Math.ceil(((1 - bucket.tokens) / this.#limit.perSecond) * 1000);
  }

  #forgetFull(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.#limit.perSecond >= this.#limit.burst) this.#buckets.delete(key);
    }
  }
}
