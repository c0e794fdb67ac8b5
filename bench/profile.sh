#!/bin/sh
# bench/profile.sh BUILD_DIR [OUT]: flowvm serve with Redis under callgrind for one load of
# bench/loadgen (PROFILE_USERS users, 500, four webhooks each, over 8 connections), to see
# where a webhook's instructions go. Writes the callgrind profile to OUT (default
# bench/out/profile/callgrind.out), then prints loadgen's RESULT line and the inclusive
# counts of the functions that match PROFILE_FUNCS (a grep -E pattern), each also divided by
# the number of webhooks. Run from the top of the tree. Exit 1 when the load lost or doubled
# a reply.
set -u
build=${1:-build}
dir=bench/out/profile
mkdir -p "$dir"
outf=${2:-$dir/callgrind.out}
USERS=${PROFILE_USERS:-500}
FUNCS=${PROFILE_FUNCS:-'fr_log|fr_cloud_body|accept_prepare|finish_request|log_outcome|log_effect|PROGRAM TOTALS'}
PNID=106540352242922
export WHATSAPP_APP_SECRET=bench-app-secret WHATSAPP_VERIFY_TOKEN=x WHATSAPP_ACCESS_TOKEN=x
export FLOWVM_SEND_RATE=100000

command -v valgrind > /dev/null && command -v callgrind_annotate > /dev/null || {
  echo "bench/profile.sh: valgrind (callgrind) is needed" >&2
  exit 1
}
. bench/lib.sh

"$build/flowc" build bench/flows/loadconv.flow -o "$dir/loadconv.fbc" || exit 1
RPORT=$(free_port) PORT=$(free_port) API_PORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  > "$dir/redis.log" 2>&1 &
RS=$!
PIDS="$PIDS $RS"
i=0
while ! redis-cli -p "$RPORT" ping > /dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

rm -f "$dir/flowvm.pid" "$outf"
"$build/bench/loadgen" --target "127.0.0.1:$PORT" --api-port "$API_PORT" --users "$USERS" \
  --conns 8 --pnid "$PNID" --pid-file "$dir/flowvm.pid" --max-seconds 600 \
  > "$dir/loadgen.txt" 2>&1 &
lg=$!
PIDS="$PIDS $lg"
FLOWVM_REDIS_URL="redis://127.0.0.1:$RPORT/0" valgrind --tool=callgrind \
  --callgrind-out-file="$outf" "$build/flowvm" serve --listen "127.0.0.1:$PORT" \
  --api-base "http://127.0.0.1:$API_PORT/v21.0" "$dir/loadconv.fbc" > "$dir/flowvm.log" 2>&1 &
vm=$!
PIDS="$PIDS $vm"
echo "$vm" > "$dir/flowvm.pid"
wait "$lg"
kill -TERM "$vm" 2>/dev/null
wait "$vm" 2>/dev/null
kill "$RS" 2>/dev/null
wait "$RS" 2>/dev/null
PIDS=""

grep '^RESULT' "$dir/loadgen.txt" || { cat "$dir/loadgen.txt" >&2; exit 1; }
webhooks=$((USERS * 4))
callgrind_annotate --inclusive=yes --auto=no "$outf" 2> /dev/null | grep -E "$FUNCS" |
  awk -v n="$webhooks" '{ c = $1; gsub(",", "", c); printf "%10.0f per webhook  %s\n", c / n, $0 }'
grep -q '^RESULT.* missing=0 dup=0 ' "$dir/loadgen.txt"
