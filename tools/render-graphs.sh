#!/bin/sh
# tools/render-graphs.sh FLOWC: draws every example flow for docs/lang/graphs.md:
# `flowc graph examples/flows/NAME.flow | dot -Tsvg` into docs/img/graph-NAME.svg. Each SVG
# keeps the SHA-256 of the DOT it was drawn from in a comment, and tests/graph_docs.sh
# checks that it is still what flowc draws, so a picture cannot go stale. `make graphs`.
set -eu
flowc=$1
case $flowc in /*) ;; *) flowc=$PWD/$flowc ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
command -v dot >/dev/null || { echo "render-graphs: Graphviz's dot is missing (tools/install-deps.sh)" >&2; exit 1; }
mkdir -p "$root/docs/img"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for src in "$root"/examples/flows/*.flow; do
  name=$(basename "$src" .flow)
  (cd "$root/examples/flows" && "$flowc" graph "$name.flow") >"$tmp/$name.dot"
  sum=$(sha256sum "$tmp/$name.dot" | cut -d' ' -f1)
  dot -Tsvg "$tmp/$name.dot" >"$tmp/$name.svg"
  awk -v name="$name" -v sum="$sum" '
    { print }
    NR == 1 { print "<!-- flowc graph examples/flows/" name ".flow | dot -Tsvg (tools/render-graphs.sh); DOT sha256 " sum " -->" }
  ' "$tmp/$name.svg" >"$root/docs/img/graph-$name.svg"
  echo "docs/img/graph-$name.svg"
done
