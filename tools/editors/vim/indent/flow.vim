" tools/editors/vim/indent/flow.vim: indentation of flowlang's .flow files: one
" 'shiftwidth' more after a line that opens a brace, one less on a line that starts with a
" closing one, and one more for the clauses that continue an ask or an action on the lines
" below it (check, transform, attempts, timeout, undo). tests/editors checks that it leaves
" the examples as they are.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal indentexpr=FlowIndent(v:lnum)
setlocal indentkeys=0{,0},!^F,o,O,e,=check,=transform,=attempts,=timeout,=undo
setlocal autoindent nolisp nosmartindent nocindent
let b:undo_indent = 'setlocal indentexpr< indentkeys< autoindent< lisp< smartindent< cindent<'

if exists('*FlowIndent')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

let s:clause = '^\s*\%(check\|transform\|attempts\|timeout\|undo\)\>'

" A line's code: strings emptied, the comment removed.
function! s:Code(lnum) abort
  let line = substitute(getline(a:lnum), '"\%(\\.\|[^"\\]\)*"', '""', 'g')
  return substitute(line, '#.*$', '', '')
endfunction

function! FlowIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  " the line where the statement of the previous line starts (above its clauses)
  let start = prev
  while start > 1 && getline(start) =~# s:clause
    let start = prevnonblank(start - 1)
  endwhile
  if s:Code(prev) =~# '{\s*$'
    let ind = indent(prev) + shiftwidth()
  else
    let ind = indent(start)
  endif
  let cur = getline(a:lnum)
  if cur =~# '^\s*}'
    let ind -= shiftwidth()
  elseif cur =~# s:clause && s:Code(prev) !~# '{\s*$'
    let ind = indent(start) + shiftwidth()
  endif
  return ind < 0 ? 0 : ind
endfunction

let &cpo = s:cpo_save
unlet s:cpo_save
