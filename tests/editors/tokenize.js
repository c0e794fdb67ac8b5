// tests/editors/tokenize.js GRAMMAR.json FILE...: tokenizes .flow files with VS Code's own
// TextMate engine (vscode-textmate on the Oniguruma regex library, as the editor runs it)
// and prints every token that has a scope besides source.flow, one per line:
//   LINE:FIRST-LAST SCOPE... "TEXT"      (columns 1-based, in UTF-16 units, as VS Code counts)
// A file's output is preceded by "== FILE". tests/editors/editors.sh compares it with goldens.
'use strict';
const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

async function main() {
  const [grammarPath, ...files] = process.argv.slice(2);
  if (!grammarPath || files.length === 0) {
    console.error('usage: node tokenize.js GRAMMAR.json FILE...');
    process.exit(2);
  }
  const wasm = fs.readFileSync(path.join(path.dirname(require.resolve('vscode-oniguruma')), 'onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scopeName) => {
      if (scopeName !== 'source.flow') return null;
      return vsctm.parseRawGrammar(fs.readFileSync(grammarPath, 'utf8'), grammarPath);
    },
  });
  const grammar = await registry.loadGrammar('source.flow');
  if (!grammar) throw new Error('the grammar did not load');
  const out = [];
  for (const file of files) {
    out.push(`== ${path.basename(file)}`);
    let state = vsctm.INITIAL;
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const r = grammar.tokenizeLine(line, state);
      for (const t of r.tokens) {
        const scopes = t.scopes.filter((s) => s !== 'source.flow');
        const text = line.substring(t.startIndex, t.endIndex);
        if (scopes.length === 0 || text.trim() === '') continue;
        out.push(`${i + 1}:${t.startIndex + 1}-${t.endIndex} ${scopes.join(' ')} ${JSON.stringify(text)}`);
      }
      state = r.ruleStack;
    });
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
