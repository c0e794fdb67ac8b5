#!/bin/sh
# tests/graph.sh FLOWC FILE.flow: `flowc graph` golden tests for one flow file (the examples):
#   - the DOT output must equal tests/graph/NAME.dot, the Mermaid output tests/graph/NAME.mmd;
#   - Graphviz must accept the DOT (`dot -Tsvg`): tools/install-deps.sh installs graphviz,
#     and a machine without it fails this test rather than skipping it.
# With UPDATE_GOLDEN=1 the golden files are rewritten from the actual output.
set -u
flowc=$1 src=$2
case $flowc in /*) ;; *) flowc=$PWD/$flowc ;; esac
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$src" .flow)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0
cd "$(dirname "$src")" || exit 1
for fmt in dot mermaid; do
  ext=$fmt; [ $fmt = mermaid ] && ext=mmd
  want="$here/graph/$name.$ext"
  if ! "$flowc" graph --format $fmt "$name.flow" >"$tmp/out.$ext" 2>"$tmp/err"; then
    echo "FAIL flowc graph --format $fmt $name.flow:"; cat "$tmp/err"; fail=$((fail+1)); continue
  fi
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp/out.$ext" "$want"; echo "updated $want"; continue; fi
  if [ ! -f "$want" ]; then
    echo "FAIL missing golden file tests/graph/$name.$ext; actual output:"; cat "$tmp/out.$ext"; fail=$((fail+1))
  elif diff -u "$want" "$tmp/out.$ext"; then pass=$((pass+1)); else fail=$((fail+1)); fi
done
if ! command -v dot >/dev/null 2>&1; then
  echo "FAIL Graphviz's dot is not installed (tools/install-deps.sh installs it)"; fail=$((fail+1))
elif dot -Tsvg "$tmp/out.dot" >"$tmp/out.svg" 2>"$tmp/err" && [ ! -s "$tmp/err" ] && grep -q '<svg' "$tmp/out.svg"; then
  pass=$((pass+1))
else
  echo "FAIL dot -Tsvg rejects the DOT of $name.flow:"; cat "$tmp/err"; fail=$((fail+1))
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
