;; The runs of words that differ in one 4 KiB chunk of a memory, for a freeze (see
;; changed-runs.ts, which holds this module compiled; test/runtime/changed-runs.test.ts
;; checks that it is). Memory: the chunk's current words at byte 0, its pristine words at
;; 4096; `runs` writes each run as two words, its first word in the chunk and its length,
;; from byte 8192, and returns how many words it wrote. Words that differ with at most one
;; equal word between them are one run (a new run costs a word). Four words are compared
;; at a time while they are equal, which is most of a changed chunk.
(module
  (memory (export "memory") 1)
  (func (export "runs") (result i32)
    (local $w i32) (local $start i32) (local $last i32) (local $out i32) (local $quad i32)
    (local.set $start (i32.const -1))
    (local.set $last (i32.const -3))
    (local.set $out (i32.const 8192))
    (block $done
      (loop $words
        (block $differs
          (loop $equal
            (br_if $done (i32.ge_u (local.get $w) (i32.const 1024)))
            (br_if $differs
              (v128.any_true
                (v128.xor
                  (v128.load (i32.shl (local.get $w) (i32.const 2)))
                  (v128.load offset=4096 (i32.shl (local.get $w) (i32.const 2))))))
            (local.set $w (i32.add (local.get $w) (i32.const 4)))
            (br $equal)))
        (local.set $quad (i32.add (local.get $w) (i32.const 4)))
        (loop $each
          (if (i32.ne
                (i32.load (i32.shl (local.get $w) (i32.const 2)))
                (i32.load offset=4096 (i32.shl (local.get $w) (i32.const 2))))
            (then
              (if (i32.gt_s (i32.sub (local.get $w) (local.get $last)) (i32.const 2))
                (then
                  (if (i32.ge_s (local.get $start) (i32.const 0))
                    (then
                      (i32.store (local.get $out) (local.get $start))
                      (i32.store offset=4 (local.get $out) (i32.sub (i32.add (local.get $last) (i32.const 1)) (local.get $start)))
                      (local.set $out (i32.add (local.get $out) (i32.const 8)))))
                  (local.set $start (local.get $w))))
              (local.set $last (local.get $w))))
          (local.set $w (i32.add (local.get $w) (i32.const 1)))
          (br_if $each (i32.lt_u (local.get $w) (local.get $quad))))
        (br $words)))
    (if (i32.ge_s (local.get $start) (i32.const 0))
      (then
        (i32.store (local.get $out) (local.get $start))
        (i32.store offset=4 (local.get $out) (i32.sub (i32.add (local.get $last) (i32.const 1)) (local.get $start)))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))))
    (i32.shr_u (i32.sub (local.get $out) (i32.const 8192)) (i32.const 2))))
