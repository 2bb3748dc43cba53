// Operator credentials: the admin token (and an optional metrics token), checked in
// constant time and refused at start when guessable; and browser sessions, random
// server-side ids with an expiry, so the token itself never sits in a cookie.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Storage } from "unstorage";

export const SESSION_COOKIE = "dormant_session";

export const TOKEN_ADVICE = "Make one with `openssl rand -hex 32` or `node -e \"console.log(crypto.randomBytes(32).toString('hex'))\"`.";
const MIN_TOKEN_LENGTH = 32;
/**
 * Estimated bits a configured token must carry. The estimate undercounts short strings: a
 * random 32-character hex string scores about 110 (never below 90 in 20,000 draws).
 */
const MIN_TOKEN_BITS = 80;

export function generateToken(): string {
  return randomBytes(32).toString("hex");
}

export function sameSecret(given: string, expected: string): boolean {
  // Hash first: equal lengths for timingSafeEqual, and no early exit on length.
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Why a configured token is too weak to guard the admin surface, or undefined when it will do. */
export function weakTokenReason(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH) return `it has ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} random ones`;
  if (!/^[\x21-\x7e]+$/.test(token)) return "it has spaces, control or non-ASCII characters; use letters, digits and punctuation";
  // Shannon estimate over the characters used: low for repeated or few distinct characters.
  const counts = new Map<string, number>();
  for (const char of token) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= n * Math.log2(n / token.length);
  if (bits < MIN_TOKEN_BITS) return `it carries about ${Math.floor(bits)} bits of randomness; at least ${MIN_TOKEN_BITS} are needed`;
  for (let i = 0; i + 16 <= token.length; i++) {
    if (token.indexOf(token.slice(i, i + 8), i + 8) !== -1) return "it repeats a part of itself; use random characters";
  }
  return undefined;
}

/** The bearer token of an Authorization header, if it has one. */
export function bearerOf(header: string | undefined): string | undefined {
  return header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
}

/**
 * Signed-in browsers. A single host keeps them in memory (a restart signs everyone out);
 * the hosts of a cluster keep them in the store they share, so a session opened on one
 * host is good on all of them and a sign-out on one ends it everywhere. A session is kept
 * under an HMAC of its id keyed by the admin token: a new token ends every session.
 */
export class Sessions {
  /** Key of the id → expiry (Unix ms). Keys, so lookups do not compare the secret itself. */
  readonly #expiry = new Map<string, number>();
  readonly #shared: Storage<{ expires: number }> | undefined;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #clock: () => number;
  readonly #secret: string;
  #sweptAt = 0;

  constructor(ttlMs: number, clock: () => number, { secret, shared, max = 10_000 }: { secret: string; shared?: Storage | undefined; max?: number }) {
    this.#secret = secret;
    this.#ttlMs = ttlMs;
    this.#clock = clock;
    this.#max = max;
    this.#shared = shared as Storage<{ expires: number }> | undefined;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** A new session; returns its id (256 random bits), the cookie's value. */
  async open(): Promise<string> {
    const now = this.#clock();
    const id = randomBytes(32).toString("base64url");
    if (this.#shared) {
      await this.#sweep(this.#shared, now);
      await this.#shared.setItem(this.#keyOf(id), { expires: now + this.#ttlMs });
      return id;
    }
    for (const [key, expires] of this.#expiry) if (expires <= now) this.#expiry.delete(key);
    // Past the cap the oldest session goes (Maps iterate in insertion order).
    if (this.#expiry.size >= this.#max) this.#expiry.delete(this.#expiry.keys().next().value!);
    this.#expiry.set(this.#keyOf(id), now + this.#ttlMs);
    return id;
  }

  async valid(id: string | undefined): Promise<boolean> {
    if (!id) return false;
    const key = this.#keyOf(id);
    const expires = this.#shared ? (await this.#shared.getItem(key))?.expires : this.#expiry.get(key);
    if (expires === undefined) return false;
    if (expires > this.#clock()) return true;
    await this.close(id);
    return false;
  }

  async close(id: string | undefined): Promise<void> {
    if (!id) return;
    if (this.#shared) await this.#shared.removeItem(this.#keyOf(id));
    else this.#expiry.delete(this.#keyOf(id));
  }

  #keyOf(id: string): string {
    return createHmac("sha256", this.#secret).update(id).digest("base64url");
  }

  /** Expired shared sessions are removed at most once per session lifetime, when one is opened. */
  async #sweep(shared: Storage<{ expires: number }>, now: number): Promise<void> {
    if (now - this.#sweptAt < this.#ttlMs) return;
    this.#sweptAt = now;
    for (const key of await shared.getKeys()) {
      const expires = (await shared.getItem(key))?.expires;
      if (expires === undefined || expires <= now) await shared.removeItem(key);
    }
  }
}
