" tools/editors/vim/ftdetect/flow.vim: .flow files are flowlang flows (docs/editors.md).
autocmd BufRead,BufNewFile *.flow setfiletype flow
