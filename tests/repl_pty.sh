#!/bin/sh
# tests/repl_pty.sh: `flowvm repl` on a terminal (a pseudo-terminal driven by tests/ptyrun):
# libedit reads the lines, so Ctrl-P brings the last line back and Ctrl-A moves to its
# start; numbers tap buttons; a source file changed between two inputs is recompiled by
# :reload, and the session replayed on it shows the new text; Ctrl-D ends the REPL.
# Usage: repl_pty.sh PTYRUN FLOWVM ROOT. Prints "N passed, N failed"; exit 1 on failure.
set -u
PTYRUN=$1 FLOWVM=$2 ROOT=$3
TMP=$(mktemp -d /tmp/flowvm-pty.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
has() { # NAME TEXT: the screen holds TEXT
  if grep -qF -- "$2" "$TMP/screen"; then pass=$((pass + 1)); echo "ok   $1"
  else fail=$((fail + 1)); echo "FAIL $1: no '$2' on the screen"; fi
}
cp "$ROOT/examples/flows/menu.flow" "$TMP/"
# ^P (0x10): the previous line again; ^A (0x01): to the start of the line
printf 'hello\n\020\nesting\001t\n1\n!sed -i "s/Our 400 W panels/Our new panels/" menu.flow\n:reload\n:where\n' > "$TMP/script"
(cd "$TMP" && "$PTYRUN" script "$FLOWVM" repl menu.flow > screen 2> err)
rc=$?
if [ $rc -eq 0 ]; then pass=$((pass + 1)); echo "ok   exit 0 after Ctrl-D"
else fail=$((fail + 1)); echo "FAIL exit $rc: $(cat "$TMP/err")"; fi
has "the banner" "flowvm repl: menu.flow (flows: menu quote)"
n=$(grep -c "no flow has a trigger for 'hello'" "$TMP/screen")
if [ "$n" = 2 ]; then pass=$((pass + 1)); echo "ok   Ctrl-P sent the last line again"
else fail=$((fail + 1)); echo "FAIL Ctrl-P: 'hello' answered $n times"; fi
has "Ctrl-A edited the line into a trigger" "bot: Hi Test User! Welcome to Sunny Roofs."
has "a number taps a button" "» tap Installation"
has "before the change" "Our 400 W panels]"
has ":reload recompiled the changed file" "a new version; the 2 events of the history replayed on it"
has "the replayed session shows the new text" "Our new panels]"
has ":where after the reload" "in flow quote, step roof, menu.flow:66"
echo "$pass passed, $fail failed"
if [ "$fail" -ne 0 ]; then cat "$TMP/screen"; exit 1; fi
