#!/bin/sh
# tests/forms_sync.sh: `flowc forms sync` (docs/forms.md) against tests/mockapi's Flows API,
# with errors injected through /_mock/inject. Checks: a form is created and uploaded at once
# and recorded in forms.lock; an unchanged form is skipped; --publish publishes, and a
# published form that changes goes to a new flow (NAME_v2); error 139001/4016012 twice and
# then success takes three attempts, and every time gives up after --max-retries with
# growing delays (from the mock's timestamps); 139001 with another subcode, 100 and 190 fail
# at the first attempt printing message, code, subcode and fbtrace_id; Meta's validation
# errors are reported at their line and column (exit 65); a form flowc finds invalid is not
# uploaded (65); a missing credential is named (1); --only picks one form.
# Usage: forms_sync.sh FLOWC MOCKAPI ROOT. Prints "N passed, N failed".
set -u
FLOWC=$1 MOCK=$2 ROOT=$3
FIX="$ROOT/../shared/fixtures/whatsapp/errors"
TMP=$(mktemp -d /tmp/flowc-forms.XXXXXX)
SECRET=unused
. "$(dirname "$0")/serve_lib.sh"
serve_traps
start_watchdog forms_sync 80

finish() { finish_with "$TMP/out" "$TMP/err" "$TMP/record" "$TMP/record.fail"; }

start_mock || { bad "mockapi did not start"; finish; }
API="http://127.0.0.1:$MOCK_PORT/v21.0"
export WHATSAPP_ACCESS_TOKEN=test-token WHATSAPP_WABA_ID=waba-1 WHATSAPP_API_BASE="$API"

# PROJECT FORM...: a folder with a .flow sending each FORM and its forms/FORM.json
project() {
  d="$TMP/$1"; shift
  mkdir -p "$d/forms"
  { echo "flow p {"; echo '  trigger keyword "p"'; echo "  step s {"
    for form in "$@"; do echo "    form \"$form\""; done
    echo "  }"; echo "}"; } > "$d/p.flow"
  for form in "$@"; do
    cat > "$d/forms/$form.json" <<JSON
{
  "version": "7.1",
  "screens": [
    {
      "id": "ONLY",
      "title": "Form $form",
      "terminal": true,
      "layout": {
        "type": "SingleColumnLayout",
        "children": [
          {"type": "TextInput", "name": "name", "label": "Name"},
          {"type": "Footer", "label": "Send", "on-click-action": {"name": "complete", "payload": {"name": "\${form.name}"}}}
        ]
      }
    }
  ]
}
JSON
  done
}
sync() { # DIR ARGS...: runs flowc forms sync in DIR; sets RC, output in $TMP/out and err
  d="$TMP/$1"; shift
  (cd "$d" && "$FLOWC" forms sync --retry-delay 0.05 "$@" > "$TMP/out" 2> "$TMP/err"); RC=$?
}
inject() { curl -s "http://127.0.0.1:$MOCK_PORT/_mock/inject?$1" > /dev/null; }
uploads() { grep -c "^POST /v21.0/$1/assets" "$TMP/record"; }
failed() { grep -c "	/v21.0/$1/assets" "$TMP/record.fail"; }
lock() { if [ -f "$TMP/$1/forms.lock" ]; then jq -r ".forms.$2.$3" "$TMP/$1/forms.lock"; else echo null; fi; }

# 1. created and uploaded at once; then unchanged; then published; then changed: a new flow
project one quote
sync one p.flow
check "sync: exit 0" 0 "$RC"
check "sync: the flow is created" 1 "$(grep -c '^POST /v21.0/waba-1/flows	Bearer test-token	{"name":"quote"' "$TMP/record")"
check "sync: uploaded once" 1 "$(uploads 1001)"
check "sync: the upload is multipart with the JSON" 1 \
  "$(grep '^POST /v21.0/1001/assets' "$TMP/record" | grep -c 'name="asset_type".*FLOW_JSON')"
check "sync: forms.lock" "1001 DRAFT quote" "$(lock one quote flow_id) $(lock one quote status) $(lock one quote meta_name)"
check "sync: forms.lock keeps the sha256" "$(sha256sum < "$TMP/one/forms/quote.json" | cut -d' ' -f1)" "$(lock one quote sha256)"
check "sync: a progress line" "quote: uploaded to flow 1001" "$(grep uploaded "$TMP/out")"
sync one p.flow
check "unchanged: exit 0" 0 "$RC"
check "unchanged: not uploaded again" 1 "$(uploads 1001)"
check "unchanged: says so" 1 "$(grep -c 'quote: unchanged (flow 1001, DRAFT)' "$TMP/out")"
sync one --publish p.flow
check "publish: exit 0" 0 "$RC"
check "publish: POST /ID/publish" 1 "$(grep -c '^POST /v21.0/1001/publish' "$TMP/record")"
check "publish: not uploaded again" 1 "$(uploads 1001)"
check "publish: forms.lock" PUBLISHED "$(lock one quote status)"
sed -i 's/"Send"/"Send it"/' "$TMP/one/forms/quote.json"
sync one p.flow
check "changed published form: exit 0" 0 "$RC"
check "changed published form: a new flow" 1 "$(grep -c '^POST /v21.0/waba-1/flows	Bearer test-token	{"name":"quote_v2"' "$TMP/record")"
check "changed published form: uploaded to it, not to the published one" "1 1" "$(uploads 1001) $(uploads 1002)"
check "changed published form: forms.lock" "1002 quote_v2 DRAFT" "$(lock one quote flow_id) $(lock one quote meta_name) $(lock one quote status)"

# 2. 139001/4016012 twice, then success: three attempts
project two retry
inject "n=2&status=400&file=$FIX/authored__139001-flow-json-processing-error.json&path=/v21.0/1003/assets"
sync two p.flow
check "transient twice: exit 0" 0 "$RC"
check "transient twice: three attempts" "2 1" "$(failed 1003) $(uploads 1003)"
d1=$(sed -n 's/.*retry 1 of 3 in \([0-9.]*\) s/\1/p' "$TMP/out") d2=$(sed -n 's/.*retry 2 of 3 in \([0-9.]*\) s/\1/p' "$TMP/out")
check "transient twice: the delays grow (equal jitter of 0.05 and 0.1 s)" yes \
  "$(awk -v a="$d1" -v b="$d2" 'BEGIN { print (a >= 0.02 && a <= 0.05 && b >= 0.05 && b <= 0.1 && b >= a) ? "yes" : "no " a " " b }')"

# 3. 139001/4016012 every time: fails after the limit, with growing delays
project three stuck
inject "n=10&status=400&file=$FIX/authored__139001-flow-json-processing-error.json&path=/v21.0/1004/assets"
sync three --max-retries 3 p.flow
check "transient always: exit 1" 1 "$RC"
check "transient always: 1 + 3 attempts" 4 "$(failed 1004)"
check "transient always: says it gave up" 1 "$(grep -c 'stuck: gave up after 4 attempts (--max-retries 3)' "$TMP/err")"
check "transient always: the gaps grow (at least 25, 50, 100 ms)" yes \
  "$(grep '	/v21.0/1004/assets' "$TMP/record.fail" | cut -f2 | awk 'NR > 1 { g[NR - 1] = $1 - p } { p = $1 } END { print (g[1] >= 25 && g[2] >= 50 && g[3] >= 100 && g[3] > g[1]) ? "yes" : "no " g[1] " " g[2] " " g[3] }')"
check "transient always: forms.lock has no upload" null "$(lock three stuck sha256)"

# 4. other errors fail at once, printing message, code, subcode and fbtrace_id
printf '{"error":{"message":"(#139001) Flow can'"'"'t be updated","type":"OAuthException","code":139001,"error_subcode":4016013,"error_user_msg":"The flow is published.","fbtrace_id":"TRACE139"}}' > "$TMP/e139.json"
printf '{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"error_subcode":2494010,"fbtrace_id":"TRACE100"}}' > "$TMP/e100.json"
printf '{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"TRACE190"}}' > "$TMP/e190.json"
n=1005
for e in 139:139001:4016013 100:100:2494010 190:190:463; do
  f=${e%%:*} rest=${e#*:}; code=${rest%%:*} sub=${rest#*:}
  project "err$f" "bad$f"
  inject "n=5&status=400&file=$TMP/e$f.json&path=/v21.0/$n/assets"
  sync "err$f" p.flow
  check "error $code: exit 1" 1 "$RC"
  check "error $code: one attempt" "1 0" "$(failed $n) $(uploads $n)"
  check "error $code: message, code, subcode, fbtrace_id" 1 \
    "$(grep -c "bad$f: uploading the Flow JSON failed: .*(HTTP 400, code $code, subcode $sub, fbtrace_id TRACE$f)" "$TMP/err")"
  [ "$f" = 139 ] && check "error 139001: Meta's message for the user" 1 "$(grep -c 'The flow is published.' "$TMP/err")"
  n=$((n + 1))
done

# 5. Meta's validation errors, at their line and column in the form's JSON
project five checked
sed -i 's/"title": "Form checked"/"title": "mock_validation_error"/' "$TMP/five/forms/checked.json"
sync five p.flow
check "validation errors: exit 65" 65 "$RC"
check "validation errors: at their line and column" 1 \
  "$(grep -c '^forms/checked.json:6:17: error: Meta: mock_validation_error is not allowed here \[INVALID_PROPERTY\]' "$TMP/err")"
check "validation errors: the line is shown" 1 "$(grep -c '^      "title": "mock_validation_error",$' "$TMP/err")"

# 6. invalid locally: not uploaded; a missing credential; --only
project six local other
sed -i 's/"TextInput"/"TextInptu"/' "$TMP/six/forms/local.json"
before=$(grep -c assets "$TMP/record")
sync six p.flow
check "invalid form: exit 65" 65 "$RC"
check "invalid form: reported at its place" 1 "$(grep -c "^forms/local.json:11:20: error: unknown component 'TextInptu'" "$TMP/err")"
check "invalid form: only the valid one uploaded" "$((before + 1))" "$(grep -c assets "$TMP/record")"
(cd "$TMP/six" && WHATSAPP_WABA_ID= "$FLOWC" forms sync p.flow > "$TMP/out" 2> "$TMP/err"); RC=$?
check "no WABA id: exit 1" 1 "$RC"
check "no WABA id: named" 1 "$(grep -c '^flowc: WHATSAPP_WABA_ID is not set' "$TMP/err")"
project seven first second
sync seven --only second forms/second.json forms/first.json
check "--only: exit 0" 0 "$RC"
check "--only: one form" "null DRAFT" "$(lock seven first status) $(lock seven second status)"
finish
