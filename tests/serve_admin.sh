#!/bin/sh
# tests/serve_admin.sh: end-to-end test of flowvm serve's observability and admin API
# (docs/runtime.md, "Metrics", "Readiness", "Admin API"). Builds menu.flow and a second
# flow with flowc, starts tests/mockapi (the Cloud API) and flowvm on free loopback ports,
# and checks: /metrics parses (every sample line is `name{labels} value`) and its counters
# move after a signed webhook; /readyz 200; the admin API answers 401 without or with a
# wrong token and 404 when no token is configured; the flows listing; a session shown after
# a conversation starts and gone after DELETE; the reload of a second program, which then
# starts conversations; the request log lines. A watchdog stops it within a minute.
# Usage: serve_admin.sh FLOWC FLOWVM MOCKAPI ROOT. Prints "N passed, N failed".
set -u
FLOWC=$1 FLOWVM=$2 MOCK=$3 ROOT=$4
TMP=$(mktemp -d /tmp/flowvm-admin.XXXXXX)
MOCK_PID="" VM_PID="" VM2_PID="" WD_PID=""
cleanup() {
  for p in $VM_PID $VM2_PID $MOCK_PID; do kill "$p" 2>/dev/null; done
  for p in $VM_PID $VM2_PID $MOCK_PID; do wait "$p" 2>/dev/null; done
  [ -n "$WD_PID" ] && kill "$WD_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "stopped by a signal (the watchdog?)"; echo "$pass passed, $((fail + 1)) failed"; exit 2' INT TERM HUP
# the watchdog: TERM to this script after 55 s; its sleep dies with it
(trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 55 & s=$!; wait $s && kill -TERM $$) \
  > /dev/null 2>&1 &
WD_PID=$!

. "$(dirname "$0")/serve_lib.sh"
finish() {
  echo "$pass passed, $fail failed"
  if [ "$fail" -ne 0 ]; then
    echo "--- flowvm log"; cat "$TMP/vm.log" 2>/dev/null
    echo "--- mock record"; cat "$TMP/record" 2>/dev/null
    exit 1
  fi
  exit 0
}

SECRET=test-app-secret
VERIFY=test-verify-token
TOKEN=test-access-token
ADMIN=test-admin-token-0123456789
PNID=106540352242922
WA=15551234567

"$FLOWC" build "$ROOT/examples/flows/menu.flow" -o "$TMP/menu.fbc" || { bad "flowc build"; finish; }
cat > "$TMP/pong.flow" <<'FLOW'
flow pong {
  title "Pong"
  trigger keyword "pong"

  step start {
    ask "Your name?" into name: text
    say "Thanks, {name}."
    end
  }
}
FLOW
"$FLOWC" build "$TMP/pong.flow" -o "$TMP/pong.fbc" || { bad "flowc build pong"; finish; }

start_mock || { bad "mockapi did not start"; finish; }

start_vm() { # LOG [env OPTIONS and NAME=VALUE...]: starts flowvm on menu.fbc, sets PID and PORT
  log=$1
  shift
  env "$@" WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=$VERIFY WHATSAPP_ACCESS_TOKEN=$TOKEN \
    WHATSAPP_API_BASE="http://127.0.0.1:$MOCK_PORT/v21.0" "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/menu.fbc" 2> "$log" &
  PID=$!
  i=0 PORT=""
  while [ -z "$PORT" ] && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
    PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -n1)
  done
}

# without a token configured, the admin API does not exist
start_vm "$TMP/vm2.log" -u FLOWVM_ADMIN_TOKEN -u FLOWVM_ADMIN_TOKEN_FILE
VM2_PID=$PID
[ -n "$PORT" ] || { bad "flowvm (no admin) did not start"; finish; }
check "no token configured: 404" 404 \
  "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/admin/flows")"
kill "$VM2_PID"; wait "$VM2_PID" 2>/dev/null; VM2_PID=""

# the admin token from a file
printf '%s\n' "$ADMIN" > "$TMP/admin"
start_vm "$TMP/vm.log" -u FLOWVM_ADMIN_TOKEN FLOWVM_ADMIN_TOKEN_FILE="$TMP/admin"
VM_PID=$PID
[ -n "$PORT" ] || { bad "flowvm did not start"; finish; }
URL="http://127.0.0.1:$PORT"

admin() { code -H "Authorization: Bearer $ADMIN" "$@"; }
post() { # FILE: the HTTP status of a signed POST
  code -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$(sign "$1")" \
    --data-binary @"$1" "$URL/webhook"
}
envelope() { wa_envelope "$@"; }
metric() { # SERIES: its value in a fresh scrape (0 if absent)
  curl -s -m 10 "$URL/metrics" > "$TMP/metrics"
  v=$(grep -F "$1 " "$TMP/metrics" | grep -F -v '#' | head -n1 | awk '{print $NF}')
  echo "${v:-0}"
}

# health, readiness, metrics
check "healthz 200" 200 "$(code "$URL/healthz")"
check "readyz 200" 200 "$(code "$URL/readyz")"
check "readyz says ready" true "$(jq -r .ready "$TMP/resp")"
check "metrics 200" 200 "$(code "$URL/metrics")"
cp "$TMP/resp" "$TMP/m0"
check "metrics content type" "text/plain; version=0.0.4; charset=utf-8" \
  "$(curl -s -m 10 -o /dev/null -w '%{content_type}' "$URL/metrics")"
check "metrics: every sample line is name{labels} value" 0 \
  "$(grep -v '^#' "$TMP/m0" | grep -Evc '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|[+-]Inf|NaN)$')"
check "metrics: HELP and TYPE for each metric" \
  "$(grep -c '^# HELP ' "$TMP/m0")" "$(grep -c '^# TYPE ' "$TMP/m0")"
for name in flowvm_http_requests_total flowvm_webhook_duration_seconds flowvm_webhook_items_total \
  flowvm_duplicates_total flowvm_sends_total flowvm_retries_total flowvm_breaker_state \
  flowvm_dlq_entries flowvm_queue_lag_seconds flowvm_reply_latency_seconds flowvm_programs_loaded; do
  if grep -q "^# TYPE $name " "$TMP/m0"; then ok "metrics: $name"; else bad "metrics: no $name"; fi
done
check "metrics: one program loaded" 1 "$(metric flowvm_programs_loaded)"

# a signed webhook moves the counters
W200='flowvm_http_requests_total{route="/webhook",method="POST",code="200"}'
before=$(metric "$W200")
envelope "$TMP/m1" "$WA" '{"from":"'$WA'","id":"wamid.in.1","timestamp":"1700000000","type":"text","text":{"body":"testing"}}'
check "text 200" 200 "$(post "$TMP/m1")"
wait_sends 2
check "menu: two sends" 2 "$(sends)"
check "webhook counter +1" $((before + 1)) "$(metric "$W200")"
check "text items counted" 1 "$(metric 'flowvm_webhook_items_total{type="text"}')"
check "webhook latency observed" 1 "$(metric flowvm_webhook_duration_seconds_count)"
check "latency +Inf bucket = count" 1 "$(metric 'flowvm_webhook_duration_seconds_bucket{le="+Inf"}')"
code -H "X-Hub-Signature-256: sha256=00" --data-binary @"$TMP/m1" "$URL/webhook" > /dev/null
check "401 counted" 1 "$(metric 'flowvm_http_requests_total{route="/webhook",method="POST",code="401"}')"
printf '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"%s"},"statuses":[{"id":"wamid.mock.0","status":"delivered","timestamp":"1700000001","recipient_id":"%s"}]},"field":"messages"}]}]}' "$PNID" "$WA" > "$TMP/status"
check "status 200" 200 "$(post "$TMP/status")"
check "status items counted" 1 "$(metric 'flowvm_webhook_items_total{type="status"}')"

# admin: authentication
check "admin without a token: 401" 401 "$(code "$URL/admin/flows")"
check "admin with a wrong token: 401" 401 "$(code -H "Authorization: Bearer nope" "$URL/admin/flows")"
check "admin with a longer token: 401" 401 "$(code -H "Authorization: Bearer ${ADMIN}x" "$URL/admin/flows")"
check "admin with basic auth: 401" 401 "$(code -H "Authorization: Basic $ADMIN" "$URL/admin/flows")"
check "admin unknown path: 404" 404 "$(admin "$URL/admin/nothing")"

# admin: flows
check "flows 200" 200 "$(admin "$URL/admin/flows")"
cp "$TMP/resp" "$TMP/flows"
check "flows: one program" 1 "$(jq '.programs | length' "$TMP/resp")"
check "flows: file" "$TMP/menu.fbc" "$(jq -r '.programs[0].file' "$TMP/resp")"
check "flows: a 16-hex-digit hash" 16 "$(jq -r '.programs[0].hash' "$TMP/resp" | tr -d '\n' | wc -c | tr -d ' ')"
check "flows: names" "menu quote" "$(jq -r '[.programs[0].flows[].name] | join(" ")' "$TMP/resp")"
check "flows: menu's trigger" "keyword:testing keyword:test" \
  "$(jq -r '[.programs[0].flows[0].triggers[] | "\(.kind):\(.text)"] | join(" ")' "$TMP/resp")"
check "flows: steps count" true \
  "$(jq '.programs[0].flows[0].steps == (.programs[0].flows[0].step_names | length) and .programs[0].flows[0].steps > 1' "$TMP/resp")"
check "flows: DELETE not allowed" 405 "$(admin -X DELETE "$URL/admin/flows")"

# admin: the session the conversation made
check "session 200" 200 "$(admin "$URL/admin/sessions/$PNID/$WA")"
cp "$TMP/resp" "$TMP/session"
check "session: waiting in menu/start for a message" "waiting menu start message" \
  "$(jq -r '[.status, .flow, .step, .waiting.for] | join(" ")' "$TMP/session")"
check "session: program hash" "$(jq -r '.programs[0].hash' "$TMP/flows")" \
  "$(jq -r .program_hash "$TMP/session")"
check "session: variables is an object" object "$(jq -r '.variables | type' "$TMP/session")"
check "session: a timeout pending" true "$(jq '.waiting.timeout_at_ms > 0' "$TMP/session")"
check "unknown session 404" 404 "$(admin "$URL/admin/sessions/$PNID/15550000000")"
check "bad session path 404" 404 "$(admin "$URL/admin/sessions/$PNID")"
check "session DELETE 200" 200 "$(admin -X DELETE "$URL/admin/sessions/$PNID/$WA")"
check "session gone after DELETE" 404 "$(admin "$URL/admin/sessions/$PNID/$WA")"
check "second DELETE 404" 404 "$(admin -X DELETE "$URL/admin/sessions/$PNID/$WA")"

# admin: reload a second program; "pong" then starts a conversation
check "reload: no path 400" 400 "$(admin -X POST --data '{}' "$URL/admin/reload")"
check "reload: missing file 422" 422 "$(admin -X POST --data '{"path":"'"$TMP"'/none.fbc"}' "$URL/admin/reload")"
printf 'not bytecode' > "$TMP/bad.fbc"
check "reload: bad bytecode 422" 422 "$(admin -X POST --data '{"path":"'"$TMP"'/bad.fbc"}' "$URL/admin/reload")"
check "reload: GET not allowed" 405 "$(admin "$URL/admin/reload")"
check "reload 200" 200 "$(admin -X POST --data '{"path":"'"$TMP"'/pong.fbc"}' "$URL/admin/reload")"
check "reload: index 1, newest" "1 true pong" "$(jq -r '[.index, .newest, .flows[0].name] | join(" ")' "$TMP/resp")"
check "reload again: unchanged" "1 already loaded (same hash)" \
  "$(admin -X POST --data '{"path":"'"$TMP"'/pong.fbc"}' "$URL/admin/reload" > /dev/null; jq -r '[.index, .note] | join(" ")' "$TMP/resp")"
check "flows: two programs" "menu.fbc pong.fbc" \
  "$(admin "$URL/admin/flows" > /dev/null; jq -r '[.programs[].file | split("/") | last] | join(" ")' "$TMP/resp")"
check "metrics: two programs loaded" 2 "$(metric flowvm_programs_loaded)"
check "metrics: one reload" 1 "$(metric 'flowvm_reloads_total{outcome="ok"}')"
n=$(sends)
WA2=15557654321
envelope "$TMP/m2" "$WA2" '{"from":"'$WA2'","id":"wamid.in.2","timestamp":"1700000010","type":"text","text":{"body":"pong"}}'
check "pong 200" 200 "$(post "$TMP/m2")"
wait_sends $((n + 1))
check "pong: the reloaded program asks" '"Your name?"' "$(tail -n1 "$TMP/record" | cut -f3 | jq '.text.body')"
check "pong session on program 1" "1 pong start" \
  "$(admin "$URL/admin/sessions/$PNID/$WA2" > /dev/null; jq -r '[.program_index, .flow, .step] | join(" ")' "$TMP/resp")"
envelope "$TMP/m3" "$WA2" '{"from":"'$WA2'","id":"wamid.in.3","timestamp":"1700000011","type":"text","text":{"body":"Bo"}}'
check "answer 200" 200 "$(post "$TMP/m3")"
check "pong: the session ended after the answer" 404 "$(admin "$URL/admin/sessions/$PNID/$WA2")"
wait_sends $((n + 2))
check "pong: the answer after a reload is sent" '"Thanks, Bo."' "$(grep '"to":"'$WA2'"' "$TMP/record" | tail -n1 | cut -f3 | jq '.text.body')"
check "menu still starts on program 0" 200 "$(post "$TMP/m1")" # a duplicate: dropped
envelope "$TMP/m4" "$WA" '{"from":"'$WA'","id":"wamid.in.4","timestamp":"1700000012","type":"text","text":{"body":"testing"}}'
post "$TMP/m4" > /dev/null
wait_sends $((n + 3))
check "menu session again on program 0" "0 menu" \
  "$(admin "$URL/admin/sessions/$PNID/$WA" > /dev/null; jq -r '[.program_index, .flow] | join(" ")' "$TMP/resp")"

# logs: one JSON object per line, request lines with method/path/status/duration
check "log: every line is a JSON object" 0 "$(grep -v '^{' "$TMP/vm.log" | wc -l | tr -d ' ')"
check "log: every line parses" "$(wc -l < "$TMP/vm.log" | tr -d ' ')" "$(jq -c . "$TMP/vm.log" | wc -l | tr -d ' ')"
check "log: request line fields" "POST /webhook 200 true" \
  "$(grep '"event":"request"' "$TMP/vm.log" | grep '"path":"/webhook"' | head -n1 | jq -r '[.method, .path, .status, (.duration_ms | type == "number")] | join(" ")')"
check "log: the admin session route, no number" "/admin/sessions" \
  "$(grep '"event":"request"' "$TMP/vm.log" | jq -r 'select(.method == "DELETE" and .status == 200) | .path' | head -n1)"
if grep -q "$WA" "$TMP/vm.log" || grep -q "$WA2" "$TMP/vm.log"; then bad "phone number in clear in the log"; else ok "phone numbers hashed in the log"; fi
if grep -q "$ADMIN" "$TMP/vm.log"; then bad "admin token in the log"; else ok "no admin token in the log"; fi
if grep -q '"event":"reloaded"' "$TMP/vm.log"; then ok "reload logged"; else bad "no reloaded line"; fi

kill "$VM_PID"
i=0
while kill -0 "$VM_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 "$VM_PID" 2>/dev/null; then bad "flowvm did not stop on SIGTERM"; else
  wait "$VM_PID"; check "SIGTERM: exit 0" 0 "$?"; VM_PID=""
fi
finish
