#!/bin/sh
# tools/demo.sh BUILD_DIR: the demo behind `make demo`: compiles every example flow to
# bytecode, then plays one example conversation end to end in the terminal.
set -eu
build=$1
flowc="$build/flowc"
mkdir -p "$build/examples"
echo "== compiling the examples =="
for f in examples/flows/*.flow; do
  out="$build/examples/$(basename "$f" .flow).fbc"
  "$flowc" build "$f" -o "$out"
  printf '  %-34s -> %s (%s bytes)\n' "$f" "$out" "$(wc -c <"$out" | tr -d ' ')"
done
echo
echo "== a conversation: examples/flows/credit.flow =="
"$flowc" test --verbose --filter "a valid amount, a currency" examples/flows/credit.test
echo
echo "Every example and its transcript tests: $flowc test examples/flows/*.test"
