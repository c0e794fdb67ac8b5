#!/bin/sh
# tools/demo.sh BUILD_DIR: the demo behind `make demo`. Compiles every example flow to
# bytecode, starts `flowvm serve` on them (embedded store) with a local mock of the Cloud
# API (tests/mockapi), drives one example conversation through real signed webhooks and
# prints it as the user would see it on the phone; then leaves the server running in the
# foreground, saying where (Ctrl-C stops it). FLOWVM_LISTEN picks the address
# (127.0.0.1:8080 by default; a free port when that one is taken); DEMO_NO_WAIT=1 stops
# after the conversation (the test of the demo does that).
set -eu
build=$1
flowc="$build/flowc" flowvm="$build/flowvm" mock="$build/tests/mockapi"
dir="$build/demo"
rm -rf "$dir"
mkdir -p "$dir" "$build/examples"
echo "== compiling the examples =="
for f in examples/flows/*.flow; do
  out="$build/examples/$(basename "$f" .flow).fbc"
  "$flowc" build "$f" -o "$out"
  printf '  %-34s -> %s (%s bytes)\n' "$f" "$out" "$(wc -c <"$out" | tr -d ' ')"
done

SECRET=demo-app-secret
PNID=106540352242922
USER_WA=15551234567
MOCK_PID="" VM_PID=""
stop() {
  for p in $VM_PID $MOCK_PID; do kill "$p" 2>/dev/null || true; done
  for p in $VM_PID $MOCK_PID; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 0' INT TERM

"$mock" "$dir/record" 0 > "$dir/mock.port" 2> "$dir/mock.log" &
MOCK_PID=$!
i=0; while [ ! -s "$dir/mock.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
MOCK_PORT=$(head -n1 "$dir/mock.port")

listen=${FLOWVM_LISTEN:-127.0.0.1:8080}
start_vm() {
  WHATSAPP_APP_SECRET=$SECRET WHATSAPP_VERIFY_TOKEN=demo-verify-token \
    WHATSAPP_ACCESS_TOKEN=demo-access-token FLOWVM_ADMIN_TOKEN=demo-admin-token \
    WHATSAPP_API_BASE="http://127.0.0.1:$MOCK_PORT/v21.0" \
    "$flowvm" serve --listen "$1" "$build/examples" 2>> "$dir/flowvm.log" &
  VM_PID=$!
  i=0 PORT=""
  while [ -z "$PORT" ] && [ $i -lt 100 ] && kill -0 "$VM_PID" 2>/dev/null; do
    sleep 0.05; i=$((i + 1))
    PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$dir/flowvm.log" | head -n1)
  done
}
start_vm "$listen"
if [ -z "$PORT" ]; then # the address is taken: any free port on the same host
  wait "$VM_PID" 2>/dev/null || true
  start_vm "${listen%:*}:0"
fi
[ -n "$PORT" ] || { echo "flowvm did not start; its log:"; cat "$dir/flowvm.log"; exit 1; }
HOST=${listen%:*}
URL="http://$HOST:$PORT"

# ---- the conversation, through signed webhooks ----
n=0
post() { # MESSAGE-JSON: one signed webhook from the user (runs in a subshell)
  printf '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"%s"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"%s"}],"messages":[%s]},"field":"messages"}]}]}' \
    "$PNID" "$USER_WA" "$1" > "$dir/in.json"
  sig=$(openssl dgst -sha256 -hmac "$SECRET" < "$dir/in.json" | sed 's/^.*= *//')
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary @"$dir/in.json" "$URL/webhook"
}
seen=0
show_replies() { # waits until the bot's messages stop coming, prints the new ones
  last=-1
  while :; do
    sleep 0.3
    now=$(wc -l < "$dir/record" | tr -d ' ')
    [ "$now" = "$last" ] && [ "$now" -gt "$seen" ] && break
    [ "$now" = "$last" ] && [ "$now" = "$seen" ] && break
    last=$now
  done
  tail -n +"$((seen + 1))" "$dir/record" | cut -f3 | jq -r '
    if .type == "text" then "  bot: \(.text.body)"
    elif .type == "interactive" and .interactive.type == "button" then
      "  bot: \(.interactive.body.text)" +
      ([.interactive.action.buttons[].reply.title] | to_entries
        | map("\n       [\(.key + 1)] \(.value)") | join(""))
    elif .type == "interactive" and .interactive.type == "list" then
      "  bot: \(.interactive.body.text)\n       (\(.interactive.action.button))" +
      ([.interactive.action.sections[].rows[].title] | to_entries
        | map("\n       \(.key + 1). \(.value)") | join(""))
    elif .type == "interactive" and .interactive.type == "flow" then
      "  bot: \(.interactive.body.text)\n       [form: \(.interactive.action.parameters.flow_cta)]"
    elif .type == "template" then "  bot: (template \(.template.name))"
    elif (.type | IN("image", "video", "document", "audio")) then
      "  bot: [\(.type)] \(.[.type].link)" + (if .[.type].caption then " \"\(.[.type].caption)\"" else "" end)
    else "  bot: (\(.type))" end'
  seen=$(wc -l < "$dir/record" | tr -d ' ')
}
say() { # TEXT
  echo "  you: $1"
  n=$((n + 1))
  code=$(post '{"from":"'$USER_WA'","id":"wamid.demo.'$n'","timestamp":"1700000000","type":"text","text":{"body":"'"$1"'"}}')
  [ "$code" = 200 ] || echo "  (webhook answered $code)"
  show_replies
}
tap() { # TITLE: taps the button with that title in the bot's last buttons message
  id=$(cut -f3 "$dir/record" | jq -r --arg t "$1" \
    'select(.interactive.type == "button") | .interactive.action.buttons[].reply | select(.title == $t) | .id' | tail -n1)
  echo "  you: [$1]"
  n=$((n + 1))
  code=$(post '{"context":{"from":"15550783881","id":"wamid.mock.'$seen'"},"from":"'$USER_WA'","id":"wamid.demo.'$n'","timestamp":"1700000000","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"'"$id"'","title":"'"$1"'"}}}')
  [ "$code" = 200 ] || echo "  (webhook answered $code)"
  show_replies
}
fill() { # FIELDS-JSON: submits the WhatsApp Flows form of the bot's last form message
  last=$(cut -f3 "$dir/record" | jq -c 'select(.interactive.type == "flow")' | tail -n1)
  token=$(printf '%s' "$last" | jq -r '.interactive.action.parameters.flow_token')
  ctx=$(cut -f3 "$dir/record" | jq -r 'select(.interactive.type == "flow") | input_line_number' | tail -n1)
  echo "  you: [submits the form] $1"
  n=$((n + 1))
  resp=$(printf '%s' "$1" | jq -c --arg t "$token" '. + {flow_token: $t}' | jq -Rs '.[:-1]')
  code=$(post '{"context":{"from":"15550783881","id":"wamid.mock.'$((ctx - 1))'"},"from":"'$USER_WA'","id":"wamid.demo.'$n'","timestamp":"1700000000","type":"interactive","interactive":{"type":"nfm_reply","nfm_reply":{"name":"flow","body":"Sent","response_json":'"$resp"'}}}')
  [ "$code" = 200 ] || echo "  (webhook answered $code)"
  show_replies
}

echo
echo "== a conversation with examples/flows/menu.flow, through flowvm serve =="
say "testing"
tap "Installation"
tap "Flat"

echo
echo "== a WhatsApp Flows form with examples/flows/solar.flow =="
USER_WA=15557654321
say "solar"
echo "  (the form, examples/flows/forms/solar_installation.json: $(jq -r '[.screens[].id] | "\(length) screens: " + join(" > ")' examples/flows/forms/solar_installation.json))"
fill '{"full_name":"Ana Souza","phone":"+5511987654321","email":"ana@example.com","street":"Rua das Flores 12","city":"Campinas","postal_code":"13010-000","roof_type":"pitched","orientation":"north","roof_area":"64","monthly_bill":"420","appliances":["air_conditioning","electric_shower"],"panels":"12","battery":true,"visit_date":"2026-12-03","visit_time":"morning","accept_terms":true}'

echo
echo "flowvm is running at $URL (pid $VM_PID), with every example flow loaded:"
echo "  webhooks   POST $URL/webhook  (app secret: $SECRET; verify token: demo-verify-token)"
echo "  health     $URL/healthz  $URL/readyz  $URL/metrics"
echo "  admin      curl -H 'Authorization: Bearer demo-admin-token' $URL/admin/flows"
echo "  Cloud API  a local mock at http://127.0.0.1:$MOCK_PORT (requests recorded in $dir/record)"
echo "  logs       $dir/flowvm.log"
[ "${DEMO_NO_WAIT:-}" = 1 ] && exit 0
echo "Press Ctrl-C to stop."
wait "$VM_PID" || true
