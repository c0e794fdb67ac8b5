#!/bin/sh
# tests/doc_samples.sh FLOWC PATH...: every ```flow block in the given Markdown files and
# folders must compile with
# `flowc check` (a block that starts with a line "# expect-error" must fail instead), so the
# manual cannot drift from the compiler. Blocks that are fragments use ```flowfrag and are
# not checked.
set -u
flowc=$1; shift
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0 bad=0
for md in $(find "$@" -name '*.md' | sort); do
  awk -v dir="$tmp" -v md="$(basename "$md" .md)" '
    /^```flow[ \t]*$/ { inb = 1; n++; f = sprintf("%s/%s_%03d.flow", dir, md, n); next }
    /^```/ && inb { inb = 0; close(f); next }
    inb { print > f }' "$md"
done
for f in "$tmp"/*.flow; do
  [ -e "$f" ] || continue
  n=$((n+1))
  if head -1 "$f" | grep -q '^# expect-error'; then
    if "$flowc" check "$f" >/dev/null 2>&1; then echo "FAIL $(basename "$f"): expected an error"; bad=$((bad+1)); fi
  else
    if ! "$flowc" check "$f" >"$tmp/out" 2>&1; then echo "FAIL $(basename "$f"):"; cat "$tmp/out"; sed -n '1,40p' "$f"; bad=$((bad+1)); fi
  fi
done
echo "$((n-bad)) passed, $bad failed"
[ "$bad" = 0 ]
