#!/bin/sh
# bench/run.sh BUILD_DIR: the benchmarks of docs/performance.md, as ratios in one run:
#   1. compile time: flowc on a generated 20,000-line flow vs luac5.4 on an equivalent
#      generated Lua file;
#   2. VM time: a branch-and-assign loop in a flow vs the same loop in lua5.4;
#   3. bytecode bytes per source byte of each example;
#   4. serialized session bytes of each example at each wait (from the transcript tests).
# Prints a Markdown report; writes generated inputs to bench/out/.
set -eu
build=${1:-build}
flowc="$build/flowc"
out=bench/out
mkdir -p "$out"
runs=${RUNS:-5}

ms() { date +%s%N; }
best_of() { # best_of N CMD...: the fastest of N runs, in milliseconds
  n=$1; shift; best=""
  i=0
  while [ $i -lt "$n" ]; do
    t0=$(ms); "$@" >/dev/null; t1=$(ms)
    t=$(( (t1 - t0) / 1000 ))
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    i=$((i+1))
  done
  awk -v us="$best" 'BEGIN { printf "%.2f", us / 1000 }'
}

# ---- 1. compile time ----
awk 'BEGIN {
  n = 1000
  print "flow big {" > "'$out'/big.flow"
  print "  trigger keyword \"big\"" > "'$out'/big.flow"
  print "local function say(s) end\nlocal function buttons(b, opts, t) return opts[1] end\nlocal s = {}" > "'$out'/big.lua"
  for (i = 0; i < n; i++) {
    nx = (i + 1) % n
    f = "'$out'/big.flow"; l = "'$out'/big.lua"
    print "  step s" i " {" > f
    print "    set a" i " = " i " + 4 * 2" > f
    print "    set b" i " = a" i " * 3 - 1" > f
    print "    if a" i " > 50 and b" i " < 100000 {" > f
    print "      say \"Step " i " has value {a" i "} and {b" i "}\"" > f
    print "    } else {" > f
    print "      say \"Step " i " is small\"" > f
    print "    }" > f
    print "    set c" i " = upper(\"item " i "\")" > f
    print "    if len(c" i ") > 3 {" > f
    print "      say c" i > f
    print "    }" > f
    print "    buttons \"Continue from " i "?\" {" > f
    print "      button \"Yes\" -> s" nx > f
    print "      button \"No\" -> s0" > f
    print "    } timeout 1h -> s0" > f
    print "  }" > f
    print "" > f
    print "# step " i > f
    print "# ----" > f
    print "s[" i "] = function()" > l
    print "  local a = " i " + 4 * 2" > l
    print "  local b = a * 3 - 1" > l
    print "  if a > 50 and b < 100000 then" > l
    print "    say(\"Step " i " has value \" .. a .. \" and \" .. b)" > l
    print "  else" > l
    print "    say(\"Step " i " is small\")" > l
    print "  end" > l
    print "  local c = string.upper(\"item " i "\")" > l
    print "  if #c > 3 then" > l
    print "    say(c)" > l
    print "  end" > l
    print "  local r = buttons(\"Continue from " i "?\", {\"Yes\", \"No\"}, 3600)" > l
    print "  if r == \"Yes\" then return s[" nx "]()" > l
    print "  elseif r == \"No\" then return s[0]()" > l
    print "  else return s[0]() end" > l
    print "end" > l
    print "" > l
    print "-- step " i > l
    print "-- ----" > l
  }
  print "}" > "'$out'/big.flow"
}'
flow_lines=$(wc -l <"$out/big.flow")
lua_lines=$(wc -l <"$out/big.lua")
t_flowc=$(best_of "$runs" "$flowc" build "$out/big.flow" -o "$out/big.fbc")
t_luac=$(best_of "$runs" luac5.4 -o "$out/big.luac" "$out/big.lua")

# ---- 2. VM time ----
cat >"$out/loop.flow" <<'FLOW'
flow loop {
  trigger keyword "loop"
  step start {
    set x = 0
    for a in range(1000) {
      for b in range(1000) {
        if (a + b) % 3 == 0 {
          set x = x + 1
        } else {
          set x = x - 1
        }
      }
    }
    say "{x}"
  }
}
FLOW
cat >"$out/loop.lua" <<'LUA'
local t0 = os.clock()
local x = 0
for a = 0, 999 do
  for b = 0, 999 do
    if (a + b) % 3 == 0 then
      x = x + 1
    else
      x = x - 1
    end
  end
end
io.write(string.format("%.3f ms %d\n", (os.clock() - t0) * 1000, x))
LUA
"$flowc" build "$out/loop.flow" -o "$out/loop.fbc"
vm_line=$("$build/bench/vmbench" "$out/loop.fbc" "$runs")
t_vm=$(echo "$vm_line" | awk '{print $1}')
t_lua=$(i=0; best=""; while [ $i -lt "$runs" ]; do t=$(lua5.4 "$out/loop.lua" | awk '{print $1}'); if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi; i=$((i+1)); done; echo "$best")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "# Benchmark run $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -m))"
echo
echo "Command: \`make bench\` (bench/run.sh), best of $runs runs each."
echo
echo "| measure | flowlang | Lua 5.4 | ratio | goal |"
echo "|---|---|---|---|---|"
echo "| compile $flow_lines-line flow vs $lua_lines-line Lua (ms) | $t_flowc | $t_luac | $(ratio "$t_flowc" "$t_luac")x | <= 1.0x |"
echo "| VM branch-and-assign loop, 1M iterations (ms) | $t_vm | $t_lua | $(ratio "$t_vm" "$t_lua")x | <= 1.5x |"
echo
echo "VM loop: $vm_line"
echo
echo "## Bytecode size"
echo
echo "| example | source bytes | bytecode bytes | bytes per source byte |"
echo "|---|---|---|---|"
for f in examples/flows/*.flow; do
  b="$out/$(basename "$f" .flow).fbc"
  "$flowc" build "$f" -o "$b" 2>/dev/null || continue
  s=$(wc -c <"$f"); c=$(wc -c <"$b")
  echo "| $(basename "$f") | $s | $c | $(ratio "$c" "$s") |"
done
echo
echo "## Session state at each wait"
echo
echo "| example | waits seen | smallest | largest | mean (bytes) | goal |"
echo "|---|---|---|---|---|---|"
for t in examples/flows/*.test; do
  FLOWC_STATE_SIZES="$out/sizes.txt" "$flowc" test "$t" >/dev/null 2>&1 || true
  [ -s "$out/sizes.txt" ] || continue
  awk -v name="$(basename "$t" .test)" '{ n++; s += $1; if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1 }
    END { if (n) printf "| %s | %d | %d | %d | %.0f | <= 256 |\n", name, n, min, max, s / n }' "$out/sizes.txt"
  rm -f "$out/sizes.txt"
done
