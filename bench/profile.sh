#!/bin/sh
# bench/profile.sh BUILD_DIR: where flowvm's instructions go, per webhook of the load
# benchmark's conversation (docs/performance.md, "Where flowvm's time goes"). Runs
# `flowvm serve` under `valgrind --tool=callgrind` with Redis (or with the in-memory store:
# PROFILE_STORE=memory) while bench/loadgen plays PROFILE_USERS users (500) of
# bench/flows/loadconv.flow, four webhooks each, then prints the instructions per webhook of
# the whole process and of its main parts (inclusive). Instruction counts do not depend on
# what else the machine is doing, so two builds can be compared one after the other (a
# timed run cannot); under valgrind OpenSSL cannot use the CPU's SHA extensions, so the
# signature's share is larger here than on the CPU. PROFILE_FUNCS (a grep -E pattern) lists
# more functions. Run by `make bench-profile`.
set -u
build=${1:-build}
root=$(pwd)
out=bench/out/profile
mkdir -p "$out"
USERS=${PROFILE_USERS:-500}
STORE=${PROFILE_STORE:-redis}
command -v valgrind > /dev/null || { echo "bench/profile.sh: valgrind is needed" >&2; exit 1; }
export WHATSAPP_APP_SECRET=bench-app-secret WHATSAPP_VERIFY_TOKEN=bench-verify-token
export WHATSAPP_ACCESS_TOKEN=bench-access-token FLOWVM_SEND_RATE=100000
PNID=106540352242922
. bench/lib.sh

"$build/flowc" build bench/flows/loadconv.flow -o "$out/loadconv.fbc" || exit 1
PORT=$(free_port)
API_PORT=$(free_port)
if [ "$STORE" = redis ]; then
  RPORT=$(free_port)
  rm -rf "$out/redis"
  mkdir -p "$out/redis"
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$root/$out/redis" --save "" \
    --appendonly no --daemonize no > "$out/redis.log" 2>&1 &
  PIDS="$PIDS $!"
  i=0
  while ! redis-cli -p "$RPORT" ping > /dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  export FLOWVM_REDIS_URL="redis://127.0.0.1:$RPORT/0"
fi
rm -f "$out/flowvm.pid" "$out/callgrind.out"
"$build/bench/loadgen" --target "127.0.0.1:$PORT" --api-port "$API_PORT" --users "$USERS" \
  --conns 8 --pnid "$PNID" --pid-file "$out/flowvm.pid" --label profile --max-seconds 300 \
  --wait-seconds 60 > "$out/loadgen.txt" 2>&1 &
lg=$!
PIDS="$PIDS $lg"
valgrind --tool=callgrind --callgrind-out-file="$root/$out/callgrind.out" \
  "$build/flowvm" serve --listen "127.0.0.1:$PORT" --api-base "http://127.0.0.1:$API_PORT/v21.0" \
  "$out/loadconv.fbc" > "$out/flowvm.log" 2>&1 &
fv=$!
PIDS="$PIDS $fv"
echo "$fv" > "$out/flowvm.pid"
wait "$lg"
lgs=$?
kill "$fv" 2>/dev/null
wait "$fv" 2>/dev/null
grep '^RESULT' "$out/loadgen.txt" | grep -q ' missing=0 dup=0 unexpected=0 wrong=0 non200=0 ' || {
  echo "bench/profile.sh: the load did not complete correctly (exit $lgs):" >&2
  cat "$out/loadgen.txt" >&2
  exit 1
}
n=$((USERS * 4))
callgrind_annotate --inclusive=yes "$out/callgrind.out" 2> /dev/null > "$out/inclusive.txt"
echo "# flowvm instructions per webhook ($STORE store, $USERS users, $n webhooks, callgrind)"
echo
echo "| part (inclusive: a part holds the parts under it, and some overlap) | instructions per webhook |"
echo "|---|---|"
# part: a label and the function whose inclusive count it is (first match in the listing)
part() {
  awk -v n="$n" -v pat="$2" -v label="$1" '
    index($0, pat) && !done { v = $1; gsub(",", "", v); printf "| %s | %d |\n", label, v / n; done = 1 }
  ' "$out/inclusive.txt"
}
part "whole process" "PROGRAM TOTALS"
part "HTTP request in (server.c on_request)" "server.c:on_request "
part "  signature check" "signature.c:fr_sigkey_check"
part "  webhook decode" "webhook.c:fr_webhook_decode"
part "answer out (evhttp_send_reply)" "evhttp_send_reply"
part "session run (engine.c run_entry)" "engine.c:run_entry "
part "  VM (fv_resume)" "interp.c:fv_resume"
part "  state decode" "state.c:fv_session_decode"
part "  state encode" "state.c:fv_session_encode"
part "  Cloud API body" "cloudapi.c:fr_cloud_body"
part "Redis answers, and the work they start (hiredis callbacks)" "redisProcessCallbacks"
part "Cloud API sends (libcurl)" "curl_multi_socket_action"
part "  answer classification" "send_policy.c:fr_send_classify"
part "malloc" "malloc.c:malloc "
part "free" "malloc.c:free "
if [ -n "${PROFILE_FUNCS:-}" ]; then # more functions: a grep -E pattern
  echo
  grep -E "$PROFILE_FUNCS" "$out/inclusive.txt" |
    awk -v n="$n" '{ c = $1; gsub(",", "", c); printf "%10.0f per webhook  %s\n", c / n, $0 }'
fi
echo
echo "Command: \`make bench-profile\` (bench/profile.sh); the whole listing is in $out/inclusive.txt."
