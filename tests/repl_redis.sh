#!/bin/sh
# tests/repl_redis.sh: `flowvm repl --redis URL --session PNID:WAID PROGRAM...`, the
# read-only view of a live session. Starts a real redis-server on a free loopback port,
# stores sessions under the keys flowvm serve uses (flowvm:{PNID:WAID}:session, "PROG\n"
# + state; the states made by the REPL's :save), and checks: :where and :vars show the
# session, the program chosen by its index; anything that would change it is refused and
# Redis is left as it was; :save writes the state, which a REPL of its own then :loads and
# goes on with; a missing session, a program index beyond the files given, and an
# unreachable Redis are clear errors (exit 1). Bounded (a few seconds).
# Usage: repl_redis.sh FLOWC FLOWVM ROOT. Prints "N passed, N failed"; exit 0 with
# "skipped" when redis-server is not installed.
set -u
FLOWC=$1 FLOWVM=$2 ROOT=$3
command -v redis-server > /dev/null && command -v redis-cli > /dev/null || {
  echo "skipped: redis-server or redis-cli not installed"; exit 0; }
TMP=$(mktemp -d /tmp/flowvm-rrepl.XXXXXX)
RS_PID=""
cleanup() {
  [ -n "$RS_PID" ] && kill "$RS_PID" 2>/dev/null && wait "$RS_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
has() { # NAME FILE TEXT
  if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1: no '$3' in"; cat "$2"; fi
}
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  > "$TMP/redis.log" 2>&1 &
RS_PID=$!
i=0
while ! redis-cli -p "$RPORT" ping > /dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
R() { redis-cli -p "$RPORT" "$@"; }
URL="redis://127.0.0.1:$RPORT/0"
PNID=106540352242922 WA=15551234567 WA2=15557654321

cd "$TMP" || exit 1
cp "$ROOT/examples/flows/menu.flow" "$ROOT/examples/flows/onboarding.flow" .
"$FLOWC" build menu.flow -o menu.fbc && "$FLOWC" build onboarding.flow -o onboarding.fbc || {
  bad "flowc build"; finish; }

# STATE-FILE PROG KEY: stores the state of a file saved by :save as flowvm serve would
store() {
  python3 - "$1" "$2" > "$TMP/value" <<'PY' || return 1
import json, sys
state = bytes.fromhex(json.load(open(sys.argv[1]))["state"])
sys.stdout.buffer.write(sys.argv[2].encode() + b"\n" + state)
PY
  R -x set "$3" < "$TMP/value" > /dev/null
}
printf 'testing\n2\n:save m.json\n' | "$FLOWVM" repl menu.flow > /dev/null
printf 'join\n:save o.json\n' | "$FLOWVM" repl onboarding.flow > /dev/null
store m.json 0 "flowvm:{$PNID:$WA}:session" && store o.json 1 "flowvm:{$PNID:$WA2}:session" || {
  bad "storing the sessions"; finish; }
before=$(R get "flowvm:{$PNID:$WA}:session" | od -An -tx1 | tr -d ' \n')

printf ':where\n:vars\nNot now\n:tap Not now\n:break start\n:back\n:reload\n:load m.json\n:save live.json\n:quit\n' |
  "$FLOWVM" repl --redis "$URL" --session "$PNID:$WA" menu.fbc onboarding.fbc > out1 2>&1
rc=$?
[ $rc -eq 0 ] && ok "read-only view: exit 0" || bad "read-only view: exit $rc"
has "the banner names the session and its program" out1 "the live session $PNID:$WA, read-only (program 0: menu.flow"
has ":where shows the step and the source line (the source beside the bytecode)" out1 "in flow menu, step cleaning, menu.flow:31"
has ":where shows what it waits for" out1 "waits for the user; times out at 2026-01-02T09:00:01Z"
has "a message is refused" out1 "read-only: this is a live session"
n=$(grep -c "» read-only: this is a live session" out1)
[ "$n" -eq 6 ] && ok "each of the six changes refused ($n)" || bad "changes refused: $n"
has ":save writes the state" out1 "saved to live.json: 0 events"
after=$(R get "flowvm:{$PNID:$WA}:session" | od -An -tx1 | tr -d ' \n')
[ "$before" = "$after" ] && ok "Redis left as it was" || bad "the stored session changed"
[ "$(R dbsize)" = 2 ] && ok "no key added" || bad "keys: $(R dbsize)"

printf ':vars\n:where\n' | "$FLOWVM" repl --redis "$URL" --session "$PNID:$WA2" menu.fbc onboarding.fbc > out2 2>&1
has "program index 1: the second file" out2 "(program 1: onboarding.flow"
has ":vars of the live session" out2 "purpose = \"send you your welcome pack\""
has "the call stack of the live session" out2 "called from flow onboarding, step start, onboarding.flow:13"

printf ':load live.json\nNot now\n' | "$FLOWVM" repl menu.flow > out3 2>&1
has "the saved live state loads in a REPL of its own" out3 "loaded a state without a history"
has "and goes on from there" out3 "bot: No problem. Write \"test\" any time to see the menu again."

"$FLOWVM" repl --redis "$URL" --session "$PNID:1" menu.fbc < /dev/null > out4 2>&1
rc=$?
[ $rc -eq 1 ] && ok "no such session: exit 1" || bad "no such session: exit $rc"
has "no such session: said" out4 "no session is stored under that key"
"$FLOWVM" repl --redis "$URL" --session "$PNID:$WA2" menu.fbc < /dev/null > out5 2>&1
rc=$?
[ $rc -eq 1 ] && ok "program index beyond the files: exit 1" || bad "program index: exit $rc"
has "program index beyond the files: said" out5 "the session names program 1, and 1 program was given"
"$FLOWVM" repl --redis "redis://127.0.0.1:$(free_port)" --session "$PNID:$WA" menu.fbc < /dev/null > out6 2>&1
rc=$?
[ $rc -eq 1 ] && ok "unreachable Redis: exit 1" || bad "unreachable Redis: exit $rc"
has "unreachable Redis: said" out6 "cannot reach Redis"
"$FLOWVM" repl --redis "$URL" menu.fbc < /dev/null > out7 2>&1
[ $? -eq 1 ] && grep -q -- "--redis and --session go together" out7 && ok "--redis without --session: usage" ||
  bad "--redis without --session"
finish
