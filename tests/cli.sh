#!/bin/sh
# tests/cli.sh FLOWC ROOT: the flowc command line: --help on every command, exit codes
# (0 ok, 1 usage, 65 compile errors or rejected bytecode, 70 failed tests), JSON
# diagnostics, and no signal whatever the input.
set -u
flowc=$1 root=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
expect() { # expect CODE DESCRIPTION CMD...
  want=$1 what=$2; shift 2
  "$@" >"$tmp/out" 2>&1; rc=$?
  if [ "$rc" = "$want" ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $what: exit $rc, expected $want"; sed -n '1,10p' "$tmp/out"; fi
}
contains() { # contains TEXT DESCRIPTION: the last command's output has TEXT
  if grep -qF -- "$1" "$tmp/out"; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $2: output lacks '$1'"; sed -n '1,10p' "$tmp/out"; fi
}

expect 0 "flowc --help" "$flowc" --help;                    contains "usage: flowc COMMAND" "main help"
for c in build check disasm test graph syntax; do
  expect 0 "flowc $c --help" "$flowc" $c --help;            contains "usage: flowc $c" "$c help"
done
expect 1 "no command" "$flowc"
expect 1 "unknown command" "$flowc" frobnicate;             contains "unknown command 'frobnicate'" "unknown command"
expect 1 "unknown option" "$flowc" check --nope x.flow;     contains "unknown option '--nope'" "unknown option"
expect 1 "build without -o" "$flowc" build "$root/examples/flows/menu.flow"
expect 1 "missing file" "$flowc" check "$tmp/absent.flow";  contains "cannot open" "missing file"

expect 0 "build an example" "$flowc" build "$root/examples/flows/menu.flow" -o "$tmp/menu.fbc"
expect 0 "disasm it" "$flowc" disasm "$tmp/menu.fbc";       contains "flow menu" "disasm output"
expect 65 "compile errors" "$flowc" check "$root/tests/diag/unknown_names.flow"
expect 65 "errors as JSON" "$flowc" check --format json "$root/tests/diag/unknown_names.flow"
contains '"severity": "error"' "json severity";             contains '"line": 6' "json line"
expect 0 "warnings only" "$flowc" check "$root/tests/diag/waits.flow"
expect 65 "-Werror" "$flowc" check -Werror "$root/tests/diag/waits.flow"

expect 0 "graph an example" "$flowc" graph "$root/examples/flows/menu.flow"; contains "digraph flows {" "graph output"
expect 0 "graph as Mermaid" "$flowc" graph --format=mermaid -o "$tmp/menu.mmd" "$root/examples/flows/menu.flow"
if grep -q '^flowchart TD' "$tmp/menu.mmd"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL graph -o: no Mermaid in the file"; fi
expect 1 "graph: unknown format" "$flowc" graph --format svg "$root/examples/flows/menu.flow"; contains "unknown format 'svg'" "graph format"
expect 1 "graph: no files" "$flowc" graph
expect 1 "graph: missing file" "$flowc" graph "$tmp/absent.flow"; contains "cannot open" "graph missing file"
expect 1 "graph: unwritable output" "$flowc" graph -o "$tmp/no/such/dir.dot" "$root/examples/flows/menu.flow"
expect 65 "graph: compile errors" "$flowc" graph -o "$tmp/err.dot" "$root/tests/diag/unknown_names.flow"
if [ -e "$tmp/err.dot" ]; then fail=$((fail+1)); echo "FAIL graph wrote a file for a program with errors"; else pass=$((pass+1)); fi

expect 0 "syntax keywords" "$flowc" syntax keywords;      contains "flow title trigger" "keyword list"
expect 1 "syntax: unknown grammar" "$flowc" syntax emacs;   contains "unknown grammar 'emacs'" "syntax grammar"
expect 1 "syntax: no grammar" "$flowc" syntax

printf 'not bytecode at all' >"$tmp/bad.fbc"
expect 65 "rejected bytecode" "$flowc" disasm "$tmp/bad.fbc"; contains "bytecode rejected" "verifier message"
head -c 40 "$tmp/menu.fbc" >"$tmp/short.fbc"
expect 65 "truncated bytecode" "$flowc" disasm "$tmp/short.fbc"

cat >"$tmp/t.test" <<'T'
load "m.flow"
test "passes"
> hi
< Hello!
< end
test "fails"
> hi
< Goodbye!
T
printf 'flow m {\n  trigger keyword "hi"\n  step s { say "Hello!" }\n}\n' >"$tmp/m.flow"
expect 70 "a failing transcript" "$flowc" test "$tmp/t.test"; contains "1 passed, 1 failed" "test summary"
expect 0 "filter to the passing test" "$flowc" test --filter passes "$tmp/t.test"
printf 'flow m {\n  step s { goto nowhere }\n}\n' >"$tmp/m.flow"
expect 65 "a test whose flow does not compile" "$flowc" test "$tmp/t.test"

# No input makes flowc die of a signal: random bytes as source (check, graph), test and
# bytecode.
i=0
while [ $i -lt 30 ]; do
  head -c $((i * 37 + 1)) /dev/urandom >"$tmp/r.flow"
  "$flowc" check "$tmp/r.flow" >/dev/null 2>&1; rc=$?
  cp "$tmp/r.flow" "$tmp/r.fbc"; "$flowc" disasm "$tmp/r.fbc" >/dev/null 2>&1; rc2=$?
  cp "$tmp/r.flow" "$tmp/r.test"; "$flowc" test "$tmp/r.test" >/dev/null 2>&1; rc3=$?
  "$flowc" graph "$tmp/r.flow" >/dev/null 2>&1; rc4=$?
  for r in $rc $rc2 $rc3 $rc4; do
    if [ "$r" -ge 128 ]; then fail=$((fail+1)); echo "FAIL signal $r on random input $i"; fi
  done
  i=$((i+1))
done
pass=$((pass+1))

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
