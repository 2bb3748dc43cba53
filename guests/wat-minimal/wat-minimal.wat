;; wat-minimal: a hand-written guest for the dormant:host/partition world.
;;
;; It counts the events it handles in a mutable global, and its activations in linear
;; memory, so a snapshot must carry both. Every event is answered with the count as
;; decimal text in the reply body (a push gets it as the HTTP response).
(module
  (import "dormant:host/log@0.1.0" "log" (func $log (param i32 i32 i32)))

  (memory (export "memory") 1)

  ;; Event count: state outside linear memory, restored from a snapshot's globals.
  (global $count (mut i32) (i32.const 0))
  ;; Bump allocator for what the host lowers into us (events, their strings and lists).
  (global $heap (mut i32) (i32.const 4096))

  ;; 0..11: on-activate's return area; 16..43: on-task's; 64..: activation count (i32);
  ;; 128..: text; 256..: decimal digits of the reply body.
  (data (i32.const 128) "wat-minimal activated")

  (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    ;; round the heap up to the alignment, then bump it
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    ;; grow by whole pages while the heap runs past the end of memory
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (drop (memory.grow (i32.const 1)))
        (br $grow)))
    (local.get $ptr))

  (func (export "dormant:host/lifecycle@0.1.0#on-activate") (param $reason i32) (result i32)
    (i32.store (i32.const 64) (i32.add (i32.load (i32.const 64)) (i32.const 1)))
    ;; log(level = info, message)
    (call $log (i32.const 2) (i32.const 128) (i32.const 21))
    ;; result<_, string>: ok
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.const 0))

  (func (export "cabi_post_dormant:host/lifecycle@0.1.0#on-activate") (param i32)
    (global.set $heap (i32.const 4096)))

  ;; on-task(event) -> result<option<reply>, string>; the event arrives by pointer.
  (func (export "dormant:host/handler@0.1.0#on-task") (param $event i32) (result i32)
    (local $n i32)
    (local $end i32)
    (local $start i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    ;; write the count as decimal digits, backwards from 288
    (local.set $n (global.get $count))
    (local.set $end (i32.const 288))
    (local.set $start (local.get $end))
    (loop $digits
      (local.set $start (i32.sub (local.get $start) (i32.const 1)))
      (i32.store8 (local.get $start) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digits (local.get $n)))
    ;; ok(some(reply { status: 200, headers: [], body: digits }))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store8 (i32.const 20) (i32.const 1))
    (i32.store16 (i32.const 24) (i32.const 200))
    (i32.store (i32.const 28) (i32.const 0))
    (i32.store (i32.const 32) (i32.const 0))
    (i32.store (i32.const 36) (local.get $start))
    (i32.store (i32.const 40) (i32.sub (local.get $end) (local.get $start)))
    (i32.const 16))

  (func (export "cabi_post_dormant:host/handler@0.1.0#on-task") (param i32)
    (global.set $heap (i32.const 4096)))
)
