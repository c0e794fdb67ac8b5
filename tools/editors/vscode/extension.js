// tools/editors/vscode/extension.js: the VS Code side of flowlang's editor support. It starts
// the language server `flowc lsp` (the command in the setting flowlang.flowcPath) over
// stdio for the .flow files of the workspace, through vscode-languageclient. Highlighting
// needs none of this: it comes from syntaxes/flow.tmLanguage.json. Installing: docs/editors.md.
'use strict';
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client = null;

function activate(context) {
  const config = vscode.workspace.getConfiguration('flowlang');
  if (!config.get('server.enabled', true)) return;
  const command = config.get('flowcPath', 'flowc') || 'flowc';
  const serverOptions = {
    run: { command, args: ['lsp'], transport: TransportKind.stdio },
    debug: { command, args: ['lsp'], transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [{ scheme: 'file', language: 'flow' }, { scheme: 'untitled', language: 'flow' }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher('**/*.{flow,test}') },
  };
  client = new LanguageClient('flowlang', 'flowlang (flowc lsp)', serverOptions, clientOptions);
  client.start().catch((err) => {
    vscode.window.showWarningMessage(
      `flowlang: could not start '${command} lsp' (${err && err.message ? err.message : err}); ` +
        'highlighting still works. Set flowlang.flowcPath to your flowc.');
  });
  context.subscriptions.push({ dispose: () => deactivate() });
}

function deactivate() {
  const c = client;
  client = null;
  return c ? c.stop() : undefined;
}

module.exports = { activate, deactivate };
