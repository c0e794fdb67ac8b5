#!/bin/sh
# tests/serve.sh: end-to-end test of `flowvm serve` (docs/runtime.md). Builds menu.flow with
# flowc, starts tests/mockapi (the Cloud API) and flowvm on free ports, then checks the
# verification handshake, the signature, size and envelope checks, a real conversation
# ("testing" starts the menu, a button reply moves it on) and that redelivered messages
# produce no second reply, by reading what the mock recorded; also that a services file is
# loaded at start, and that a bad one stops the start with a message naming it.
# Usage: serve.sh FLOWC FLOWVM MOCKAPI ROOT. Prints "N passed, N failed"; exit 1 on failure.
set -u
FLOWC=$1 FLOWVM=$2 MOCK=$3 ROOT=$4
TMP=$(mktemp -d /tmp/flowvm-serve.XXXXXX)
MOCK_PID="" VM_PID=""
cleanup() {
  [ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null
  [ -n "$VM_PID" ] && wait "$VM_PID" 2>/dev/null
  [ -n "$MOCK_PID" ] && wait "$MOCK_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

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
PNID=106540352242922
WA=15551234567

"$FLOWC" build "$ROOT/examples/flows/menu.flow" -o "$TMP/menu.fbc" || { bad "flowc build"; finish; }
# a flow whose wait times out after a second, for the timers
cat > "$TMP/ping.flow" <<'FLOW'
flow ping {
  title "Ping"
  trigger keyword "ping"

  step start {
    buttons "Still there?" {
      button "Yes" -> yes
    } timeout 1s -> late
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

start_mock || { bad "mockapi did not start"; finish; }

# a missing secret is an error naming it
env -u WHATSAPP_APP_SECRET -u WHATSAPP_APP_SECRET_FILE WHATSAPP_VERIFY_TOKEN=$VERIFY \
  WHATSAPP_ACCESS_TOKEN=$TOKEN "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/menu.fbc" \
  > /dev/null 2> "$TMP/nosecret.err"
rc=$?
check "missing secret: exit 1" 1 "$rc"
if grep -q WHATSAPP_APP_SECRET "$TMP/nosecret.err"; then ok "missing secret: named"; else bad "missing secret: not named"; fi

# a services file that does not load stops the start, naming the file and the problem
printf '{"services":{"crm":{"base_url":"http://127.0.0.1:9/crm","timout_ms":5}}}' > "$TMP/bad-services.json"
WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=$VERIFY WHATSAPP_ACCESS_TOKEN=$TOKEN \
  "$FLOWVM" serve --listen 127.0.0.1:0 --services "$TMP/bad-services.json" "$TMP/menu.fbc" \
  > /dev/null 2> "$TMP/services.err"
check "bad services file: exit 1" 1 "$?"
check "bad services file: the message" \
  "flowvm: $TMP/bad-services.json: services.crm: unknown field 'timout_ms'" "$(grep -v '^{' "$TMP/services.err")"
printf '{"services":{"crm":{"base_url":"http://127.0.0.1:9/crm","auth_env":"CRM_TOKEN"}}}' > "$TMP/services.json"

# flowvm on a free port; the access token comes from a file
printf '%s\n' "$TOKEN" > "$TMP/token"
WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=$VERIFY WHATSAPP_ACCESS_TOKEN= \
  WHATSAPP_ACCESS_TOKEN_FILE="$TMP/token" WHATSAPP_API_BASE="http://127.0.0.1:$MOCK_PORT/v21.0" \
  FLOWVM_SERVICES="$TMP/services.json" CRM_TOKEN_FILE="$TMP/token" \
  "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/menu.fbc" "$TMP/ping.fbc" 2> "$TMP/vm.log" &
VM_PID=$!
i=0 PORT=""
while [ -z "$PORT" ] && [ $i -lt 100 ]; do
  sleep 0.05; i=$((i + 1))
  PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$TMP/vm.log" | head -n1)
done
[ -n "$PORT" ] || { bad "flowvm did not start"; finish; }
URL="http://127.0.0.1:$PORT"
if grep -q '"event":"listening".*"services":\["crm"\]' "$TMP/vm.log"; then ok "services file loaded"; else bad "services file not loaded"; fi
# the allocator it reports is the one it was linked with (mimalloc, but not under the
# sanitizers)
alloc=libc
if command -v ldd > /dev/null && ldd "$FLOWVM" | grep -q libmimalloc; then alloc=mimalloc; fi
if grep -q '"event":"listening".*"allocator":"'"$alloc"'"' "$TMP/vm.log"; then ok "allocator: $alloc"; else bad "allocator is not reported as $alloc"; fi

post() { # FILE [SIGNATURE|-]: the HTTP status
  if [ "${2:-}" = "-" ]; then
    code -H 'Content-Type: application/json' --data-binary @"$1" "$URL/webhook"
  else
    code -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=${2:-$(sign "$1")}" \
      --data-binary @"$1" "$URL/webhook"
  fi
}
envelope() { wa_envelope "$1" "$WA" "$2"; } # FILE MESSAGE-JSON

check "healthz" 200 "$(code "$URL/healthz")"
check "handshake: 200" 200 "$(code "$URL/webhook?hub.mode=subscribe&hub.verify_token=$VERIFY&hub.challenge=1158201444")"
check "handshake: challenge echoed" 1158201444 "$(cat "$TMP/resp")"
check "handshake: wrong token 403" 403 "$(code "$URL/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")"
check "handshake: wrong mode 403" 403 "$(code "$URL/webhook?hub.mode=unsubscribe&hub.verify_token=$VERIFY&hub.challenge=1")"
check "handshake: no query 403" 403 "$(code "$URL/webhook")"

envelope "$TMP/m1" '{"from":"'$WA'","id":"wamid.in.1","timestamp":"1700000000","type":"text","text":{"body":"testing"}}'
check "bad signature 403" 403 "$(post "$TMP/m1" 0000000000000000000000000000000000000000000000000000000000000000)"
check "missing signature 401" 401 "$(post "$TMP/m1" -)"
check "malformed signature 401" 401 "$(post "$TMP/m1" ABC)"
printf '{"object":"page","entry":[]}' > "$TMP/notenv"
check "not an envelope 400" 400 "$(post "$TMP/notenv")"
if grep -q '"error"' "$TMP/resp"; then ok "400 carries a JSON error"; else bad "400 body: $(cat "$TMP/resp")"; fi
printf 'not json' > "$TMP/notjson"
check "not JSON 400" 400 "$(post "$TMP/notjson")"
head -c 3700000 /dev/zero | tr '\0' ' ' > "$TMP/big"
check "too big 413" 413 "$(post "$TMP/big")"
check "nothing sent for refused bodies" 0 "$(sends)"

# statuses and ignored items: 200, nothing sent
printf '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"%s"},"statuses":[{"id":"wamid.mock.0","status":"delivered","timestamp":"1700000001","recipient_id":"%s"}]},"field":"messages"}]}]}' "$PNID" "$WA" > "$TMP/status"
check "status 200" 200 "$(post "$TMP/status")"
envelope "$TMP/react" '{"from":"'$WA'","id":"wamid.in.r","timestamp":"1700000000","type":"reaction","reaction":{"message_id":"wamid.x","emoji":"x"}}'
check "reaction (ignored) 200" 200 "$(post "$TMP/react")"
envelope "$TMP/hello" '{"from":"'$WA'","id":"wamid.in.0","timestamp":"1700000000","type":"text","text":{"body":"no trigger here"}}'
check "text without a trigger 200" 200 "$(post "$TMP/hello")"

# "testing" starts the menu: a text and the reply buttons
check "text 200" 200 "$(post "$TMP/m1")"
wait_sends 2
check "menu: two sends" 2 "$(sends)"
check "duplicate text 200" 200 "$(post "$TMP/m1")"
sed -n 1p "$TMP/record" > "$TMP/s1"
sed -n 2p "$TMP/record" > "$TMP/s2"
check "send 1: request line" "POST /v21.0/$PNID/messages" "$(cut -f1 "$TMP/s1")"
check "send 1: bearer token" "Bearer $TOKEN" "$(cut -f2 "$TMP/s1")"
cut -f3 "$TMP/s1" > "$TMP/b1"
cut -f3 "$TMP/s2" > "$TMP/b2"
check "send 1: text body" '"whatsapp" "15551234567" "text" "Hi Ana! Welcome to Sunny Roofs." false' \
  "$(jq -r '[.messaging_product, .to, .type, .text.body, .text.preview_url] | map(tojson) | join(" ")' "$TMP/b1")"
check "send 2: interactive button" '"interactive" "button" "What can we help you with?" "Sunny Roofs, since 2009"' \
  "$(jq -r '[.type, .interactive.type, .interactive.body.text, .interactive.footer.text] | map(tojson) | join(" ")' "$TMP/b2")"
check "send 2: button titles" 'reply:Installation reply:Cleaning reply:Talk to us' \
  "$(jq -r '[.interactive.action.buttons[] | "\(.type):\(.reply.title)"] | join(" ")' "$TMP/b2")"
BID=$(jq -r '.interactive.action.buttons[1].reply.id' "$TMP/b2")

# the "Cleaning" button: audio, text, buttons
envelope "$TMP/m2" '{"context":{"from":"15550783881","id":"wamid.mock.2"},"from":"'$WA'","id":"wamid.in.2","timestamp":"1700000005","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"'"$BID"'","title":"Cleaning"}}}'
check "button reply 200" 200 "$(post "$TMP/m2")"
check "button reply again 200" 200 "$(post "$TMP/m2")"
wait_sends 5
sleep 0.5 # room for a wrong extra reply to the duplicates
check "after the button: five sends in all" 5 "$(sends)"
check "send 3: audio by link" '"audio" "https://example.com/media/cleaning-tips.ogg"' \
  "$(sed -n 3p "$TMP/record" | cut -f3 | jq -r '[.type, .audio.link] | map(tojson) | join(" ")')"
check "send 4: text" '"text"' "$(sed -n 4p "$TMP/record" | cut -f3 | jq -r '.type | tojson')"
check "send 5: two buttons" '"button" 2' \
  "$(sed -n 5p "$TMP/record" | cut -f3 | jq -r '[.interactive.type, (.interactive.action.buttons | length)] | map(tojson) | join(" ")')"
check "all sends to the user" "5" "$(cut -f3 "$TMP/record" | jq -r .to | grep -c "^$WA\$")"
if grep -q '"event":"duplicate"' "$TMP/vm.log"; then ok "duplicates logged"; else bad "no duplicate logged"; fi
if grep -q "$WA" "$TMP/vm.log"; then bad "phone number in clear in the log"; else ok "phone numbers hashed in the log"; fi
if grep -q 'Welcome to Sunny' "$TMP/vm.log"; then bad "message body in the log"; else ok "no message bodies in the log"; fi

# timers: "ping" waits with a 1 s timeout, then the timeout path answers by itself
WA2=15557654321
envelope "$TMP/m3" '{"from":"'$WA2'","id":"wamid.in.3","timestamp":"1700000010","type":"text","text":{"body":"ping"}}'
sed -i "s/\"wa_id\":\"$WA\"/\"wa_id\":\"$WA2\"/" "$TMP/m3"
check "ping 200" 200 "$(post "$TMP/m3")"
wait_sends 7
check "timer: buttons, then the timeout reply" '"interactive" "Too late."' \
  "$(sed -n '6,7p' "$TMP/record" | cut -f3 | jq -rs '[.[0].type, .[1].text.body] | map(tojson) | join(" ")')"
check "timer: to the second user" "2" "$(sed -n '6,7p' "$TMP/record" | cut -f3 | jq -r .to | grep -c "^$WA2\$")"

# SIGTERM: a clean stop
kill "$VM_PID"
i=0
while kill -0 "$VM_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 "$VM_PID" 2>/dev/null; then bad "flowvm did not stop on SIGTERM"; else
  wait "$VM_PID"; check "SIGTERM: exit 0" 0 "$?"; VM_PID=""
fi
finish
