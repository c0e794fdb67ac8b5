" tests/editors/vim_syntax.vim: prints the syntax groups of the current buffer, one line per
" source line: the line number, then each run of characters in one group as
" FIRST-LAST:GROUP (columns in bytes, 1-based; text in no group is left out). Used by
" tests/editors/editors.sh through `vim -es`; the output goes to the file in g:out.
let s:lines = []
for s:l in range(1, line('$'))
  let s:runs = []
  let s:text = getline(s:l)
  let s:c = 1
  while s:c <= len(s:text)
    let s:g = synIDattr(synID(s:l, s:c, 1), 'name')
    let s:e = s:c
    while s:e < len(s:text) && synIDattr(synID(s:l, s:e + 1, 1), 'name') ==# s:g
      let s:e += 1
    endwhile
    if s:g !=# ''
      call add(s:runs, s:c . '-' . s:e . ':' . s:g)
    endif
    let s:c = s:e + 1
  endwhile
  call add(s:lines, s:l . ' ' . join(s:runs, ' '))
endfor
call writefile(s:lines, g:out)
