#!/bin/sh
# tests/coverage.sh FLOWC FILE.test MIN: runs a transcript test file with coverage; fails if
# a test fails or if branch coverage of the flows it loads is under MIN percent.
set -u
flowc=$1 file=$2 min=$3
out=$("$flowc" test --coverage "$file" 2>&1); rc=$?
printf '%s\n' "$out"
[ "$rc" = 0 ] || exit 1
printf '%s\n' "$out" | awk -v min="$min" '
  /^coverage .*branches [0-9]+\/[0-9]+/ {
    for (i = 1; i <= NF; i++) if ($i == "branches") { split($(i+1), a, "/"); }
    seen = 1
    if (a[2] > 0 && a[1] * 100 < min * a[2]) { print "branch coverage under " min "%: " $0; bad = 1 }
  }
  END { if (!seen) { print "no coverage line printed"; exit 1 } exit bad }'
