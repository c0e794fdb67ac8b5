#!/usr/bin/env python3
"""tests/serve_multi.py: several `flowvm serve` processes sharing one Redis
(docs/runtime.md, "Several processes"). Starts a real redis-server (AOF, fsync always),
tests/mockapi (the Cloud API) and two flowvm processes on free loopback ports, runs an
echo conversation (every user message is answered "echo TEXT") and checks:

  order      each user's messages posted alternately to the two processes, one after the
             other's 200: the echoes come back complete and in the order posted;
  duplicates every message delivered 1 to 4 times, concurrently, to both processes:
             exactly one echo each;
  kill -9    one process killed in the middle of a load (its posts then go to the other,
             as Meta redelivers): no accepted message lost; doubles only from sends in
             doubt, whose count is reported;
  workers    one port served by `--workers 2`: order holds; a worker killed with -9 in the
             middle of a load is started again by the supervisor, nothing accepted is lost;
             SIGTERM stops it all cleanly;
  redis -9   redis-server killed in the middle of a load and restarted on its AOF: posts
             answered 503 meanwhile are redelivered; no accepted message lost.

Usage: serve_multi.py FLOWC FLOWVM MOCKAPI. Prints "N passed, N failed"; exit 1 on failure;
exit 0 with "skipped" when redis-server is not installed.
"""
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

FLOWC, FLOWVM, MOCK = sys.argv[1:4]
SECRET = b"test-app-secret"
PNID = "106540352242922"
LEASE_MS = 1500
FLOW = """flow echo {
  trigger keyword "start"

  step start {
    say "ready"
    goto loop
  }

  step loop {
    ask "Say something" into t: text timeout 1h -> bye
    say "echo {t}"
    goto loop
  }

  step bye {
    end
  }
}
"""

passed = failed = 0


def ok(name):
    global passed
    passed += 1
    print("ok   " + name, flush=True)


def bad(name):
    global failed
    failed += 1
    print("FAIL " + name, flush=True)


def check(name, want, got):
    if want == got:
        ok(name)
    else:
        bad("%s: expected %r, got %r" % (name, want, got))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, secs=10):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = {}
        self.vm_ports = {}
        self.redis_port = free_port()
        self.record = os.path.join(tmp, "record")

    def start_redis(self):
        p = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.tmp, "--daemonize", "no"],
            stdout=open(os.path.join(self.tmp, "redis.log"), "a"), stderr=subprocess.STDOUT)
        self.procs["redis"] = p
        return wait_port(self.redis_port)

    def start_mock(self):
        open(self.record, "w").close()
        p = subprocess.Popen([MOCK, self.record, "0"], stdout=subprocess.PIPE,
                             stderr=open(os.path.join(self.tmp, "mock.err"), "w"))
        self.procs["mock"] = p
        self.mock_port = int(p.stdout.readline())

    def start_vm(self, name, extra=()):
        port = self.vm_ports.get(name) or free_port()
        self.vm_ports[name] = port
        env = dict(os.environ, WHATSAPP_APP_SECRET=SECRET.decode(),
                   WHATSAPP_VERIFY_TOKEN="v", WHATSAPP_ACCESS_TOKEN="t",
                   FLOWVM_LEASE_MS=str(LEASE_MS), FLOWVM_RETRY_BASE_MS="50")
        p = subprocess.Popen(
            [FLOWVM, "serve", *extra, "--listen", "127.0.0.1:%d" % port,
             "--api-base", "http://127.0.0.1:%d/v21.0" % self.mock_port,
             "--redis", "redis://127.0.0.1:%d" % self.redis_port,
             os.path.join(self.tmp, "echo.fbc")],
            env=env, stdout=open(os.path.join(self.tmp, name + ".log"), "a"),
            stderr=subprocess.STDOUT)
        self.procs[name] = p
        return wait_port(port)

    def kill9(self, name):
        p = self.procs.pop(name, None)
        if p:
            p.kill()
            p.wait()

    def stop_all(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    def post(self, vm, body):
        """The HTTP status of a signed webhook post to process vm (0: no answer)."""
        sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.vm_ports[vm], timeout=10)
            c.request("POST", "/webhook", body, {"Content-Type": "application/json",
                                                  "X-Hub-Signature-256": sig})
            st = c.getresponse().status
            c.close()
            return st
        except OSError:
            return 0

    def deliver(self, body, vms):
        """Posts until some process answers 200 (as Meta redelivers), trying vms in turn."""
        for attempt in range(600):
            if self.post(vms[attempt % len(vms)], body) == 200:
                return True
            time.sleep(0.05)
        return False

    def echoes(self):
        """{user: [echoed text, ...]} in the order the mock received them."""
        out = {}
        with open(self.record) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 3:
                    continue
                try:
                    b = json.loads(parts[2])
                except ValueError:
                    continue
                t = b.get("text", {}).get("body", "")
                if t.startswith("echo "):
                    out.setdefault(b["to"], []).append(t[5:])
        return out


def envelope(wa, wamid, text):
    return json.dumps({"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": wamid, "timestamp": "1700000000", "type": "text",
                          "text": {"body": text}}]}}]}]}).encode()


def run_users(w, users, nmsg, pick, tag, each=None):
    """Each user (a thread) sends start + nmsg texts one after the other; pick(user, i)
    gives the processes to post message i to. Returns the messages accepted per user."""
    lock = threading.Lock()
    accepted = {}

    def user(u):
        wa = "1555%07d" % u
        got = []
        if not w.deliver(envelope(wa, "wamid.%s.%d.start" % (tag, u), "start"), pick(u, 0)):
            return
        for i in range(1, nmsg + 1):
            text = "%s-%d-%d" % (tag, u, i)
            if each:
                each(u, i)
            if w.deliver(envelope(wa, "wamid.%s.%d.%d" % (tag, u, i), text), pick(u, i)):
                got.append(text)
        with lock:
            accepted[wa] = got

    ts = [threading.Thread(target=user, args=(u,)) for u in users]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return accepted


def judge(w, name, accepted, exact_order):
    want = sum(len(v) for v in accepted.values())
    end = time.time() + 30
    while time.time() < end:
        e = w.echoes()
        if all(set(m) <= set(e.get(wa, [])) for wa, m in accepted.items()):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # late doubles, if any
    e = w.echoes()
    lost = sum(1 for wa, m in accepted.items() for t in m if t not in e.get(wa, []))
    doubles = sum(e.get(wa, []).count(t) - 1 for wa, m in accepted.items() for t in m
                  if e.get(wa, []).count(t) > 1)
    check(name + ": no accepted message lost (of %d)" % want, 0, lost)
    if exact_order:
        wrong = [wa for wa, m in accepted.items() if [t for t in e.get(wa, []) if t in m] != m]
        check(name + ": every user's echoes complete, once each, in order", [], wrong)
    return doubles


def main():
    if not shutil.which("redis-server"):
        print("skipped: redis-server not installed")
        return 0
    tmp = tempfile.mkdtemp(prefix="flowvm-multi.")
    w = World(tmp)
    watchdog = threading.Timer(170, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    try:
        with open(os.path.join(tmp, "echo.flow"), "w") as f:
            f.write(FLOW)
        if subprocess.call([FLOWC, "build", os.path.join(tmp, "echo.flow"), "-o",
                            os.path.join(tmp, "echo.fbc")]) != 0:
            bad("flowc build")
            return 1
        if not w.start_redis():
            bad("redis-server did not start")
            return 1
        w.start_mock()
        if not (w.start_vm("a") and w.start_vm("b")):
            bad("flowvm did not start")
            return 1

        # order: alternate processes, each message after the previous one's 200
        acc = run_users(w, range(0, 20), 10, lambda u, i: ["a" if (u + i) % 2 else "b"], "o")
        judge(w, "order across two processes", acc, True)

        # duplicates: each message 1 to 4 times, concurrently, to both processes
        rnd = random.Random(7)
        dup_acc = {}
        for u in range(100, 120):
            wa = "1555%07d" % u
            w.deliver(envelope(wa, "wamid.d.%d.start" % u, "start"), ["a"])
            dup_acc[wa] = []
        for i in range(1, 6):
            threads = []
            for u in range(100, 120):
                wa = "1555%07d" % u
                text = "d-%d-%d" % (u, i)
                body = envelope(wa, "wamid.d.%d.%d" % (u, i), text)
                for k in range(rnd.randint(1, 4)):
                    t = threading.Thread(target=w.post, args=("ab"[k % 2], body))
                    threads.append(t)
                dup_acc[wa].append(text)
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        doubles = judge(w, "duplicates 1-4x across two processes", dup_acc, True)
        check("duplicates: exactly one echo per message", 0, doubles)

        # kill -9 of process a in the middle of a load
        sent = [0]

        def maybe_kill(u, i):
            sent[0] += 1
            if sent[0] == 120:
                w.kill9("a")

        acc = run_users(w, range(200, 230), 8, lambda u, i: ["a", "b"] if u % 2 else ["b", "a"],
                        "k", maybe_kill)
        doubles = judge(w, "kill -9 of a flowvm", acc, False)
        total = sum(len(v) for v in acc.values())
        print("info kill -9: %d messages accepted, %d replies sent twice (send-in-doubt "
              "window: %.2f%%)" % (total, doubles, 100.0 * doubles / max(total, 1)), flush=True)
        if "a" not in w.procs and w.start_vm("a"):
            ok("the killed flowvm restarts")
        with open(os.path.join(tmp, "b.log")) as f:
            claimed = f.read().count('"event":"session_claimed"')
        print("info kill -9: %d sessions taken over by the other process" % claimed, flush=True)

        # one port, two worker processes (--workers 2): order holds; kill -9 of a worker in
        # the middle of a load: the supervisor starts it again, nothing accepted is lost
        if not w.start_vm("w", ["--workers", "2"]):
            bad("flowvm --workers 2 did not start")
            return 1
        acc = run_users(w, range(400, 420), 6, lambda u, i: ["w"], "w")
        judge(w, "two workers on one port", acc, True)
        sup = w.procs["w"].pid
        kids = subprocess.run(["pgrep", "-P", str(sup)], capture_output=True, text=True).stdout.split()
        check("two worker processes", 2, len(kids))
        # GET /metrics from either worker: the samples of both, with a worker label, whose
        # sum counts every message once (a worker's own part is at most a second old)
        time.sleep(1.5)
        for k in range(4):
            c = http.client.HTTPConnection("127.0.0.1", w.vm_ports["w"], timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
            items = [l for l in text.splitlines() if l.startswith("flowvm_webhook_items_total{")]
            workers = {l.split('worker="')[1].split('"')[0] for l in items}
            total = sum(float(l.rsplit(" ", 1)[1]) for l in items)
            helps = text.count("# HELP flowvm_webhook_items_total ")
            if workers != {"0", "1"} or total != 140 or helps != 1:
                bad("metrics of both workers (scrape %d: workers %s, %g messages, %d HELP)"
                    % (k, sorted(workers), total, helps))
                break
        else:
            ok("GET /metrics merges both workers (140 messages: 20 users x 7, one HELP per metric)")
        sent[0] = 0

        def kill_worker(u, i):
            sent[0] += 1
            if sent[0] == 60 and kids:
                os.kill(int(kids[0]), signal.SIGKILL)

        acc = run_users(w, range(500, 520), 6, lambda u, i: ["w"], "x", kill_worker)
        judge(w, "kill -9 of a worker", acc, False)
        time.sleep(0.5)
        with open(os.path.join(tmp, "w.log")) as f:
            log = f.read()
        check("the supervisor started the killed worker again", 3, log.count('"event":"worker_started"'))
        w.procs["w"].terminate()
        try:
            check("the supervisor stops cleanly on SIGTERM", 0, w.procs.pop("w").wait(15))
        except subprocess.TimeoutExpired:
            bad("the supervisor did not stop")

        # kill -9 of redis-server in the middle of a load, restarted on its AOF
        sent[0] = 0

        def redis_crash(u, i):
            sent[0] += 1
            if sent[0] == 80:
                w.kill9("redis")
                time.sleep(0.5)
                w.start_redis()

        acc = run_users(w, range(300, 320), 8, lambda u, i: ["a", "b"], "r", redis_crash)
        doubles = judge(w, "kill -9 of redis-server (AOF)", acc, False)
        total = sum(len(v) for v in acc.values())
        print("info redis kill -9: %d messages accepted, %d replies sent twice (%.2f%%)"
              % (total, doubles, 100.0 * doubles / max(total, 1)), flush=True)
        return 0
    finally:
        w.stop_all()
        print("%d passed, %d failed" % (passed, failed))
        if failed:
            for n in ("a", "b", "w", "mock.err"):
                p = os.path.join(tmp, n + ("" if "." in n else ".log"))
                if os.path.exists(p):
                    print("--- " + n)
                    with open(p) as f:
                        print(f.read()[-20000:])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.exit(1 if failed else 0)
