"""Run the example: two demo services and portvakt in front of them.

    make run            (or: /usr/bin/python3 examples/run.py)

Writes build/example/demo.conf from examples/demo.conf (ports 8080 and
8443 when they are free, others with a note when not), a TLS certificate
for 127.0.0.1 and localhost at the first run (openssl), the JWT key the
auth service signs with and an API key; starts an "auth" and an
"inventory" service on 127.0.0.1 and build/portvakt in the foreground,
and prints curl lines that show what the gateway does. Ctrl-C stops
everything; so does a SIGTERM to make, or to this process.

    examples/run.py --any-ports --dir DIR     free ports only, files in DIR
                                              (the integration test)
"""

import argparse
import base64
import faulthandler
import hashlib
import hmac
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
TEMPLATE = os.path.join(ROOT, "examples", "demo.conf")

ITEMS = {
    "1": {"id": "1", "name": "ski wax", "stock": 12},
    "2": {"id": "2", "name": "wool socks", "stock": 40},
    "3": {"id": "3", "name": "head torch", "stock": 0},
}
SECRET = os.urandom(32)  # HS256 wants a key of 32 bytes or more


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
            "x_user": self.headers.get("X-User"),
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


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(user):
    """An HS256 JWT for user, valid for an hour: what the gateway's
    auth_jwt checks on the inventory routes."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "demo"}).encode())
    now = int(time.time())
    body = b64url(json.dumps({"sub": user, "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(SECRET, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def check_token(token):
    try:
        head, body, sig = token.split(".")
        want = hmac.new(SECRET, (head + "." + body).encode(), hashlib.sha256).digest()
        claims = json.loads(b64url_decode(body))
        if not hmac.compare_digest(b64url_decode(sig), want) or claims["exp"] < time.time():
            return None
        return str(claims["sub"])
    except (ValueError, KeyError, TypeError):
        return None


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


def make_files(outdir):
    """The TLS certificate (kept from an earlier run), the JWK set with
    this run's signing key, and an API key. Returns (api key, note)."""
    tls = os.path.join(outdir, "tls")
    os.makedirs(tls, exist_ok=True)
    cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
    note = "from an earlier run"
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "825", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        note = "made now"
    with open(os.path.join(outdir, "jwks.json"), "w") as f:
        json.dump({"keys": [{"kty": "oct", "kid": "demo", "alg": "HS256", "k": b64url(SECRET)}]}, f)
    api_key = "demo-" + os.urandom(8).hex()
    with open(os.path.join(outdir, "api-keys"), "w") as f:
        f.write("%s demo-client\n" % api_key)
    return api_key, note


def pick_ports(any_ports):
    """The gateway's 8080 and 8443 (or free ones, with a note), and free
    ports for the services."""
    ports = {"PORT_A": free_port(), "PORT_B": free_port(),
             "PORT_GW": free_port(0 if any_ports else 8080), "PORT_TLS": free_port(0 if any_ports else 8443)}
    note = ""
    for k, want in (("PORT_GW", 8080), ("PORT_TLS", 8443)):
        if not any_ports and ports[k] != want:
            note += "(port %d is taken on this machine: using %d)\n" % (want, ports[k])
    return ports, note


def start_gateway(conf, ports, services):
    gw = subprocess.Popen([BINARY, "-c", conf], stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 10
    for p in (ports["PORT_GW"], ports["PORT_TLS"]):
        while True:
            if gw.poll() is not None:
                for s in services:
                    s.shutdown()
                sys.exit("portvakt exited with %s (config: %s)" % (gw.returncode, conf))
            try:
                socket.create_connection(("127.0.0.1", p), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    gw.kill()
                    sys.exit("portvakt did not start listening")
                time.sleep(0.05)
    return gw


USAGE = """
%(note)sportvakt is listening on %(base)s and %(tls)s  (config: %(conf)s)
  auth service      127.0.0.1:%(a)d  behind /api/auth/
  inventory service 127.0.0.1:%(b)d  behind /api/inventory/ (JWT or API key)
                                     and /api/limited/ (rate limited)

Try:
  curl -s -X POST %(base)s/api/auth/login -H 'Content-Type: application/json' -d '{"user":"ada"}'
  TOKEN=$(curl -s -X POST %(base)s/api/auth/login -d '{"user":"ada"}' | sed -n 's/.*"token": "\\([^"]*\\)".*/\\1/p')
  curl -s %(base)s/api/auth/verify -H "Authorization: Bearer $TOKEN"
  curl -si %(base)s/api/inventory/items          (401: a JWT or an API key is needed)
  curl -s %(base)s/api/inventory/items -H "Authorization: Bearer $TOKEN"
  curl -s %(base)s/api/inventory/items/2 -H 'X-API-Key: %(key)s'
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%%{http_code} ' %(base)s/api/limited/items; done; echo          (3 pass, then 429)
  curl -si %(base)s/api/limited/items | grep -iE '^(HTTP|RateLimit|Retry-After)'          (429, with RateLimit headers)
  curl -s --cacert %(cert)s %(tls)s/api/inventory/items/2 -H "Authorization: Bearer $TOKEN"
  curl -s %(base)s/metrics | grep -E '^portvakt_(auth|limit_req)_'
  curl -s %(base)s/readyz
  curl -si %(base)s/api/auth          (301 to /api/auth/)
  curl -si %(base)s/nowhere           (404)

The dashboard: open %(base)s/dashboard in a browser.
The TLS certificate (%(cert_note)s): %(cert)s
The services echo the X-Real-IP / X-Forwarded-For / X-User they received
and the address the gateway connected from: repeat a request and the port
stays the same, because the gateway reuses its upstream connections.

portvakt doctor on this host: %(doctor)s
  (%(binary)s doctor -c %(conf)s explains each check)

Access log below. Ctrl-C stops everything.
"""


def main():
    ap = argparse.ArgumentParser(description="portvakt's example gateway with two demo services")
    ap.add_argument("--any-ports", action="store_true", help="free ports only, not 8080 and 8443")
    ap.add_argument("--dir", default=os.path.join(ROOT, "build", "example"), help="where to write its files")
    args = ap.parse_args()
    if not os.access(BINARY, os.X_OK):
        sys.exit("build/portvakt is missing: run `make` first")
    outdir = os.path.abspath(args.dir)
    os.makedirs(outdir, exist_ok=True)
    ports, note = pick_ports(args.any_ports)
    api_key, cert_note = make_files(outdir)
    text = open(TEMPLATE).read().replace("DIR/", outdir + "/")
    for k, v in ports.items():
        text = text.replace(k, str(v))
    conf = os.path.join(outdir, "demo.conf")
    with open(conf, "w") as f:
        f.write(text)

    services = [serve(Auth, ports["PORT_A"]), serve(Inventory, ports["PORT_B"])]
    parent = os.getppid()
    gw = start_gateway(conf, ports, services)
    print(USAGE % {"base": "http://127.0.0.1:%d" % ports["PORT_GW"],
                   "tls": "https://127.0.0.1:%d" % ports["PORT_TLS"], "conf": conf,
                   "a": ports["PORT_A"], "b": ports["PORT_B"], "note": note, "key": api_key,
                   "cert": os.path.join(outdir, "tls", "cert.pem"), "cert_note": cert_note,
                   "doctor": doctor_verdict(conf), "binary": os.path.relpath(BINARY)})
    sys.stdout.flush()

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints where each thread is
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
