// tests/editors/client.js EXTENSION.js: the VS Code extension's client wiring, without VS
// Code: `vscode` and `vscode-languageclient/node` are replaced by recording stand-ins, and
// the test checks that activating the extension starts `flowc lsp` over stdio for the
// `flow` language, honours the flowlang.flowcPath and flowlang.server.enabled settings,
// and that deactivating stops the client. Prints "N passed, N failed".
'use strict';
const Module = require('module');
const path = require('path');
const assert = require('assert');

const extension = path.resolve(process.argv[2]);
let settings = {};
let clients = [];
const stubs = {
  vscode: {
    workspace: {
      getConfiguration: (section) => ({
        get: (key, dflt) => (section + '.' + key in settings ? settings[section + '.' + key] : dflt),
      }),
      createFileSystemWatcher: (glob) => ({ glob }),
    },
    window: { showWarningMessage: (m) => { stubs.vscode.warnings.push(m); } },
    warnings: [],
  },
  'vscode-languageclient/node': {
    TransportKind: { stdio: 0, ipc: 1 },
    LanguageClient: class {
      constructor(id, name, server, client) {
        Object.assign(this, { id, name, server, client, started: 0, stopped: 0 });
        clients.push(this);
      }
      start() { this.started++; return Promise.resolve(); }
      stop() { this.stopped++; return Promise.resolve(); }
    },
  },
};
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request in stubs) return stubs[request];
  return load.call(this, request, parent, isMain);
};

let pass = 0, fail = 0;
function check(what, fn) {
  try { fn(); pass++; } catch (e) { fail++; console.log(`FAIL ${what}: ${e.message}`); }
}
function fresh() {
  delete require.cache[extension];
  clients = [];
  return require(extension);
}
const context = () => ({ subscriptions: [] });

(async () => {
  let ext = fresh();
  const ctx = context();
  ext.activate(ctx);
  check('one client is made', () => assert.strictEqual(clients.length, 1));
  const c = clients[0];
  check('it runs flowc lsp over stdio', () => {
    for (const mode of ['run', 'debug']) {
      assert.strictEqual(c.server[mode].command, 'flowc');
      assert.deepStrictEqual(c.server[mode].args, ['lsp']);
      assert.strictEqual(c.server[mode].transport, 0);
    }
  });
  check('for the flow language', () =>
    assert.ok(c.client.documentSelector.some((d) => d.language === 'flow' && d.scheme === 'file')));
  check('and starts it', () => assert.strictEqual(c.started, 1));
  check('registers its disposal', () => assert.strictEqual(ctx.subscriptions.length, 1));
  await ext.deactivate();
  check('deactivate stops it', () => assert.strictEqual(c.stopped, 1));

  settings = { 'flowlang.flowcPath': '/opt/flow/bin/flowc' };
  ext = fresh();
  ext.activate(context());
  check('flowlang.flowcPath is the command', () => assert.strictEqual(clients[0].server.run.command, '/opt/flow/bin/flowc'));

  settings = { 'flowlang.server.enabled': false };
  ext = fresh();
  ext.activate(context());
  check('flowlang.server.enabled false starts nothing', () => assert.strictEqual(clients.length, 0));
  check('deactivate without a client', () => assert.strictEqual(ext.deactivate(), undefined));

  console.log(`${pass} passed, ${fail} failed`);
  process.exit(fail ? 1 : 0);
})();
