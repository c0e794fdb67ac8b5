#!/bin/sh
# tests/editors/editors.sh MODE FLOWC ROOT: the editor support of tools/editors.
#   regen     the generated grammars are what `flowc syntax` prints now (so they follow
#             compiler/keywords.def, stdlib/builtins.def and the checker's names); the
#             keyword list of docs/lang/reference.md and the parser's keyword tokens match
#             keywords.def; the VS Code extension's JSON files parse and name files that exist
#   vscode    every example and tests/editors/sample.flow, tokenized by VS Code's own
#             TextMate engine (tokenize.js), gives tests/editors/textmate/NAME.tokens; and
#             the extension's client starts `flowc lsp` (client.js)
#   vim       the same files, highlighted by Vim (`vim -es`, vim_syntax.vim), give
#             tests/editors/vim/NAME.syn; and Vim's indent file re-indents every example,
#             flattened, back to itself
# Tools missing (node and tests/editors/node_modules, vim, jq) fail the test:
# tools/install-deps.sh installs them. With UPDATE_GOLDEN=1 the goldens are rewritten.
set -u
mode=$1 flowc=$2 root=$3
here="$root/tests/editors"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
need() { command -v "$1" >/dev/null 2>&1 || { bad "$1 is not installed (tools/install-deps.sh installs it)"; echo "$pass passed, $fail failed"; exit 1; }; }
samples() { ls "$root"/examples/flows/*.flow "$here/sample.flow"; }
golden() { # golden FILE.EXPECTED ACTUAL
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then cp "$2" "$1"; echo "updated $1"; return; fi
  if [ ! -f "$1" ]; then bad "missing golden file $1"; elif diff -u "$1" "$2"; then ok; else bad "$1 differs"; fi
}

case $mode in
regen)
  need jq
  "$flowc" syntax textmate >"$tmp/tm.json" && "$flowc" syntax vim >"$tmp/flow.vim" || bad "flowc syntax failed"
  for pair in "tm.json tools/editors/vscode/syntaxes/flow.tmLanguage.json" "flow.vim tools/editors/vim/syntax/flow.vim"; do
    set -- $pair
    if cmp -s "$tmp/$1" "$root/$2"; then ok; else
      bad "$2 is not what flowc syntax prints now; regenerate it (flowc syntax --help)"; diff -u "$root/$2" "$tmp/$1" | head -20; fi
  done
  # the reference's keyword list is keywords.def, in its order
  "$flowc" syntax keywords >"$tmp/kw"
  awk '/^Keywords: `/ { on = 1; sub(/^Keywords: `/, "") } on { s = s " " $0 } on && /`\.$/ { exit } END { print s }' \
    "$root/docs/lang/reference.md" | tr -d '`.' | tr -s ' \n' '\n\n' | sed '/^$/d' >"$tmp/doc"
  tr ' ' '\n' <"$tmp/kw" >"$tmp/kw1"
  if [ -s "$tmp/doc" ] && cmp -s "$tmp/kw1" "$tmp/doc"; then ok; else bad "docs/lang/reference.md's keyword list differs from compiler/keywords.def"; diff "$tmp/kw1" "$tmp/doc"; fi
  # the parser declares a token for each keyword, with the keyword's text
  grep '^%token <id>' "$root/compiler/parser.y" | grep -o "[A-Z_]* \"'[a-z_]*'\"" |
    sed "s/ \"'\(.*\)'\"/ \1/" | sort >"$tmp/parser"
  sed -n 's/^\(SOFT_\)\{0,1\}KEYWORD(\([A-Z_]*\), *"\([a-z_]*\)".*/\2 \3/p' "$root/compiler/keywords.def" | sort >"$tmp/def"
  if [ -s "$tmp/def" ] && cmp -s "$tmp/parser" "$tmp/def"; then ok; else bad "parser.y's keyword tokens differ from compiler/keywords.def"; diff "$tmp/def" "$tmp/parser"; fi
  # the VS Code extension: valid JSON that names existing files
  ext="$root/tools/editors/vscode"
  for j in package.json language-configuration.json syntaxes/flow.tmLanguage.json; do
    if jq empty "$ext/$j" 2>"$tmp/err"; then ok; else bad "$j is not valid JSON: $(cat "$tmp/err")"; fi
  done
  for f in $(jq -r '.main, .contributes.languages[].configuration, .contributes.grammars[].path' "$ext/package.json"); do
    if [ -f "$ext/$f" ]; then ok; else bad "package.json names $f, which does not exist"; fi
  done
  if [ "$(jq -r '.contributes.languages[0].id + " " + .contributes.languages[0].extensions[0]' "$ext/package.json")" = "flow .flow" ]; then ok; else bad "package.json: the language must be 'flow' for .flow files"; fi
  ;;
vscode)
  need node
  if node "$here/client.js" "$root/tools/editors/vscode/extension.js" >"$tmp/client" 2>&1; then ok; else
    bad "the VS Code client:"; cat "$tmp/client"; fi
  if [ ! -d "$here/node_modules/vscode-textmate" ] || [ ! -d "$here/node_modules/vscode-oniguruma" ]; then
    bad "tests/editors/node_modules lacks vscode-textmate (tools/install-deps.sh runs npm ci there)"
  else
    for f in $(samples); do
      name=$(basename "$f" .flow)
      if node "$here/tokenize.js" "$root/tools/editors/vscode/syntaxes/flow.tmLanguage.json" "$f" >"$tmp/$name.tokens" 2>"$tmp/err"; then
        golden "$here/textmate/$name.tokens" "$tmp/$name.tokens"
      else bad "tokenize.js $name.flow: $(cat "$tmp/err")"; fi
    done
  fi
  ;;
vim)
  need vim
  vimrun() { # vimrun FILE EX-COMMANDS...: Vim without any user setup, with tools/editors/vim first
    f=$1; shift
    vim -N -u NONE -i NONE -es --cmd "set rtp^=$root/tools/editors/vim" \
      -c 'filetype plugin indent on' -c 'syntax on' -c "edit $f" "$@" -c 'qa!' </dev/null
  }
  for f in $(samples); do
    name=$(basename "$f" .flow)
    vimrun "$f" -c "if &filetype !=# 'flow' | cquit | endif" -c "let g:out = '$tmp/$name.syn'" \
      -c "source $here/vim_syntax.vim" || bad "vim did not take $name.flow for a flow file"
    if [ -s "$tmp/$name.syn" ]; then golden "$here/vim/$name.syn" "$tmp/$name.syn"; else bad "no syntax dump for $name.flow"; fi
  done
  for f in "$root"/examples/flows/*.flow; do
    name=$(basename "$f" .flow)
    sed 's/^[ \t]*//' "$f" >"$tmp/$name.flat.flow"
    vimrun "$tmp/$name.flat.flow" -c 'normal! gg=G' -c 'write'
    if cmp -s "$f" "$tmp/$name.flat.flow"; then ok; else bad "indent/flow.vim indents $name.flow differently:"; diff "$f" "$tmp/$name.flat.flow" | head -10; fi
  done
  ;;
*) echo "unknown mode $mode"; exit 1 ;;
esac
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
