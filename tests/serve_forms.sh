#!/bin/sh
# tests/serve_forms.sh: end-to-end test of WhatsApp Flows form replies through flowvm serve
# (docs/runtime.md, "Forms"). Starts tests/mockapi and flowvm (embedded store, admin API)
# and checks: the form message's payload and flow_token; the nfm_reply moves the session on
# with the reply's fields, exactly once when delivered twice; a reply without flow_token is
# matched through its context.id (the wamid of the form message sent); an unreadable
# response_json, or fields that do not convert to the form's types, get 200 and an
# "invalid" record and the session waits on; replies for an
# older form or another session are recorded as ignored; a reply racing a text of the same
# user gives one answer; GET /admin/forms lists the records. A watchdog stops it in a minute.
# Usage: serve_forms.sh FLOWC FLOWVM MOCKAPI ROOT [redis]. With "redis", the same against a
# redis-server the test starts on a free port. Prints "N passed, N failed".
set -u
FLOWC=$1 FLOWVM=$2 MOCK=$3 ROOT=$4 STORE=${5:-memory}
TMP=$(mktemp -d /tmp/flowvm-forms.XXXXXX)
. "$(dirname "$0")/serve_lib.sh"
serve_traps
start_watchdog serve_forms 55
finish() { finish_with "$TMP/vm.log" "$TMP/record"; }

SECRET=test-app-secret
ADMIN=test-admin-token
PNID=106540352242922
cat > "$TMP/quote.flow" <<'FLOW'
flow quote {
  title "Quote"
  trigger keyword "quote"

  step start {
    form "quote_form" body "Tell us about your roof." cta "Open the form"
    goto waiting
  }

  step waiting {
    wait {
      when whatsapp_flow_response_received -> got
      when message_received -> other
      when timeout 1h -> bye
    }
  }

  step got {
    say "Thanks {form.name}!"
    end
  }

  step other {
    say "Please fill in the form."
    goto waiting
  }

  step bye {
    end
  }
}
FLOW
mkdir -p "$TMP/forms"
cat > "$TMP/forms/quote_form.json" <<'JSON'
{
  "version": "7.1",
  "screens": [
    {
      "id": "QUOTE",
      "title": "Your quote",
      "terminal": true,
      "layout": {
        "type": "SingleColumnLayout",
        "children": [
          {"type": "TextInput", "name": "name", "label": "Your name", "required": true},
          {"type": "TextInput", "name": "panels", "label": "Panels", "input-type": "number"},
          {
            "type": "Footer",
            "label": "Send",
            "on-click-action": {"name": "complete", "payload": {"name": "${form.name}", "panels": "${form.panels}"}}
          }
        ]
      }
    }
  ]
}
JSON
"$FLOWC" build "$TMP/quote.flow" -o "$TMP/quote.fbc" || { bad "flowc build"; finish; }
start_mock || { bad "mockapi did not start"; finish; }
if [ "$STORE" = redis ]; then
  RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no > "$TMP/redis.log" 2>&1 &
  EXTRA_PIDS=$!
  i=0; while ! redis-cli -p "$RPORT" ping > /dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  export FLOWVM_REDIS_URL="redis://127.0.0.1:$RPORT"
  # with Redis, the forms.lock of flowc forms sync: the form goes out by its Meta flow id
  printf '{"forms":{"quote_form":{"name":"quote_form","meta_name":"quote_form_v2","flow_id":"4242","sha256":"x","status":"PUBLISHED","version":2}},"version":1}\n' > "$TMP/forms.lock"
  export FLOWVM_FORMS_LOCK="$TMP/forms.lock"
  FORM_REF=4242
else
  FORM_REF=quote_form
fi
WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=v WHATSAPP_ACCESS_TOKEN=t FLOWVM_ADMIN_TOKEN=$ADMIN \
  WHATSAPP_API_BASE="http://127.0.0.1:$MOCK_PORT/v21.0" \
  "$FLOWVM" serve --listen 127.0.0.1:0 "$TMP/quote.fbc" 2> "$TMP/vm.log" &
VM_PID=$!
wait_listening "$TMP/vm.log"
[ -n "$PORT" ] || { bad "flowvm did not start"; finish; }
URL="http://127.0.0.1:$PORT"

post() { # FILE
  code -H 'Content-Type: application/json' -H "X-Hub-Signature-256: sha256=$(sign "$1")" \
    --data-binary @"$1" "$URL/webhook"
}
text() { # WA ID TEXT
  wa_envelope "$TMP/t.$2" "$1" '{"from":"'$1'","id":"'$2'","timestamp":"1700000000","type":"text","text":{"body":"'"$3"'"}}'
  post "$TMP/t.$2"
}
reply() { # WA ID RESPONSE-JSON-STRING [CONTEXT-WAMID]: an nfm_reply
  ctx=""
  [ -n "${4:-}" ] && ctx='"context":{"from":"15550783881","id":"'$4'"},'
  wa_envelope "$TMP/r.$2" "$1" '{'"$ctx"'"from":"'$1'","id":"'$2'","timestamp":"1700000000","type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"response_json":'"$3"',"body":"Sent","name":"flow"}}}'
  post "$TMP/r.$2"
}
said() { grep "\"to\":\"$1\"" "$TMP/record" | cut -f3 | jq -r 'select(.type == "text") | .text.body'; }
wait_said() { # WA N: waits until WA got N texts
  j=0; while [ "$(said "$1" | grep -c .)" -lt "$2" ] && [ $j -lt 50 ]; do sleep 0.1; j=$((j + 1)); done
}
form_sent() { # WA: the form message's flow_token
  grep "\"to\":\"$1\"" "$TMP/record" | cut -f3 | jq -r 'select(.type == "interactive") | .interactive.action.parameters.flow_token' | tail -n1
}
wait_form() { j=0; while [ -z "$(form_sent "$1")" ] && [ $j -lt 50 ]; do sleep 0.1; j=$((j + 1)); done; }
records() { curl -s -H "Authorization: Bearer $ADMIN" "$URL/admin/forms"; }

# 1. a reply with its flow_token, delivered twice
U1=15550000101
check "quote: accepted" 200 "$(text $U1 wamid.u1.1 quote)"
wait_form $U1
check "the form's flow_token names the session and the form" "$PNID:$U1:f1" "$(form_sent $U1)"
check "the form message (by flow_id from forms.lock, else flow_name)" "flow Open the form $FORM_REF" \
  "$(grep "\"to\":\"$U1\"" "$TMP/record" | cut -f3 | jq -r 'select(.type == "interactive") | "\(.interactive.type) \(.interactive.action.parameters.flow_cta) \(.interactive.action.parameters.flow_id // .interactive.action.parameters.flow_name)"')"
R1='"{\"flow_token\":\"'$PNID:$U1:f1'\",\"name\":\"Ana\"}"'
check "reply: accepted" 200 "$(reply $U1 wamid.u1.2 "$R1")"
wait_said $U1 1
check "reply: the session moved on with the field" "Thanks Ana!" "$(said $U1)"
check "the same reply again: 200" 200 "$(reply $U1 wamid.u1.2 "$R1")"
sleep 0.3
check "the same reply again: no second answer" 1 "$(said $U1 | grep -c .)"

# 2. no flow_token: matched through context.id, the wamid the mock gave the form message
U2=15550000102
text $U2 wamid.u2.1 quote > /dev/null
wait_form $U2
n=$(grep -n "\"to\":\"$U2\"" "$TMP/record" | grep '"type":"interactive"' | tail -n1 | cut -d: -f1)
check "a text while waiting" 200 "$(text $U2 wamid.u2.2 hello)"
wait_said $U2 1
check "reply without flow_token: accepted" 200 "$(reply $U2 wamid.u2.3 '"{\"name\":\"Bo\"}"' "wamid.mock.$n")"
wait_said $U2 2
check "reply without flow_token: matched by context.id" "Please fill in the form. Thanks Bo!" "$(said $U2 | tr '\n' ' ' | sed 's/ $//')"

# 3. unreadable, older, foreign: recorded and ignored; then a good one
U3=15550000103
text $U3 wamid.u3.1 quote > /dev/null
wait_form $U3
check "unreadable response_json: 200" 200 "$(reply $U3 wamid.u3.2 '"{not json"')"
check "older form: 200" 200 "$(reply $U3 wamid.u3.3 '"{\"flow_token\":\"'$PNID:$U3:f0'\",\"name\":\"Old\"}"')"
check "another session's token: 200" 200 "$(reply $U3 wamid.u3.4 '"{\"flow_token\":\"'$PNID:$U1:f1'\",\"name\":\"Eve\"}"')"
check "a panel count that is not a number: 200" 200 "$(reply $U3 wamid.u3.6 '"{\"flow_token\":\"'$PNID:$U3:f1'\",\"name\":\"Cy\",\"panels\":\"lots\"}"')"
sleep 0.3
check "nothing answered to those" 0 "$(said $U3 | grep -c .)"
check "then a good reply" 200 "$(reply $U3 wamid.u3.5 '"{\"flow_token\":\"'$PNID:$U3:f1'\",\"name\":\"Cy\"}"')"
wait_said $U3 1
check "the good reply moved the session on" "Thanks Cy!" "$(said $U3)"

# 4. a reply racing a text of the same user: one answer to the form
U4=15550000104
text $U4 wamid.u4.1 quote > /dev/null
wait_form $U4
reply $U4 wamid.u4.2 '"{\"flow_token\":\"'$PNID:$U4:f1'\",\"name\":\"Di\"}"' > "$TMP/race1" &
p1=$!
text $U4 wamid.u4.3 "are you there" > "$TMP/race2" &
p2=$!
wait $p1 $p2
sleep 0.5
check "race: both accepted" "200 200" "$(cat "$TMP/race1") $(cat "$TMP/race2")"
check "race: the form answered once" 1 "$(said $U4 | grep -c 'Thanks Di!')"

# 5. the records
records > "$TMP/forms.json"
st() { jq -r --arg w "$1" '.entries[] | select(.entry.wamid == $w) | .entry.status' "$TMP/forms.json" | tr '\n' ' ' | sed 's/ $//'; }
check "record: applied" applied "$(st wamid.u1.2 | cut -d' ' -f1)"
check "record: the duplicate" "applied duplicate" "$(st wamid.u1.2)"
check "record: fields" Ana "$(jq -r '.entries[] | select(.entry.wamid == "wamid.u1.2" and .entry.status == "applied") | .entry.fields.name' "$TMP/forms.json")"
check "record: the context.id match kept the form" "applied quote_form" \
  "$(jq -r '.entries[] | select(.entry.wamid == "wamid.u2.3") | "\(.entry.status) \(.entry.form)"' "$TMP/forms.json")"
check "record: unreadable" invalid "$(st wamid.u3.2)"
check "record: older form" ignored "$(st wamid.u3.3)"
check "record: another session's" ignored "$(st wamid.u3.4)"
check "record: fields that do not convert" invalid "$(st wamid.u3.6)"
check "record: why they do not" "field 'panels': \"lots\" is not a number" \
  "$(jq -r '.entries[] | select(.entry.wamid == "wamid.u3.6") | .entry.why' "$TMP/forms.json")"
check "admin forms needs the token" 401 "$(code "$URL/admin/forms")"
finish
