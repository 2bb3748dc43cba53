// The runs of words that changed in a 4 KiB chunk of a memory, as a freeze encodes them:
// found by a small WebAssembly function (changed-runs.wat) that compares four words at a
// time. A freeze of the QuickJS counter scans some 44 changed chunks; the same scan in
// JavaScript read a word in about 4 ns: encoding the counter's snapshot took 296 µs with it and
// 183 µs with this (602 and 433 just after idle), the image the same.

/** changed-runs.wat, compiled (test/runtime/changed-runs.test.ts checks that it is). */
export const CHANGED_RUNS_WASM =
  "AGFzbQEAAAABBQFgAAF/AwIBAAUDAQABBxECBm1lbW9yeQIABHJ1bnMAAArdAQHaAQEFf0F/IQFBfSECQYDAACEDAkADQAJAA0AgAEGACE8NAyAAQQJ0/QAEACAAQQJ0/QAEgCD9Uf1TDQEgAEEEaiEADAALCyAAQQRqIQQDQCAAQQJ0KAIAIABBAnQoAoAgRwRAIAAgAmtBAkoEQCABQQBOBEAgAyABNgIAIAMgAkEBaiABazYCBCADQQhqIQMLIAAhAQsgACECCyAAQQFqIQAgACAESQ0ACwwACwsgAUEATgRAIAMgATYCACADIAJBAWogAWs2AgQgA0EIaiEDCyADQYDAAGtBAnYLAE0EbmFtZQIeAQAFAAF3AQVzdGFydAIEbGFzdAMDb3V0BARxdWFkAyYBAAUABGRvbmUBBXdvcmRzAgdkaWZmZXJzAwVlcXVhbAQEZWFjaA==";

/** Words in a chunk (the module's layout is made for this many). */
export const CHUNK_WORDS = 1024;
const PRISTINE_AT = CHUNK_WORDS;
const RUNS_AT = 2 * CHUNK_WORDS;

let scanner: { words: Int32Array; runs: () => number } | undefined;

function instance(): { words: Int32Array; runs: () => number } {
  if (scanner) return scanner;
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(CHANGED_RUNS_WASM, "base64")));
  const memory = exports.memory as WebAssembly.Memory;
  return (scanner = { words: new Int32Array(memory.buffer), runs: exports.runs as () => number });
}

/**
 * The runs of words in the chunk from word `first` of `now` that differ from `was` (zeros
 * past its end), as pairs: the run's first word in the chunk, its words. Words that differ
 * with at most one equal word between them are one run.
 */
export function changedRuns(now: Int32Array, was: Int32Array, first: number): Int32Array {
  const { words, runs } = instance();
  words.set(now.subarray(first, first + CHUNK_WORDS), 0);
  const kept = Math.max(0, Math.min(CHUNK_WORDS, was.length - first));
  words.set(was.subarray(first, first + kept), PRISTINE_AT);
  if (kept < CHUNK_WORDS) words.fill(0, PRISTINE_AT + kept, PRISTINE_AT + CHUNK_WORDS);
  return words.slice(RUNS_AT, RUNS_AT + runs());
}
