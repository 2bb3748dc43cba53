;; wat-refuses-upgrade: a hand-written guest that fails every upgrade to it (tests use it
;; to check that a failed upgrade leaves the old version in place). It exports `handover`,
;; whose import-state refuses any state, and its on-activate refuses every activation.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))

  ;; 0..11: the return area of every export; 128..: the messages.
  (data (i32.const 128) "wat-refuses-upgrade cannot read any state it is handed")
  (data (i32.const 256) "wat-refuses-upgrade refuses every activation")

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (drop (memory.grow (i32.const 1)))
        (br $grow)))
    (local.get $ptr))

  ;; err(string) at the return area: discriminant 1, then the string's pointer and length.
  (func $err (param $ptr i32) (param $len i32) (result i32)
    (global.set $heap (i32.const 4096))
    (i32.store8 (i32.const 0) (i32.const 1))
    (i32.store (i32.const 4) (local.get $ptr))
    (i32.store (i32.const 8) (local.get $len))
    (i32.const 0))

  (func (export "dormant:host/lifecycle@0.1.0#on-activate") (param $reason i32) (result i32)
    (call $err (i32.const 256) (i32.const 44)))

  (func (export "dormant:host/handler@0.1.0#on-task") (param $event i32) (result i32)
    (call $err (i32.const 256) (i32.const 44)))

  ;; export-state() -> result<list<u8>, string>: ok, an empty list.
  (func (export "dormant:host/handover@0.1.0#export-state") (result i32)
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0))
    (i32.store (i32.const 8) (i32.const 0))
    (i32.const 0))

  (func (export "dormant:host/handover@0.1.0#import-state") (param $ptr i32) (param $len i32) (result i32)
    (call $err (i32.const 128) (i32.const 54)))
)
