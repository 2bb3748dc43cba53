// Operator credentials: the admin token (and an optional metrics token), checked in
// constant time and refused at start when guessable; and browser sessions, random
// server-side ids with an expiry, so the token itself never sits in a cookie.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

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

const digest = (id: string) => createHash("sha256").update(id).digest("base64url");

/** Signed-in browsers. Kept in memory: a restart signs everyone out. */
export class Sessions {
  /** Digest of the id → expiry (Unix ms). Digests, so lookups do not compare the secret itself. */
  readonly #expiry = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #clock: () => number;

  constructor(ttlMs: number, clock: () => number, max = 10_000) {
    this.#ttlMs = ttlMs;
    this.#clock = clock;
    this.#max = max;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** A new session; returns its id (256 random bits), the cookie's value. */
  open(): string {
    const now = this.#clock();
    for (const [key, expires] of this.#expiry) if (expires <= now) this.#expiry.delete(key);
    // Past the cap the oldest session goes (Maps iterate in insertion order).
    if (this.#expiry.size >= this.#max) this.#expiry.delete(this.#expiry.keys().next().value!);
    const id = randomBytes(32).toString("base64url");
    this.#expiry.set(digest(id), now + this.#ttlMs);
    return id;
  }

  valid(id: string | undefined): boolean {
    if (!id) return false;
    const key = digest(id);
    const expires = this.#expiry.get(key);
    if (expires === undefined) return false;
    if (expires > this.#clock()) return true;
    this.#expiry.delete(key);
    return false;
  }

  close(id: string | undefined): void {
    if (id) this.#expiry.delete(digest(id));
  }
}
