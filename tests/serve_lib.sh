# tests/serve_lib.sh: helpers shared by the flowvm end-to-end scripts (tests/serve*.sh),
# sourced by them after they set TMP (their scratch folder), SECRET (the app secret) and
# MOCK (the mock Cloud API binary), and define finish. Results go through ok/bad/check,
# which count into pass and fail.
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected '$2', got '$3'"; fi
}

# HTTP: the status code of a curl request; the body lands in $TMP/resp.
code() { curl -s -m 10 -o "$TMP/resp" -w '%{http_code}' "$@"; }
# The X-Hub-Signature-256 hex digest of a file, as Meta computes it.
sign() { openssl dgst -sha256 -hmac "$SECRET" < "$1" | sed 's/^.*= *//'; }

# FILE WA MESSAGE-JSON: writes a webhook envelope with one message from WA to PNID.
wa_envelope() {
  printf '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"%s"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"%s"}],"messages":[%s]},"field":"messages"}]}]}' \
    "$PNID" "$2" "$3" > "$1"
}

# The mock Cloud API: records requests in $TMP/record. Sets MOCK_PID and MOCK_PORT.
start_mock() {
  : > "$TMP/record"
  "$MOCK" "$TMP/record" 0 > "$TMP/mock.port" 2> "$TMP/mock.err" &
  MOCK_PID=$!
  i=0
  while [ ! -s "$TMP/mock.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  MOCK_PORT=$(head -n1 "$TMP/mock.port")
  [ -n "$MOCK_PORT" ]
}
sends() { wc -l < "$TMP/record" | tr -d ' '; }
wait_sends() { # N [TENTHS]: waits (10 s by default) until the mock recorded N requests
  j=0
  while [ "$(sends)" -lt "$1" ] && [ $j -lt "${2:-100}" ]; do sleep 0.1; j=$((j + 1)); done
}

# NAME SECONDS: a watchdog that stops the calling script (TERM) after SECONDS; sets WATCHDOG.
start_watchdog() {
  ( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep "$2" & s=$!; wait $s; echo "$1: timed out" >&2
    kill -TERM $$ ) < /dev/null > /dev/null 2>&1 &
  WATCHDOG=$!
}
# FILE...: stops the watchdog, prints the counts and exits 0, or, after a failure, prints
# each existing FILE under a header and exits 1.
finish_with() {
  kill "$WATCHDOG" 2>/dev/null
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ] && exit 0
  for f in "$@"; do [ -e "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }; done
  exit 1
}
# LOG: waits (5 s at most) for flowvm's "listening" line in LOG; sets PORT ("" if none).
wait_listening() {
  i=0 PORT=""
  while [ -z "$PORT" ] && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
    PORT=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$1" | head -n1)
  done
}
# Installs the usual traps: on exit, the processes VM_PID and MOCK_PID (and EXTRA_PIDS) are
# stopped and TMP removed; INT, TERM and HUP exit 2.
serve_traps() {
  MOCK_PID=${MOCK_PID:-} VM_PID=${VM_PID:-} EXTRA_PIDS=${EXTRA_PIDS:-}
  trap 'for p in $VM_PID $MOCK_PID $EXTRA_PIDS; do kill "$p" 2>/dev/null; done
        for p in $VM_PID $MOCK_PID $EXTRA_PIDS; do wait "$p" 2>/dev/null; done
        rm -rf "$TMP"' EXIT
  trap 'exit 2' INT TERM HUP
}
