#!/bin/sh
# tests/serve_events.sh: end-to-end test of POST /v1/events (docs/runtime.md, "Intents"):
# intent results pushed by an NLU service. Starts tests/mockapi and flowvm (embedded store)
# on free ports with FLOWVM_EVENTS_TOKEN, and checks: 401 without or with a wrong token,
# 400 for bad bodies, 405 for GET; an intent at or above the trigger's minimum starts the
# flow at its first step, below it at the else step; a second intent reaches the waiting
# session's `when intent` clause; a redelivered event (same id) is a duplicate with no
# second reply. A watchdog stops it within a minute.
# Usage: serve_events.sh FLOWC FLOWVM MOCKAPI. Prints "N passed, N failed".
set -u
FLOWC=$1 FLOWVM=$2 MOCK=$3
TMP=$(mktemp -d /tmp/flowvm-events.XXXXXX)
. "$(dirname "$0")/serve_lib.sh"
serve_traps
start_watchdog serve_events 55
finish() { finish_with "$TMP/vm.log" "$TMP/record"; }

SECRET=test-app-secret
EVT=test-events-token
PNID=106540352242922
cat > "$TMP/order.flow" <<'FLOW'
flow order {
  title "Order"
  trigger intent "ORDER" min 0.8 else -> unsure

  step start {
    say "Ordering."
    wait {
      when intent "CANCEL" -> cancel
      when timeout 1h -> bye
    }
  }

  step unsure {
    say "Not sure what you want."
    end
  }

  step cancel {
    say "Cancelled."
    end
  }

  step bye {
    end
  }
}
FLOW
"$FLOWC" build "$TMP/order.flow" -o "$TMP/order.fbc" || { bad "flowc build"; finish; }
start_mock || { bad "mockapi did not start"; finish; }
WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=v WHATSAPP_ACCESS_TOKEN=t \
  FLOWVM_EVENTS_TOKEN=$EVT WHATSAPP_API_BASE="http://127.0.0.1:$MOCK_PORT/v21.0" \
  "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/order.fbc" 2> "$TMP/vm.log" &
VM_PID=$!
wait_listening "$TMP/vm.log"
[ -n "$PORT" ] || { bad "flowvm did not start"; finish; }
URL="http://127.0.0.1:$PORT"

event() { # TOKEN BODY: the status of a POST /v1/events
  code -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$2" "$URL/v1/events"
}
body() { # ID WA INTENT CONFIDENCE
  printf '{"id":"%s","phone_number_id":"%s","wa_id":"%s","intent":"%s","confidence":%s,"entities":{"item":"tea"}}' \
    "$1" "$PNID" "$2" "$3" "$4"
}
said() { # WA: the text bodies sent to WA, one per line
  grep "\"to\":\"$1\"" "$TMP/record" | cut -f3 | jq -r '.text.body'
}

check "no token: 401" 401 "$(code -d "$(body e1 15550000001 ORDER 0.9)" "$URL/v1/events")"
check "wrong token: 401" 401 "$(event wrong "$(body e1 15550000001 ORDER 0.9)")"
check "GET: 405" 405 "$(code -H "Authorization: Bearer $EVT" "$URL/v1/events")"
check "not JSON: 400" 400 "$(event $EVT 'nope')"
check "no intent: 400" 400 "$(event $EVT '{"id":"x","phone_number_id":"1","wa_id":"2","confidence":1}')"
check "confidence over 1: 400" 400 "$(event $EVT "$(body e0 15550000001 ORDER 1.5)")"
check "entities not an object: 400" 400 \
  "$(event $EVT '{"id":"x","phone_number_id":"1","wa_id":"2","intent":"A","confidence":1,"entities":[1]}')"

check "ORDER 0.9: 200" 200 "$(event $EVT "$(body e1 15550000001 ORDER 0.9)")"
check "not a duplicate" false "$(jq -r .duplicate "$TMP/resp")"
wait_sends 1
check "ORDER 0.9: the first step" "Ordering." "$(said 15550000001)"
check "the same id again: 200" 200 "$(event $EVT "$(body e1 15550000001 ORDER 0.9)")"
check "the same id again: a duplicate" true "$(jq -r .duplicate "$TMP/resp")"
check "CANCEL: 200" 200 "$(event $EVT "$(body e2 15550000001 CANCEL 0.95)")"
wait_sends 2
check "CANCEL: the wait's intent clause" "Ordering. Cancelled." "$(said 15550000001 | tr '\n' ' ' | sed 's/ $//')"

check "ORDER 0.5: 200" 200 "$(event $EVT "$(body e3 15550000002 ORDER 0.5)")"
wait_sends 3
check "ORDER 0.5: the else step" "Not sure what you want." "$(said 15550000002)"
sleep 0.3
check "three replies in all" 3 "$(sends)"
if grep -q '"event":"intent".*"intent":"ORDER"' "$TMP/vm.log"; then ok "intent logged"; else bad "no intent log line"; fi
finish
