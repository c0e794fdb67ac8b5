#!/bin/sh
# tests/repl_fuzz.sh: `flowvm repl` never crashes on any input line. Feeds each example
# flow (and one as bytecode) with random lines, made by a seeded generator: commands with
# random arguments (breakpoints, stepping, :back, :save/:load, :reload, :form with broken
# JSON, huge numbers and durations), triggers, button numbers and titles, answers to
# actions, and random bytes. The REPL must read them all and exit 0 at the end of input;
# under the sanitizer build any memory error or undefined behaviour fails it.
# Usage: repl_fuzz.sh FLOWC FLOWVM ROOT [LINES]. Prints "N passed, N failed".
set -u
FLOWC=$1 FLOWVM=$2 ROOT=$3 LINES=${4:-500}
TMP=$(mktemp -d /tmp/flowvm-rfuzz.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
pass=0 fail=0
cp "$ROOT"/examples/flows/*.flow "$ROOT"/tests/repl/*.flow "$ROOT"/tests/repl/services.json "$TMP/"
cp -r "$ROOT"/examples/flows/forms "$TMP/forms"
"$FLOWC" build "$TMP/menu.flow" -o "$TMP/menu.fbc" || { echo "FAIL flowc build"; exit 1; }
gen() { # SEED: LINES random lines
  LC_ALL=C awk -v seed="$1" -v n="$LINES" '
  function pick(s,   a, k) { k = split(s, a, "|"); return a[int(rand() * k) + 1] }
  function num() { return pick("0|1|2|3|4|9|12|-1|99999999999999999999|1e308|0.5|abc|") }
  function bytes(k,   s, i, c) {
    s = ""
    for (i = 0; i < k; i++) { c = int(rand() * 254) + 1; if (c == 10 || c == 13) c = 32; s = s sprintf("%c", c) }
    return s
  }
  BEGIN {
    srand(seed)
    cmds = ":tap|:pick|:form|:image|:video|:audio|:document|:sticker|:location|:intent|:wait|:ok|:fail|:break|:delete|:step|:next|:continue|:vars|:where|:effects|:history|:back|:save|:load|:reload|:help|:s|:n|:c|:b|:|::|ok|fail"
    words = "testing|test|quote|order|join|solar|credit|hello|Installation|cleaning|Talk to us|Flat|Place order|All good|yes|no|cancel|1|2|3|4|0|10|ana@example.com|1500|\"ok\"|\"|\\|{|}|[]|#x"
    args = "start|next_steps|menu.start|quote.roof|menu.flow:13|onboarding.flow:48|menu.flow:0|x:|:|9999999999|all|1|0|-3|f1.json|f2.json|menu.flow|menu_v2.flow|menu_v3.flow|broken.flow|nothere.flow|services.json|{\"a\": 1}|{\"full_name\": \"Ana\", \"panels\": \"25\"}|{bad|[1,2|\"cap\"|41.38 2.17 \"Home\" \"Street\"|TALK_TO_HUMAN 0.9|ORDER_REQUEST 0.95 {\"p\": 1}|25h|1s|1h30m|3x|99999999w|{\"id\": \"A-1\"}|service down"
    for (i = 0; i < n; i++) {
      r = rand()
      if (r < 0.45) line = pick(cmds) (rand() < 0.8 ? " " pick(args) : "")
      else if (r < 0.80) line = pick(words)
      else if (r < 0.90) line = num()
      else line = bytes(int(rand() * 40))
      if (line ~ /^:q/) line = ":vars"
      print line
    }
  }'
}
run() { # NAME SEED ARGS...
  name=$1 seed=$2
  shift 2
  gen "$seed" > "$TMP/$name.in"
  (cd "$TMP" && "$FLOWVM" repl "$@" < "$name.in" > "$name.out" 2> "$name.err")
  rc=$?
  if [ $rc -eq 0 ] && ! grep -q 'Sanitizer\|runtime error' "$TMP/$name.err"; then
    pass=$((pass + 1)); echo "ok   $name: $(wc -l < "$TMP/$name.in") random lines"
  else
    fail=$((fail + 1)); echo "FAIL $name: exit $rc"; tail -20 "$TMP/$name.err"
    cp "$TMP/$name.in" "/tmp/repl_fuzz_$name.in" && echo "  the input is kept in /tmp/repl_fuzz_$name.in"
  fi
}
run menu 1 menu.flow
run onboarding 2 onboarding.flow
run order 3 --services services.json order.flow
run order_asked 4 order.flow
run solar 5 solar.flow
run credit 6 credit.flow
run bytecode 7 menu.fbc
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
