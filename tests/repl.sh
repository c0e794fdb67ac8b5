#!/bin/sh
# tests/repl.sh: scripted sessions of `flowvm repl` (docs/repl.md). Each tests/repl/NAME.in
# is typed into the REPL through standard input (its first line, `#! ARGS`, gives the
# command line's arguments), in a scratch folder holding examples/flows/*.flow and the
# files of tests/repl/; what the REPL prints (standard output and error) must be
# tests/repl/NAME.out exactly. The example session of docs/repl.md must be the same text
# as tests/repl/doc_session.out. UPDATE_GOLDEN=1 rewrites the .out files.
# Usage: repl.sh FLOWVM ROOT. Prints "N passed, N failed"; exit 1 on a failure.
set -u
FLOWVM=$1 ROOT=$2
T="$ROOT/tests/repl"
TMP=$(mktemp -d /tmp/flowvm-repl.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
for f in "$ROOT"/examples/flows/*.flow "$T"/*.flow "$T"/*.json; do
  [ -f "$f" ] && cp "$f" "$TMP/"
done
cp -r "$ROOT/examples/flows/forms" "$TMP/forms"
for in in "$T"/*.in; do
  name=$(basename "$in" .in)
  args=$(sed -n '1s/^#! //p' "$in")
  rm -rf "$TMP/run" && mkdir "$TMP/run" && cp -r "$TMP"/*.flow "$TMP"/*.json "$TMP/forms" "$TMP/run/" 2>/dev/null
  # shellcheck disable=SC2086
  (cd "$TMP/run" && sed 1d "$in" | "$FLOWVM" repl $args > "$TMP/$name.got" 2>&1; echo "exit $?" >> "$TMP/$name.got")
  if [ "${UPDATE_GOLDEN:-}" = 1 ]; then cp "$TMP/$name.got" "$T/$name.out"; fi
  if diff -u "$T/$name.out" "$TMP/$name.got" > "$TMP/$name.diff"; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); echo "FAIL $name"; cat "$TMP/$name.diff"
  fi
done
# the example session of the docs is the one tested above
awk '/<!-- repl-session: doc_session -->/ { m = 1; next }
     m == 1 && /^```/ { m = 2; next }
     m == 2 && /^```/ { exit }
     m == 2' "$ROOT/docs/repl.md" > "$TMP/doc.txt"
sed '$d' "$T/doc_session.out" > "$TMP/doc.want" # without its "exit 0" line
if [ -s "$TMP/doc.txt" ] && diff -u "$TMP/doc.txt" "$TMP/doc.want" > "$TMP/doc.diff"; then
  pass=$((pass + 1)); echo "ok   docs/repl.md session"
else
  fail=$((fail + 1)); echo "FAIL docs/repl.md: its example session is not tests/repl/doc_session.out"
  cat "$TMP/doc.diff"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
