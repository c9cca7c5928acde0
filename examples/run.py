"""Run the example: two demo services and portvakt in front of them.

    make run            (or: /usr/bin/python3 examples/run.py)

Picks free loopback ports, writes build/example/gateway.conf from
examples/gateway.conf, starts an "auth" and an "inventory" service on
127.0.0.1, then build/portvakt in the foreground. Ctrl-C stops everything;
so does a SIGTERM to make, or to this process.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt"))
TEMPLATE = os.path.join(ROOT, "examples", "gateway.conf")
OUTDIR = os.path.join(ROOT, "build", "example")

ITEMS = {
    "1": {"id": "1", "name": "ski wax", "stock": 12},
    "2": {"id": "2", "name": "wool socks", "stock": 40},
    "3": {"id": "3", "name": "head torch", "stock": 0},
}
SECRET = os.urandom(16)


def free_port(want=0):
    """want when it is free on 127.0.0.1, else any free port."""
    for p in ((want, 0) if want else (0,)):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise OSError("no free port")


def doctor_verdict(conf):
    """The summary line of `portvakt doctor` for this host and config."""
    try:
        r = subprocess.run([BINARY, "doctor", "-c", conf], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, NO_COLOR="1"))
    except (OSError, subprocess.TimeoutExpired) as e:
        return "portvakt doctor did not run: %s" % e
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "portvakt doctor printed nothing"


class Service(BaseHTTPRequestHandler):
    """Base for the demo services: HTTP/1.1 with keep-alive, JSON replies
    that show what the gateway forwarded."""

    protocol_version = "HTTP/1.1"
    service = "service"

    def log_message(self, fmt, *args):
        sys.stderr.write("[%s] %s\n" % (self.service, fmt % args))

    def seen(self):
        return {
            "service": self.service,
            "path": self.path,
            "x_real_ip": self.headers.get("X-Real-IP"),
            "x_forwarded_for": self.headers.get("X-Forwarded-For"),
            "host": self.headers.get("Host"),
            "connection_from_gateway": "%s:%d" % self.client_address,
        }

    def reply(self, status, obj):
        body = (json.dumps(obj, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


def make_token(user):
    sig = hashlib.sha256(SECRET + user.encode()).hexdigest()[:32]
    return base64.urlsafe_b64encode(user.encode()).decode().rstrip("=") + "." + sig


def check_token(token):
    try:
        user_part, sig = token.split(".", 1)
        user = base64.urlsafe_b64decode(user_part + "=" * (-len(user_part) % 4)).decode()
    except ValueError:
        return None
    return user if make_token(user) == token else None


class Auth(Service):
    service = "auth"

    def do_POST(self):
        if self.path.split("?")[0] != "/login":
            return self.reply(404, {"error": "not found", "seen": self.seen()})
        try:
            data = json.loads(self.body() or b"{}")
        except ValueError:
            return self.reply(400, {"error": "body must be JSON"})
        user = str(data.get("user") or "guest")
        self.reply(200, {"token": make_token(user), "user": user, "seen": self.seen()})

    def do_GET(self):
        if self.path.split("?")[0] != "/verify":
            return self.reply(404, {"error": "not found", "seen": self.seen()})
        auth = self.headers.get("Authorization") or ""
        user = check_token(auth[7:]) if auth.startswith("Bearer ") else None
        if user is None:
            return self.reply(401, {"valid": False, "seen": self.seen()})
        self.reply(200, {"valid": True, "user": user, "seen": self.seen()})


class Inventory(Service):
    service = "inventory"

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/items":
            return self.reply(200, {"items": list(ITEMS.values()), "seen": self.seen()})
        if path.startswith("/items/") and path[7:] in ITEMS:
            return self.reply(200, {"item": ITEMS[path[7:]], "seen": self.seen()})
        self.reply(404, {"error": "no such item", "seen": self.seen()})


def serve(handler, port):
    srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def die_with_parent():
    """In the gateway's child: SIGTERM it (the graceful stop) should this
    process die without stopping it (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def main():
    if not os.access(BINARY, os.X_OK):
        sys.exit("build/portvakt is missing: run `make` first")
    ports = {"PORT_A": free_port(), "PORT_B": free_port(), "PORT_GW": free_port(8080)}
    note = "" if ports["PORT_GW"] == 8080 else \
        "(port 8080 is taken on this machine: using %d)\n" % ports["PORT_GW"]
    text = open(TEMPLATE).read()
    for k, v in ports.items():
        text = text.replace(k, str(v))
    os.makedirs(OUTDIR, exist_ok=True)
    conf = os.path.join(OUTDIR, "gateway.conf")
    with open(conf, "w") as f:
        f.write(text)

    services = [serve(Auth, ports["PORT_A"]), serve(Inventory, ports["PORT_B"])]
    parent = os.getppid()
    gw = subprocess.Popen([BINARY, "-c", conf], stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 5
    while True:
        if gw.poll() is not None:
            for s in services:
                s.shutdown()
            sys.exit("portvakt exited with %s (config: %s)" % (gw.returncode, conf))
        try:
            socket.create_connection(("127.0.0.1", ports["PORT_GW"]), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                gw.kill()
                sys.exit("portvakt did not start listening")
            time.sleep(0.05)

    base = "http://127.0.0.1:%d" % ports["PORT_GW"]
    print("""
%(note)sportvakt is listening on %(base)s  (config: %(conf)s)
  auth service      127.0.0.1:%(a)d  behind /api/auth/
  inventory service 127.0.0.1:%(b)d  behind /api/inventory/

Try:
  curl -s -X POST %(base)s/api/auth/login -H 'Content-Type: application/json' -d '{"user":"ada"}'
  TOKEN=$(curl -s -X POST %(base)s/api/auth/login -d '{"user":"ada"}' | sed -n 's/.*"token": "\\([^"]*\\)".*/\\1/p')
  curl -s %(base)s/api/auth/verify -H "Authorization: Bearer $TOKEN"
  curl -s %(base)s/api/inventory/items
  curl -s %(base)s/api/inventory/items/2
  curl -si %(base)s/api/auth          (301 to /api/auth/)
  curl -si %(base)s/nowhere           (404)

The services echo the X-Real-IP / X-Forwarded-For they received and the
address the gateway connected from: repeat a request and the port stays the
same, because the gateway reuses its upstream connections.

portvakt doctor on this host: %(doctor)s
  (build/portvakt doctor -c %(conf)s explains each check)

Access log below. Ctrl-C stops everything.
""" % {"base": base, "conf": conf, "a": ports["PORT_A"], "b": ports["PORT_B"], "note": note,
       "doctor": doctor_verdict(conf)})
    sys.stdout.flush()

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        # make killed (SIGTERM to make alone) leaves this process to init:
        # stop then too
        while gw.poll() is None and os.getppid() == parent:
            try:
                gw.wait(0.5)
            except subprocess.TimeoutExpired:
                pass
        if gw.poll() is not None:
            print("portvakt exited with %s" % gw.returncode)
    except KeyboardInterrupt:
        pass
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(5)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
        for s in services:
            s.shutdown()
            s.server_close()


if __name__ == "__main__":
    main()
