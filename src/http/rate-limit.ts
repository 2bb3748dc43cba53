// A token bucket per key (a push token): `perSecond` requests on average, bursts up to
// `burst`. The clock is passed in.

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

  /** Take one request's worth; returns 0 when allowed, else the seconds to wait. */
  take(key: string): number {
    const now = this.#clock();
    const { perSecond, burst } = this.#limit;
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    if (!this.#buckets.has(key)) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#forgetFull(now);
      this.#buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / perSecond);
  }

  #forgetFull(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.#limit.perSecond >= this.#limit.burst) this.#buckets.delete(key);
    }
  }
}
