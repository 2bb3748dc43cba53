#!/usr/bin/env bash
# Replays issue #14's first run as a new user would, with the built CLI (bin/dormant.js on
# dist/, so `npm install` or `npm run build` first): a fresh data directory, `dormant serve`
# in the background, `dormant new`, build, deploy (which activates), push, a cron task
# listed, a guest broken on purpose (a thrown Error, a refused cron, a failing on-activate)
# whose messages reach the CLI and HTTP answers, a crash before the first snapshot that
# keeps the push URL, dead letters and components listed, --version, and the `stopped` line.
# Each check prints what it saw; the first that fails stops the script with exit 1.
#
#   scripts/first-run-replay.sh        (test/cli/first-run-replay.test.ts runs it in `npm test`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dormant-replay-XXXXXX")"
SERVE_PID=""
cleanup() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then kill -KILL "$SERVE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

dormant() { node "$ROOT/bin/dormant.js" "$@"; }
step() { printf '\n== %s (at %d s)\n' "$*" "$SECONDS"; }
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  if [ -f serve.err ]; then printf -- '--- serve stderr ---\n%s\n' "$(tail -n 20 serve.err)" >&2; fi
  exit 1
}
# expect TEXT REGEX WHAT: TEXT must match the extended REGEX.
expect() { grep -Eq -- "$2" <<<"$1" || fail "$3: expected /$2/ in: $1"; }
# refused CMD…: the command must fail (exit 1); prints its stderr.
refused() {
  local err
  if err="$("$@" 2>&1 >/dev/null)"; then fail "$* should have failed"; fi
  printf '%s\n' "$err"
}
# http METHOD URL [BODY]: prints "<status> <body>".
http() {
  node -e 'const [m, u, b] = process.argv.slice(1); fetch(u, { method: m, ...(b === undefined ? {} : { body: b }) }).then(async (r) => console.log(r.status, await r.text()));' "$@"
}
# start_serve: start `dormant serve` on the data directory in the background. Partitions stay
# live until frozen by hand, so the crash in step 10 comes before any snapshot.
start_serve() {
  : >serve.err
  # node itself in the background (not the `dormant` function's subshell), so signals reach it.
  DORMANT_IDLE_TIMEOUT_MS=600000 node "$ROOT/bin/dormant.js" serve --data-dir data --port 0 --admin-port 0 --executors 1 >>serve.out 2>serve.err &
  SERVE_PID=$!
}
# serving: wait for its banner; sets PUSH_ORIGIN and DORMANT_URL.
serving() {
  for _ in $(seq 1 1200); do
    grep -q '^Dormant serving' serve.err && break
    kill -0 "$SERVE_PID" 2>/dev/null || fail "dormant serve exited: $(cat serve.err)"
    sleep 0.1
  done
  grep -q '^Dormant serving' serve.err || fail "dormant serve printed no banner within 120 s"
  PUSH_ORIGIN="$(sed -nE 's/^Dormant serving push (http:\/\/[^,]+), admin .*/\1/p' serve.err)"
  export DORMANT_URL="$(sed -nE 's/^Dormant serving push [^,]+, admin (http:\/\/[^ ]+) .*/\1/p' serve.err)"
}

step "1. dormant --version"
VERSION="$(dormant --version)"
expect "$VERSION" "^$(node -p "require('$ROOT/package.json').version")\$" "--version prints the package version"
echo "$VERSION"

step "2. dormant new (TypeScript), type-checked and built; a guest broken on purpose, built (a fresh dormant serve starts meanwhile)"
start_serve
dormant new hello --template ts
cat >broken.js <<'EOF'
import { register } from "dormant:host/background-tasks@0.1.0";
const push = (name) => ({ name, trigger: { tag: "push" }, entry: name, payload: new Uint8Array(), priority: 100, outlivePartition: false });
export const lifecycle = {
  onActivate(reason) {
    if (reason === "restored") throw new Error("settings are missing: this guest refuses to come back on purpose");
    register(push("boom"));
    register(push("bad-cron"));
    // One attempt: its failure is a dead letter right away.
    register({ ...push("doomed"), trigger: { tag: "after", val: 0 }, retry: { maxAttempts: 1, initialBackoffMs: 1000, maxBackoffMs: 1000 } });
  },
};
export const handler = {
  onTask(event) {
    console.log(`broken got ${event.entry}`);
    if (event.entry === "bad-cron") {
      register({ ...push("nightly"), trigger: { tag: "cron", val: { expression: "every night at 3" } } });
      return undefined;
    }
    throw new Error(`${event.entry} failed on purpose`);
  },
};
EOF
(cd hello && npm run check --silent && npm run build --silent) >build-hello.log 2>&1 &
BUILD_HELLO=$!
dormant build broken.js -o broken.wasm >build-broken.log 2>&1 || fail "building broken.js: $(cat build-broken.log)"
wait "$BUILD_HELLO" || fail "npm run check and build in hello/ (tsc with no paths mapping, then dormant build): $(cat build-hello.log)"
cat build-hello.log build-broken.log

step "3. dormant serve is up on a fresh data directory and printed the admin token once"
serving
TOKEN="$(sed -nE 's/^ +admin token +([0-9a-f]{32,}) .*/\1/p' serve.err)"
[ -n "$TOKEN" ] || fail "the first start printed no admin token: $(cat serve.err)"
export DORMANT_ADMIN_TOKEN="$TOKEN"
echo "serving, admin $DORMANT_URL"

step "4. deploy activates the guest and prints its cron task and push URL"
OUT="$(dormant deploy hello/guest.wasm --name hello)"
echo "$OUT"
expect "$OUT" '^partition p_[^ ]+ \(hello\) runs sha256:[0-9a-f]{64}, activated \(fresh\)$' "deploy activates"
expect "$OUT" 'every-minute +cron "\* \* \* \* \*" Europe/Berlin' "deploy lists the cron task"
PUSH_PATH="$(sed -nE 's/^ +greet +push +http:\/\/[^/]+(\/push\/[^ ]+)$/\1/p' <<<"$OUT")"
[ -n "$PUSH_PATH" ] || fail "deploy printed no push URL for greet"
OUT="$(dormant ps)"
echo "$OUT"
expect "$OUT" 'hello +idle' "a deployed partition is live (idle), not frozen"

step "5. push to it"
OUT="$(http POST "$PUSH_ORIGIN$PUSH_PATH" world)"
echo "$OUT"
expect "$OUT" '^200 hello, world \(greeting #1;' "the push URL answers with the guest's reply"

step "6. its cron task listed (by partition name, with its trigger), and fired by hand"
OUT="$(dormant tasks --partition hello)"
echo "$OUT"
expect "$OUT" 'every-minute +p_[^ ]+ +cron "\* \* \* \* \*" Europe/Berlin' "tasks lists the cron task with its trigger"
CRON_ID="$(sed -nE 's/^(t_[^ ]+) +every-minute .*/\1/p' <<<"$OUT")"
OUT="$(dormant fire "$CRON_ID")"
echo "$OUT"
expect "$OUT" "^fired $CRON_ID: delivery e_[^ ]+ ok in" "fire reports the outcome"
OUT="$(refused dormant deploy hello/guest.wasm --name hello)"
echo "$OUT"
expect "$OUT" '409: A partition is already named "hello"' "a name is deployed once"

step "7. a guest broken on purpose: the answers carry its message, not a bare unreachable"
OUT="$(dormant deploy broken.wasm --name broken)"
echo "$OUT"
BOOM="$(sed -nE 's/^ +boom +push +http:\/\/[^/]+(\/push\/[^ ]+)$/\1/p' <<<"$OUT")"
BAD_CRON="$(sed -nE 's/^ +bad-cron +push +http:\/\/[^/]+(\/push\/[^ ]+)$/\1/p' <<<"$OUT")"
OUT="$(http POST "$PUSH_ORIGIN$BOOM")"
echo "$OUT"
expect "$OUT" '^502 .*Error: boom failed on purpose' "a thrown Error reaches the HTTP answer"
OUT="$(http POST "$PUSH_ORIGIN$BAD_CRON")"
echo "$OUT"
expect "$OUT" '^502 .*invalid-cron: ' "an uncaught refused cron reaches the HTTP answer with the host's task-error"
grep -q unreachable <<<"$OUT" && fail "the answer says unreachable"
grep -q '"message":"broken got boom"' serve.out || fail "console.log of the guest is not in the host's log"
echo "the guest's console.log is in the log: $(grep -m1 '"message":"broken got boom"' serve.out)"
OUT="$(dormant logs broken)"
echo "$OUT"
expect "$OUT" 'broken got boom' "dormant logs shows the guest's console.log"
# Its one-attempt `doomed` task fired at once, failed, and is a dead letter with the guest's message.
for _ in $(seq 1 100); do
  OUT="$(dormant dead-letters)"
  grep -q doomed <<<"$OUT" && break
  sleep 0.1
done
echo "$OUT"
expect "$OUT" 'doomed +p_[^ ]+ +1 .*Error: doomed failed on purpose' "the dead letter keeps the guest's message"

step "8. a failing on-activate: the error, the partition's state and the log say why"
dormant freeze broken
OUT="$(refused dormant activate broken)"
echo "$OUT"
expect "$OUT" '502: Partition p_[^ ]+ refused activation \(restored\): Error: settings are missing' "activate answers with the guest's message"
OUT="$(dormant ps)"
echo "$OUT"
expect "$OUT" 'broken +activation-failed' "ps shows the failed activation"
expect "$OUT" 'broken: activation failed: .*settings are missing' "ps says why"
grep -q '"event":"activation-failed"' serve.out || fail "no activation-failed log line"

step "9. components listed with the partitions that run them"
OUT="$(dormant components)"
echo "$OUT"
expect "$OUT" 'sha256:[0-9a-f]{64} +hello' "components lists hello's"
expect "$OUT" 'sha256:[0-9a-f]{64} +broken' "components lists broken's"

step "10. a crash before the first snapshot keeps the push URL"
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
start_serve
serving
OUT="$(http POST "$PUSH_ORIGIN$PUSH_PATH" again)"
echo "$OUT"
# Nothing was ever frozen: the guest starts fresh, registers greet again and keeps its URL.
expect "$OUT" '^200 hello, again \(greeting #1;' "the same push URL answers after the restart"

step "11. stop the server: it says it stopped"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || fail "dormant serve exited with $? on SIGTERM"
SERVE_PID=""
OUT="$(grep '"event":"stopped"' serve.out)"
echo "$OUT"
expect "$OUT" '"signal":"SIGTERM".*"ok":true' "the stopped line"

printf '\nfirst-run replay: every step passed in %d s\n' "$SECONDS"
