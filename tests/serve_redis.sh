#!/bin/sh
# tests/serve_redis.sh: end-to-end test of `flowvm serve` with the Redis store
# (docs/runtime.md, "Redis"). Starts a real redis-server, tests/mockapi (the Cloud API) and
# flowvm with FLOWVM_REDIS_URL, all on free loopback ports, and checks: a conversation; a
# duplicate delivery gives one reply; the session survives `kill -9` of flowvm between two
# messages; a timer set before a kill fires after the restart; the keys carry the session's
# hash tag and the dedup marker its 7-day TTL; an outbox entry left behind is performed at
# start; 503 while Redis is down. Bounded (about 15 s).
# Usage: serve_redis.sh FLOWC FLOWVM MOCKAPI ROOT. Prints "N passed, N failed"; exit 1 on
# failure; exit 0 with "skipped" when redis-server is not installed.
set -u
FLOWC=$1 FLOWVM=$2 MOCK=$3 ROOT=$4
command -v redis-server > /dev/null && command -v redis-cli > /dev/null || {
  echo "skipped: redis-server or redis-cli not installed"; exit 0; }
TMP=$(mktemp -d /tmp/flowvm-redis.XXXXXX)
MOCK_PID="" VM_PID="" RS_PID=""
cleanup() {
  for p in $VM_PID $MOCK_PID $RS_PID; do kill "$p" 2>/dev/null; done
  for p in $VM_PID $MOCK_PID $RS_PID; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP
# a watchdog: the whole test stops by itself within a minute
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 55 & s=$!; wait $s; echo "serve_redis: timed out" >&2
  kill -TERM $$ ) < /dev/null > /dev/null 2>&1 &
WATCHDOG=$!

. "$(dirname "$0")/serve_lib.sh"
finish() {
  kill "$WATCHDOG" 2>/dev/null
  echo "$pass passed, $fail failed"
  if [ "$fail" -ne 0 ]; then
    for f in "$TMP"/vm*.log; do echo "--- $f"; cat "$f"; done
    echo "--- mock record"; cat "$TMP/record" 2>/dev/null
    exit 1
  fi
  exit 0
}

SECRET=test-app-secret
TOKEN=test-access-token
PNID=106540352242922
WA=15551234567
WA2=15557654321
WA3=15550001111
export WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=test-verify-token
export WHATSAPP_ACCESS_TOKEN=$TOKEN

"$FLOWC" build "$ROOT/examples/flows/menu.flow" -o "$TMP/menu.fbc" || { bad "flowc build"; finish; }
cat > "$TMP/ping.flow" <<'FLOW'
flow ping {
  title "Ping"
  trigger keyword "ping"

  step start {
    buttons "Still there?" {
      button "Yes" -> yes
    } timeout 3s -> late
  }

  step yes {
    say "Good."
    end
  }

  step late {
    say "Too late."
    end
  }
}
FLOW
"$FLOWC" build "$TMP/ping.flow" -o "$TMP/ping.fbc" || { bad "flowc build ping"; finish; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
RPORT=$(free_port)
start_redis() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    > "$TMP/redis.log" 2>&1 &
  RS_PID=$!
  i=0
  while ! redis-cli -p "$RPORT" ping > /dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
start_redis
check "redis-server up" PONG "$(redis-cli -p "$RPORT" ping 2>/dev/null)"
R() { redis-cli -p "$RPORT" "$@"; }
export FLOWVM_REDIS_URL="redis://127.0.0.1:$RPORT/0"

start_mock || { bad "mockapi did not start"; finish; }
export WHATSAPP_API_BASE="http://127.0.0.1:$MOCK_PORT/v21.0"

RUN=0
start_vm() { # starts flowvm, sets VM_PID and URL; log in $TMP/vmN.log
  RUN=$((RUN + 1))
  LOG="$TMP/vm$RUN.log"
  "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/menu.fbc" "$TMP/ping.fbc" 2> "$LOG" &
  VM_PID=$!
  i=0 PORT=""
  while [ -z "$PORT" ] && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
    PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$LOG" | head -n1)
  done
  URL="http://127.0.0.1:$PORT"
  [ -n "$PORT" ]
}
kill9_vm() { kill -9 "$VM_PID" 2>/dev/null; wait "$VM_PID" 2>/dev/null; VM_PID=""; }

post() { code -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$(sign "$1")" \
           --data-binary @"$1" "$URL/webhook"; }
envelope() { wa_envelope "$@"; }

start_vm || { bad "flowvm did not start with Redis"; finish; }
if grep -q '"store":"redis"' "$LOG"; then ok "listening with the redis store"; else bad "store not redis"; fi
# this redis-server runs without an append-only file: said once at start
if grep '"event":"store_durability"' "$LOG" | grep -q '"appendonly":"no".*"warning":"Redis keeps no append-only file'; then
  ok "the durability of Redis is logged at start (no AOF: a warning)"
else
  bad "no store_durability warning"
fi

# a bad URL and an unreachable Redis are clear start errors
FLOWVM_REDIS_URL=http://nope "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/menu.fbc" 2> "$TMP/bad.err" > /dev/null
rc=$?
if [ $rc -eq 1 ] && grep -q 'FLOWVM_REDIS_URL' "$TMP/bad.err"; then ok "bad URL: exit 1, named"; else bad "bad URL: rc $rc $(cat "$TMP/bad.err")"; fi
"$FLOWVM" serve --listen 127.0.0.1:0 --redis "redis://127.0.0.1:$(free_port)" "$TMP/menu.fbc" 2> "$TMP/down.err" > /dev/null
rc=$?
if [ $rc -eq 1 ] && grep -q 'cannot reach Redis' "$TMP/down.err"; then ok "unreachable Redis: exit 1, said"; else bad "unreachable Redis: rc $rc $(cat "$TMP/down.err")"; fi

# the conversation starts; a duplicate gives no second reply
envelope "$TMP/m1" $WA '{"from":"'$WA'","id":"wamid.in.1","timestamp":"1700000000","type":"text","text":{"body":"testing"}}'
check "text 200" 200 "$(post "$TMP/m1")"
wait_sends 2
check "menu: two sends" 2 "$(sends)"
check "duplicate 200" 200 "$(post "$TMP/m1")"
sleep 0.3
check "duplicate: no second reply" 2 "$(sends)"
if grep -q '"event":"duplicate"' "$LOG"; then ok "duplicate logged"; else bad "no duplicate logged"; fi

# the layout: one hash tag per session; the dedup marker with its TTL; an empty outbox
TAG="flowvm:{$PNID:$WA}"
check "session key" string "$(R type "$TAG:session")"
check "dedup marker" 1 "$(R get "$TAG:msg:wamid.in.1")"
ttl=$(R ttl "$TAG:msg:wamid.in.1")
if [ "$ttl" -gt 604000 ] && [ "$ttl" -le 604800 ]; then ok "dedup TTL 7 days ($ttl s)"; else bad "dedup TTL $ttl"; fi
check "outbox drained" 0 "$(R llen "$TAG:outbox")"
untagged=$(R --scan --pattern 'flowvm:*' | grep -v '^flowvm:{[0-9]*:[0-9]*}:' | grep -v '^flowvm:timers$')
check "every key but flowvm:timers carries a hash tag" "" "$untagged"

# kill -9 between two messages: the second continues the same session
BID=$(sed -n 2p "$TMP/record" | cut -f3 | jq -r '.interactive.action.buttons[1].reply.id')
kill9_vm
start_vm || { bad "flowvm did not restart"; finish; }
envelope "$TMP/m2" $WA '{"context":{"from":"15550783881","id":"wamid.mock.2"},"from":"'$WA'","id":"wamid.in.2","timestamp":"1700000005","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"'"$BID"'","title":"Cleaning"}}}'
check "after restart: button reply 200" 200 "$(post "$TMP/m2")"
wait_sends 5
check "after restart: the session went on (audio, text, buttons)" '"audio" "text" "interactive"' \
  "$(sed -n '3,5p' "$TMP/record" | cut -f3 | jq -rs 'map(.type) | map(tojson) | join(" ")')"
check "duplicate of the first message after restart 200" 200 "$(post "$TMP/m1")"
sleep 0.3
check "after restart: no reply to the old duplicate" 5 "$(sends)"

# a timer set before a kill fires after the restart
envelope "$TMP/m3" $WA2 '{"from":"'$WA2'","id":"wamid.in.3","timestamp":"1700000010","type":"text","text":{"body":"ping"}}'
check "ping 200" 200 "$(post "$TMP/m3")"
wait_sends 6
check "ping: the buttons" '"interactive"' "$(sed -n 6p "$TMP/record" | cut -f3 | jq -r '.type | tojson')"
check "timer in flowvm:timers (member PNID:WA|ID)" 1 "$(R zrange flowvm:timers 0 -1 | grep -c "^$PNID:$WA2|[0-9]*\$")"
check "the session's timers hash" 1 "$(R hlen "flowvm:{$PNID:$WA2}:timers")"
kill9_vm
start_vm || { bad "flowvm did not restart (timer)"; finish; }
wait_sends 7 60
check "timer fired after the restart" '"Too late."' "$(sed -n 7p "$TMP/record" | cut -f3 | jq -r '.text.body | tojson')"
if grep -q '"event":"timer_fired"' "$LOG"; then ok "timer fired by the new process"; else bad "no timer_fired in the new log"; fi
check "timer removed" 0 "$(R zrange flowvm:timers 0 -1 | grep -c "^$PNID:$WA2|")"
check "ended session deleted" 0 "$(R exists "flowvm:{$PNID:$WA2}:session")"

# an outbox entry left by a crash (after the commit, before the send) is performed at start:
# such a commit also left the session in flowvm:ready, scored by its lease's expiry
kill9_vm
R zadd flowvm:ready 0 "$PNID:$WA3" > /dev/null
R rpush "flowvm:{$PNID:$WA3}:outbox" '{"k":"send","pnid":"'$PNID'","to":"'$WA3'","body":"{\"messaging_product\":\"whatsapp\",\"to\":\"'$WA3'\",\"type\":\"text\",\"text\":{\"body\":\"left over\"}}"}' > /dev/null
start_vm || { bad "flowvm did not restart (outbox)"; finish; }
wait_sends 8
check "leftover outbox performed at start" '"left over"' "$(sed -n 8p "$TMP/record" | cut -f3 | jq -r '.text.body | tojson')"
check "leftover outbox removed" 0 "$(R llen "flowvm:{$PNID:$WA3}:outbox")"

# Redis down: 503 (Meta retries), a clear log line; back up: 200 and the message handled
kill "$RS_PID"; wait "$RS_PID" 2>/dev/null; RS_PID=""
envelope "$TMP/m4" $WA3 '{"from":"'$WA3'","id":"wamid.in.4","timestamp":"1700000020","type":"text","text":{"body":"ping"}}'
check "Redis down: 503" 503 "$(post "$TMP/m4")"
if grep -q '"event":"store_error"' "$LOG"; then ok "Redis down: store_error logged"; else bad "no store_error line"; fi
start_redis
check "Redis back: 200" 200 "$(post "$TMP/m4")"
wait_sends 9
check "Redis back: the retried message answered" '"interactive"' "$(sed -n 9p "$TMP/record" | cut -f3 | jq -r '.type | tojson')"

kill "$VM_PID"
i=0
while kill -0 "$VM_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
wait "$VM_PID" 2>/dev/null; check "SIGTERM: exit 0" 0 "$?"; VM_PID=""
finish
