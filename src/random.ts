// Random ids for things made on every push or write (delivery ids, temp file names): their
// bytes are drawn from the system's generator 4 KiB at a time, since each call into it
// costs about 7 µs here, as much as the rest of the id.
import { randomFillSync } from "node:crypto";

const pool = Buffer.alloc(4096);
let at = pool.length;

/** `bytes` random bytes (at most 4,096), as text in `encoding`. */
export function randomText(bytes: number, encoding: "base64url" | "hex"): string {
  if (at + bytes > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const text = pool.toString(encoding, at, at + bytes);
  at += bytes;
  return text;
}
