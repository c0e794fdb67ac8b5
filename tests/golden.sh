#!/bin/sh
# tests/golden.sh: golden-file tests. Modes:
#   diag FLOWC FILE.flow     `flowc check FILE.flow` must print FILE.err (stderr) exactly
#                            and exit 65 if it holds an error, else 0
#   disasm FLOWC FILE.flow   `flowc build` then `flowc disasm` must print FILE.dis exactly
# With UPDATE_GOLDEN=1 the expected file is rewritten from the actual output.
set -u
mode=$1 flowc=$2 src=$3
dir=$(dirname "$src"); base=$(basename "$src" .flow)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$dir" || exit 1
case $mode in
  diag)
    want="$base.err"
    "$flowc" check "$base.flow" >/dev/null 2>"$tmp/out"; rc=$?
    if grep -q ': error: ' "$tmp/out"; then exp=65; else exp=0; fi
    if [ "$rc" != "$exp" ]; then echo "exit status $rc, expected $exp"; cat "$tmp/out"; exit 1; fi ;;
  disasm)
    want="$base.dis"
    "$flowc" build "$base.flow" -o "$tmp/p.fbc" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
    "$flowc" disasm "$tmp/p.fbc" | sed 's/^program [0-9a-f]*/program HASH/' >"$tmp/out" || exit 1 ;;
  *) echo "unknown mode $mode"; exit 1 ;;
esac
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp/out" "$want"; echo "updated $want"; exit 0; fi
[ -f "$want" ] || { echo "missing golden file $dir/$want; actual output:"; cat "$tmp/out"; exit 1; }
diff -u "$want" "$tmp/out" && echo "ok $mode $base"
