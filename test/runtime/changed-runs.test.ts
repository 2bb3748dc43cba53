// The scan a freeze runs over each changed chunk: the module it runs is the WAT beside it,
// compiled, and it finds exactly the runs of changed words the snapshot format stores.
import { readFile } from "node:fs/promises";
import { parse } from "@bytecodealliance/jco";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CHANGED_RUNS_WASM, CHUNK_WORDS, changedRuns } from "../../runtime/snapshot/changed-runs.ts";

/** The runs as the format defines them, a word at a time: differing words with at most one equal word between them form one run. */
function expectedRuns(now: Int32Array, was: Int32Array, first: number): number[] {
  const runs: number[] = [];
  let start = -1;
  let last = -3;
  for (let w = first; w < first + CHUNK_WORDS; w++) {
    if (now[w] === (w < was.length ? was[w] : 0)) continue;
    if (w - last > 2) {
      if (start >= 0) runs.push(start - first, last + 1 - start);
      start = w;
    }
    last = w;
  }
  if (start >= 0) runs.push(start - first, last + 1 - start);
  return runs;
}

describe("the changed-runs scan", () => {
  it("runs the module its WAT source compiles to", async () => {
    const compiled = await parse(await readFile(new URL("../../runtime/snapshot/changed-runs.wat", import.meta.url), "utf8"));
    expect(Buffer.from(compiled).toString("base64")).toBe(CHANGED_RUNS_WASM);
  });

  it("finds no run in a chunk as it was", () => {
    const was = Int32Array.from({ length: 3 * CHUNK_WORDS }, (_, i) => i * 7);
    expect([...changedRuns(was.slice(), was, CHUNK_WORDS)]).toEqual([]);
  });

  it("joins changed words one equal word apart into one run and keeps two apart in two, up to the chunk's last word", () => {
    const was = new Int32Array(2 * CHUNK_WORDS);
    const now = was.slice();
    for (const w of [0, 2, 5, 6, CHUNK_WORDS - 1]) now[CHUNK_WORDS + w] = 1;
    expect([...changedRuns(now, was, CHUNK_WORDS)]).toEqual([0, 3, 5, 2, CHUNK_WORDS - 1, 1]);
  });

  it("finds the runs the format defines in any chunk, with pristine words past its end read as zeros", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(CHUNK_WORDS - 1), fc.integer()), { maxLength: 400 }),
        fc.nat(CHUNK_WORDS + 8),
        fc.nat(2),
        (edits, pristineWords, chunk) => {
          const now = Int32Array.from({ length: 3 * CHUNK_WORDS }, (_, i) => (i < chunk * CHUNK_WORDS + pristineWords ? i * 31 : 0));
          const was = now.slice(0, chunk * CHUNK_WORDS + pristineWords);
          for (const [w, value] of edits) now[chunk * CHUNK_WORDS + w] = value;
          expect([...changedRuns(now, was, chunk * CHUNK_WORDS)]).toEqual(expectedRuns(now, was, chunk * CHUNK_WORDS));
        },
      ),
      { numRuns: 500 },
    );
  });
});
