#!/bin/sh
# tests/serve_saga.sh: end-to-end test of saga actions through the action services
# (docs/runtime.md, "Action services"). Starts tests/mockapi (the Cloud API and, under
# /svc/, the services) and flowvm with a services file, and runs a three-action saga
# (reserve, charge, ship, each with an undo) once without failures and once with a final
# failure injected at each action in turn. Checks that every run ends all-applied (the
# three calls, no undo, the success message) or all-compensated (the calls before the
# failed one, then their undos newest first, then the on-failure message); that a retried
# 5xx keeps its Idempotency-Key; and that the result record reaches the flow. A watchdog
# stops it within a minute.
# Usage: serve_saga.sh FLOWC FLOWVM MOCKAPI. Prints "N passed, N failed".
set -u
FLOWC=$1 FLOWVM=$2 MOCK=$3
TMP=$(mktemp -d /tmp/flowvm-saga.XXXXXX)
. "$(dirname "$0")/serve_lib.sh"
serve_traps
start_watchdog serve_saga 55
finish() { finish_with "$TMP/vm.log" "$TMP/record" "$TMP/record.svc"; }

SECRET=test-app-secret
PNID=106540352242922
cat > "$TMP/shop.flow" <<'FLOW'
flow shop {
  title "Shop"
  trigger keyword "buy"

  step start {
    saga {
      hold = action stock.reserve { item: "tea" } undo stock.release { id: hold.id }
      pay = action bank.charge { amount: 12 } undo bank.refund { id: pay.id }
      action post.ship { item: "tea" } undo post.cancel { item: "tea" }
    } on failure -> sorry
    say "Done: {pay.id}"
    end
  }

  step sorry {
    say "Sorry, nothing was ordered."
    end
  }
}

flow guess {
  title "Guess"
  trigger intent "ORDER" min 0.8 else -> unsure

  step start {
    say "An order, by intent."
    end
  }

  step unsure {
    say "Not sure."
    end
  }
}

flow helpdesk {
  title "Help"
  trigger keyword "help"

  step start {
    say "How can I help?"
    wait {
      when intent "TALK_TO_HUMAN" min 0.7 priority 5 -> human
      when message_received -> echo
      when timeout 1h -> start
    }
  }

  step human {
    say "A person will answer you."
    end
  }

  step echo {
    say "You said something else."
    end
  }
}
FLOW
"$FLOWC" build "$TMP/shop.flow" -o "$TMP/shop.fbc" || { bad "flowc build"; finish; }
start_mock || { bad "mockapi did not start"; finish; }
MOCK_URL="http://127.0.0.1:$MOCK_PORT"
cat > "$TMP/services.json" <<EOF2
{"services": {
  "stock": {"base_url": "$MOCK_URL/svc/stock", "timeout_ms": 2000},
  "bank": {"base_url": "$MOCK_URL/svc/bank", "auth_env": "BANK_TOKEN", "auth_prefix": "Bearer ",
           "retry": {"max_attempts": 3, "base_ms": 20, "cap_ms": 100}},
  "post": {"base_url": "$MOCK_URL/svc/post"},
  "nlu": {"base_url": "$MOCK_URL/svc/nlu"}
}}
EOF2
BANK_TOKEN=bank-secret WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=v WHATSAPP_ACCESS_TOKEN=t \
  WHATSAPP_API_BASE="$MOCK_URL/v21.0" FLOWVM_SERVICES="$TMP/services.json" \
  FLOWVM_NLU_ACTION=nlu.classify \
  "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/shop.fbc" 2> "$TMP/vm.log" &
VM_PID=$!
wait_listening "$TMP/vm.log"
[ -n "$PORT" ] || { bad "flowvm did not start"; finish; }
URL="http://127.0.0.1:$PORT"

buy() { # WA [TEXT]: the user WA says "buy" (or TEXT)
  wa_envelope "$TMP/in" "$1" '{"from":"'$1'","id":"wamid.buy.'$1'","timestamp":"1700000000","type":"text","text":{"body":"'"${2:-buy}"'"}}'
  code -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$(sign "$TMP/in")" \
    --data-binary @"$TMP/in" "$URL/webhook"
}
said() { grep "\"to\":\"$1\"" "$TMP/record" | cut -f3 | jq -r '.text.body'; }
calls() { # the action paths called since line $1 of the services record, space-separated
  tail -n +"$1" "$TMP/record.svc" | cut -f1 | sed 's|^POST /svc/||' | tr '\n' ' ' | sed 's/ $//'
}
svc_lines() { wc -l < "$TMP/record.svc" 2>/dev/null | tr -d ' '; }
wait_text() { # WA: waits until WA got a text
  j=0; while [ -z "$(said "$1")" ] && [ $j -lt 100 ]; do sleep 0.1; j=$((j + 1)); done
}

# all applied
: > "$TMP/record.svc"
check "no failure: accepted" 200 "$(buy 15550000010)"
wait_text 15550000010
check "no failure: the three actions" "stock/reserve bank/charge post/ship" "$(calls 1)"
check "no failure: the result record reached the flow" "Done: svc-2" "$(said 15550000010)"
check "the bank's auth header" "Bearer bank-secret" "$(grep bank/charge "$TMP/record.svc" | cut -f3)"

# a final failure at each action in turn: all compensated, newest first
expect_1="stock/reserve"
expect_2="stock/reserve bank/charge stock/release"
expect_3="stock/reserve bank/charge post/ship bank/refund stock/release"
for k in 1 2 3; do
  case $k in 1) act=stock/reserve;; 2) act=bank/charge;; 3) act=post/ship;; esac
  curl -s "$MOCK_URL/_mock/inject?n=1&status=422&path=/svc/$act&body=%7B%22error%22%3A%22refused%22%7D" > /dev/null
  start=$(( $(svc_lines) + 1 ))
  wa=1555000002$k
  check "failure at $act: accepted" 200 "$(buy $wa)"
  wait_text $wa
  eval want=\$expect_$k
  check "failure at $act: compensated newest first" "$want" "$(calls $start)"
  check "failure at $act: the on-failure step" "Sorry, nothing was ordered." "$(said $wa)"
done

# a 5xx is retried with the same Idempotency-Key
curl -s "$MOCK_URL/_mock/inject?n=2&status=503&path=/svc/bank/charge" > /dev/null
start=$(( $(svc_lines) + 1 ))
check "5xx twice: accepted" 200 "$(buy 15550000030)"
wait_text 15550000030
check "5xx twice: three attempts, then on" "stock/reserve bank/charge bank/charge bank/charge post/ship" "$(calls $start)"
check "5xx twice: one Idempotency-Key" 1 "$(tail -n +"$start" "$TMP/record.svc" | grep bank/charge | cut -f2 | sort -u | wc -l | tr -d ' ')"
case "$(said 15550000030)" in "Done: svc-"[0-9]*) ok "5xx twice: done";;
  *) bad "5xx twice: done: got '$(said 15550000030)'";; esac
# free text that no keyword starts goes to the classifier (FLOWVM_NLU_ACTION), whose intent
# starts the intent flow; a failed classification answers nothing
curl -s "$MOCK_URL/_mock/inject?n=1&status=200&path=/svc/nlu/classify&body=%7B%22intent%22%3A%22ORDER%22%2C%22confidence%22%3A0.93%7D" > /dev/null
start=$(( $(svc_lines) + 1 ))
check "classified: accepted" 200 "$(buy 15550000040 "I would like some tea")"
wait_text 15550000040
check "classified: the classifier called once" "nlu/classify" "$(calls $start)"
check "classified: its text sent" '{"text":"I would like some tea"}' "$(tail -n1 "$TMP/record.svc" | cut -f5)"
check "classified: the intent flow started" "An order, by intent." "$(said 15550000040)"
curl -s "$MOCK_URL/_mock/inject?n=1&status=200&path=/svc/nlu/classify&body=%7B%22intent%22%3A%22ORDER%22%2C%22confidence%22%3A0.3%7D" > /dev/null
check "low confidence: accepted" 200 "$(buy 15550000041 "maybe tea")"
wait_text 15550000041
check "low confidence: the else step" "Not sure." "$(said 15550000041)"
curl -s "$MOCK_URL/_mock/inject?n=1&status=400&path=/svc/nlu/classify" > /dev/null
check "classifier refuses: accepted" 200 "$(buy 15550000042 "hello?")"
j=0; while ! grep -q '"event":"classify_failed"' "$TMP/vm.log" && [ $j -lt 50 ]; do sleep 0.1; j=$((j + 1)); done
if grep -q '"event":"classify_failed"' "$TMP/vm.log"; then ok "classifier refuses: logged"; else bad "no classify_failed line"; fi
check "classifier refuses: nothing sent" "" "$(said 15550000042)"
# in a session whose wait has intent clauses, free text is classified first and comes back
# with the intent found: an intent clause takes it, else message_received does
msg() { # WA ID TEXT
  wa_envelope "$TMP/in" "$1" '{"from":"'$1'","id":"'$2'","timestamp":"1700000000","type":"text","text":{"body":"'"$3"'"}}'
  code -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$(sign "$TMP/in")" \
    --data-binary @"$TMP/in" "$URL/webhook"
}
wait_texts() { # WA N
  j=0; while [ "$(said "$1" | grep -c .)" -lt "$2" ] && [ $j -lt 100 ]; do sleep 0.1; j=$((j + 1)); done
}
# in_wait NAME WA STATUS BODY TEXT WANT: WA starts the help flow, the classifier is set to
# answer STATUS with BODY (URL-encoded), WA says TEXT in the wait, and gets WANT
in_wait() {
  start=$(( $(svc_lines) + 1 ))
  check "$1: help accepted" 200 "$(msg "$2" "wamid.$2.1" help)"
  wait_texts "$2" 1
  check "$1: no classifier for a keyword trigger" "" "$(calls $start)"
  curl -s "$MOCK_URL/_mock/inject?n=1&status=$3&path=/svc/nlu/classify&body=$4" > /dev/null
  check "$1: accepted" 200 "$(msg "$2" "wamid.$2.2" "$5")"
  wait_texts "$2" 2
  check "$1: the classifier asked with the text" "{\"text\":\"$5\"}" "$(tail -n1 "$TMP/record.svc" | cut -f5)"
  check "$1: the answer" "$6" "$(said "$2" | tail -n1)"
}
in_wait "intent in a wait" 15550000050 200 "%7B%22intent%22%3A%22TALK_TO_HUMAN%22%2C%22confidence%22%3A0.91%7D" \
  "can I talk to someone" "A person will answer you."
in_wait "another intent" 15550000051 200 "%7B%22intent%22%3A%22PRICE%22%2C%22confidence%22%3A0.95%7D" \
  "how much is it" "You said something else."
in_wait "below min" 15550000052 200 "%7B%22intent%22%3A%22TALK_TO_HUMAN%22%2C%22confidence%22%3A0.4%7D" \
  "a person maybe" "You said something else."
in_wait "classifier fails" 15550000053 400 "" "hello there" "You said something else."
if grep -q 'bank-secret' "$TMP/vm.log"; then bad "a service secret in the log"; else ok "no service secret in the log"; fi
finish
