#!/bin/sh
# tests/doc_samples.sh FLOWC FORMS PATH...: the code samples of the given Markdown files and
# folders are tested, so the manual cannot drift from the compiler (the samples' forms are
# the Flow JSON files of the folder FORMS, e.g. examples/flows/forms):
#   - every ```flow block must pass `flowc check` (or fail, if its first line is
#     "# expect-error");
#   - a block preceded by a line <!-- file: NAME --> is also saved as NAME beside the other
#     named blocks of its page, and every such NAME.test is run with `flowc test`.
set -u
flowc=$1 forms=$2; shift 2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r "$forms" "$tmp/forms"
n=0 bad=0
for md in $(find "$@" -name '*.md' | sort); do
  page=$(basename "$md" .md)
  mkdir -p "$tmp/$page"
  cp -r "$forms" "$tmp/$page/forms"
  awk -v dir="$tmp" -v page="$page" '
    /^<!-- file: [^ ]+ -->$/ { named = $3; next }
    /^```/ && !inb { inb = 1; n++; lang = substr($0, 4); gsub(/[ \t]/, "", lang)
                     f = named != "" ? dir "/" page "/" named : ""
                     g = lang == "flow" ? sprintf("%s/%s_%03d.flow", dir, page, n) : ""
                     named = ""; next }
    /^```/ && inb { inb = 0; if (f != "") close(f); if (g != "") close(g); next }
    inb { if (f != "") print > f; if (g != "") print > g }' "$md"
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
for t in "$tmp"/*/*.test; do
  [ -e "$t" ] || continue
  n=$((n+1))
  if ! "$flowc" test "$t" >"$tmp/out" 2>&1; then echo "FAIL $t:"; cat "$tmp/out"; bad=$((bad+1)); fi
done
echo "$((n-bad)) passed, $bad failed"
[ "$bad" = 0 ]
