#!/usr/bin/env python3
# tests/lsp/client.py FLOWC: a scripted Language Server Protocol client for `flowc lsp`
# (docs/editors.md). Sends initialize, didOpen with an error, didChange fixing it, hover
# (a variable's type, a builtin's signature and doc, a step), definition (of a step named
# after "->" and of a variable), references, completion, documentSymbol, a form's JSON
# error published under the JSON's own URI, a malformed message and an unknown method,
# then shutdown and exit; asserts every answer. Exit 0 when all checks pass.
import json
import os
import subprocess
import sys
import tempfile

FLOWC = sys.argv[1]
failures = 0


def check(name, want, got):
    global failures
    if want == got:
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL %s: expected %r, got %r" % (name, want, got))


def truth(name, cond, detail=""):
    check(name + (" (%s)" % detail if detail and not cond else ""), True, bool(cond))


class Server:
    def __init__(self):
        self.p = subprocess.Popen([FLOWC, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0
        self.notes = []

    def send(self, obj):
        body = json.dumps(obj).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def raw(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def read(self):
        n = None
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            if line in (b"\r\n", b"\n"):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                n = int(v)
        return json.loads(self.p.stdout.read(n))

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.answer(self.next_id)

    def answer(self, rid):
        while True:
            m = self.read()
            if m.get("id") == rid and "method" not in m:
                return m
            self.notes.append(m)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self, uri):
        """The next publishDiagnostics for uri (reads ahead with a ping request)."""
        for i, m in enumerate(self.notes):
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
                del self.notes[i]
                return m["params"]["diagnostics"]
        self.request("textDocument/hover", {"textDocument": {"uri": "file:///none"},
                                            "position": {"line": 0, "character": 0}})
        for i, m in enumerate(self.notes):
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri:
                del self.notes[i]
                return m["params"]["diagnostics"]
        return None


GOOD = """flow shop {
  trigger keyword "shop"
  var count: int

  step start {
    set count = 1
    set name = upper("ana")
    buttons "Hi {name}! More?" {
      button "Yes" -> more
      button "No"  -> done
    }
  }

  step more {
    set count = count + len(name)
    say "You have {count} items"
    goto done
  }

  step done {
    say "Bye 😀 {count}"
    end
  }
}
"""
BROKEN = GOOD.replace("button \"No\"  -> done", "button \"No\"  -> dnoe")


def pos(text, needle, nth=0, offset=0):
    """LSP position (UTF-16) of the nth occurrence of needle, plus offset characters."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    i += offset
    line = text.count("\n", 0, i)
    col = i - (text.rfind("\n", 0, i) + 1)
    prefix = text[text.rfind("\n", 0, i) + 1:i]
    return {"line": line, "character": len(prefix.encode("utf-16-le")) // 2}


def main():
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "shop.flow")
    uri = "file://" + path
    doc = {"uri": uri}
    s = Server()

    init = s.request("initialize", {"processId": None, "rootUri": "file://" + tmp,
                                    "capabilities": {}})
    caps = init.get("result", {}).get("capabilities", {})
    check("initialize: full sync", 1, caps.get("textDocumentSync", {}).get("change"))
    for c in ("hoverProvider", "definitionProvider", "referencesProvider",
              "documentSymbolProvider"):
        check("initialize: " + c, True, caps.get(c))
    truth("initialize: completion", "completionProvider" in caps)
    s.notify("initialized", {})

    # didOpen with an error: the compiler's diagnostic with its range
    s.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "flow",
                                                       "version": 1, "text": BROKEN}})
    d = s.diagnostics(uri)
    truth("didOpen: one error", d is not None and len(d) == 1, d)
    if d:
        check("didOpen: severity error", 1, d[0]["severity"])
        truth("didOpen: the message names the step", "dnoe" in d[0]["message"], d[0]["message"])
        check("didOpen: the range is the step name", {"start": pos(BROKEN, "dnoe"),
                                                       "end": pos(BROKEN, "dnoe", 0, 4)},
              d[0]["range"])
        check("didOpen: source", "flowc", d[0]["source"])

    # didChange fixing it: no diagnostics
    s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                        "contentChanges": [{"text": GOOD}]})
    check("didChange: the fix clears the diagnostics", [], s.diagnostics(uri))

    # hover
    h = s.request("textDocument/hover", {"textDocument": doc,
                                         "position": pos(GOOD, "count + len", 0, 2)})
    v = (h.get("result") or {}).get("contents", {}).get("value", "")
    truth("hover on a variable: its type", "var count: int" in v, v)
    check("hover on a variable: the range", {"start": pos(GOOD, "count + len"),
                                             "end": pos(GOOD, "count + len", 0, 5)},
          (h.get("result") or {}).get("range"))
    h = s.request("textDocument/hover", {"textDocument": doc,
                                         "position": pos(GOOD, "name = upper")})
    v = (h.get("result") or {}).get("contents", {}).get("value", "")
    truth("hover on an assigned variable: its type", "var name: text" in v, v)
    h = s.request("textDocument/hover", {"textDocument": doc, "position": pos(GOOD, "len(", 0, 1)})
    v = (h.get("result") or {}).get("contents", {}).get("value", "")
    truth("hover on a builtin: its signature", "len(any) -> int" in v, v)
    truth("hover on a builtin: its doc", "Number of characters" in v, v)
    h = s.request("textDocument/hover", {"textDocument": doc, "position": pos(GOOD, "-> more", 0, 4)})
    v = (h.get("result") or {}).get("contents", {}).get("value", "")
    truth("hover on a step", "step more" in v and "shop" in v, v)
    # after an emoji (two UTF-16 units) positions still line up
    h = s.request("textDocument/hover", {"textDocument": doc, "position": pos(GOOD, "{count}\"", 0, 5)})
    v = (h.get("result") or {}).get("contents", {}).get("value", "")
    truth("hover after a non-BMP character (UTF-16 columns)", "var count: int" in v, v)
    h = s.request("textDocument/hover", {"textDocument": doc, "position": {"line": 0, "character": 0}})
    check("hover on a keyword: nothing", None, h.get("result"))

    # definition
    r = s.request("textDocument/definition", {"textDocument": doc, "position": pos(GOOD, "-> done", 0, 4)})
    check("definition of a step after ->", {"uri": uri, "range": {
        "start": pos(GOOD, "step done", 0, 5), "end": pos(GOOD, "step done", 0, 9)}}, r.get("result"))
    r = s.request("textDocument/definition", {"textDocument": doc, "position": pos(GOOD, "{name}", 0, 1)})
    check("definition of a variable (its first assignment)", {"uri": uri, "range": {
        "start": pos(GOOD, "name = upper"), "end": pos(GOOD, "name = upper", 0, 4)}}, r.get("result"))
    r = s.request("textDocument/definition", {"textDocument": doc, "position": pos(GOOD, "count + len")})
    check("definition of a declared variable", pos(GOOD, "var count", 0, 4),
          ((r.get("result") or {}).get("range") or {}).get("start"))

    # references
    r = s.request("textDocument/references", {"textDocument": doc, "position": pos(GOOD, "step done", 0, 6),
                                              "context": {"includeDeclaration": True}})
    lines = sorted(x["range"]["start"]["line"] for x in r.get("result") or [])
    check("references of step done (with its declaration)",
          sorted([pos(GOOD, "-> done")["line"], pos(GOOD, "goto done")["line"],
                  pos(GOOD, "step done")["line"]]), lines)
    r = s.request("textDocument/references", {"textDocument": doc, "position": pos(GOOD, "var count", 0, 4),
                                              "context": {"includeDeclaration": False}})
    check("references of count (without its declaration)", 5, len(r.get("result") or []))

    # completion
    r = s.request("textDocument/completion", {"textDocument": doc, "position": pos(GOOD, "goto done", 0, 5)})
    items = {i["label"]: i for i in (r.get("result") or {}).get("items", [])}
    for label, kind in (("more", 18), ("done", 18), ("start", 18), ("count", 6), ("name", 6),
                        ("upper", 3), ("format_number", 3), ("contact", 6),
                        ("whatsapp_flow_response_received", 23), ("buttons", 14),
                        ("wait", 14), ("saga", 14), ("shop", 9)):
        check("completion: %s" % label, kind, items.get(label, {}).get("kind"))
    check("completion: a variable's type as detail", "int", items.get("count", {}).get("detail"))
    check("completion: a builtin's signature", "upper(text) -> text", items.get("upper", {}).get("detail"))

    # document symbols
    r = s.request("textDocument/documentSymbol", {"textDocument": doc})
    syms = r.get("result") or []
    check("documentSymbol: one flow", ["shop"], [x["name"] for x in syms])
    if syms:
        check("documentSymbol: its steps and variables", ["count", "start", "more", "done"],
              [x["name"] for x in syms[0]["children"]])
        check("documentSymbol: kinds", [13, 12, 12, 12], [x["kind"] for x in syms[0]["children"]])

    # a form whose JSON has an error: published under the JSON file's own URI
    os.makedirs(os.path.join(tmp, "forms"))
    with open(os.path.join(tmp, "forms", "lead.json"), "w") as f:
        f.write('{\n  "version": "7.1",\n  "screens": [\n    {"id": "A", "terminal": true,\n'
                '     "layout": {"type": "SingleColumnLayout", "children": [\n'
                '       {"type": "TextInptu", "name": "x"}]}}\n  ]\n}\n')
    with_form = GOOD.replace("    set count = 1\n", "    set count = 1\n    form \"lead\"\n")
    s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                        "contentChanges": [{"text": with_form}]})
    check("a form's JSON error: none in the .flow", [], s.diagnostics(uri))
    jd = s.diagnostics("file://" + os.path.join(tmp, "forms", "lead.json"))
    truth("a form's JSON error: under the JSON's URI, at its line",
          jd and any("TextInptu" in x["message"] and x["range"]["start"]["line"] == 5 for x in jd), jd)
    s.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 4},
                                        "contentChanges": [{"text": GOOD}]})
    check("the form removed: its diagnostics withdrawn", [],
          s.diagnostics("file://" + os.path.join(tmp, "forms", "lead.json")))

    # robustness: malformed JSON, an unknown method, garbage framing; the server goes on
    s.raw(b"Content-Length: 9\r\n\r\n{not json")
    m = s.read()
    check("malformed JSON: parse error", -32700, m.get("error", {}).get("code"))
    r = s.request("workspace/frobnicate", {})
    check("unknown method: method not found", -32601, r.get("error", {}).get("code"))
    r = s.request("textDocument/hover", {"textDocument": {"uri": "file:///nowhere.flow"},
                                         "position": {"line": 3, "character": 1}})
    check("hover in an unknown document: null", None, r.get("result"))

    # shutdown, exit
    r = s.request("shutdown", None)
    check("shutdown: null result", None, r.get("result"))
    s.notify("exit", None)
    try:
        rc = s.p.wait(10)
    except subprocess.TimeoutExpired:
        s.p.kill()
        rc = "hung"
    check("exit after shutdown: status 0", 0, rc)

    # exit without shutdown: status 1
    s2 = Server()
    s2.request("initialize", {"processId": None, "capabilities": {}})
    s2.notify("exit", None)
    check("exit without shutdown: status 1", 1, s2.p.wait(10))

    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
