#!/bin/sh
# tests/graph_docs.sh FLOWC ROOT: the pictures of docs/lang/graphs.md are current: for every
# example NAME.flow, docs/img/graph-NAME.svg exists, was drawn from the DOT that
# `flowc graph` prints now (the SHA-256 that tools/render-graphs.sh wrote into it), and the
# page shows it; and the page's Mermaid sample is what `flowc graph --format mermaid` prints
# for order.flow. After a change to the examples or to flowc graph: `make graphs`.
set -u
flowc=$1 root=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for src in "$root"/examples/flows/*.flow; do
  name=$(basename "$src" .flow)
  svg="$root/docs/img/graph-$name.svg"
  if [ ! -f "$svg" ]; then echo "FAIL missing docs/img/graph-$name.svg (make graphs)"; fail=$((fail+1)); continue; fi
  (cd "$root/examples/flows" && "$flowc" graph "$name.flow") >"$tmp/$name.dot" 2>"$tmp/err" || { cat "$tmp/err"; fail=$((fail+1)); continue; }
  now=$(sha256sum "$tmp/$name.dot" | cut -d' ' -f1)
  was=$(sed -n 's/.*DOT sha256 \([0-9a-f]*\) -->.*/\1/p' "$svg" | head -1)
  if [ "$now" != "$was" ]; then
    echo "FAIL docs/img/graph-$name.svg was drawn from other DOT than flowc prints now (make graphs)"; fail=$((fail+1))
  elif ! cmp -s "$tmp/$name.dot" "$root/tests/graph/$name.dot"; then
    echo "FAIL tests/graph/$name.dot differs from flowc's output"; fail=$((fail+1))
  elif ! grep -q "(../img/graph-$name.svg)" "$root/docs/lang/graphs.md"; then
    echo "FAIL docs/lang/graphs.md does not show graph-$name.svg"; fail=$((fail+1))
  else
    pass=$((pass+1))
  fi
done
awk '/^```mermaid/ { inb = 1; next } /^```/ && inb { exit } inb' "$root/docs/lang/graphs.md" >"$tmp/page.mmd"
(cd "$root/examples/flows" && "$flowc" graph --format mermaid order.flow) >"$tmp/order.mmd"
if diff -u "$tmp/order.mmd" "$tmp/page.mmd"; then pass=$((pass+1)); else
  echo "FAIL the Mermaid sample of docs/lang/graphs.md is not flowc's output for order.flow"; fail=$((fail+1)); fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
