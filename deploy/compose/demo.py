#!/usr/bin/python3
"""A demo service of the Compose stack: `demo.py auth|inventory PORT`
(on every address, or on BIND_ADDR when set).

auth answers POST /login and GET /verify, inventory GET /items and
/items/N; both answer GET /health, which is their healthcheck, and
GET /slow?s=N after N seconds. inventory
is healthy only while its database accepts connections (DB_HOST,
DB_PORT), as the brief's backend depends on its database. Each answer
names the container (hostname) and its address, so a test sees which
instance served it.
"""
import json
import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE, PORT = sys.argv[1], int(sys.argv[2])
ITEMS = {"1": "ski wax", "2": "wool socks", "3": "head torch"}


def db_up():
    try:
        socket.create_connection((os.environ.get("DB_HOST", "database"),
                                  int(os.environ.get("DB_PORT", "5432"))), 2).close()
        return True
    except OSError:
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, obj):
        obj["served_by"] = socket.gethostname()
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/health":
            ok = ROLE != "inventory" or db_up()
            return self.reply(200 if ok else 503, {"healthy": ok})
        if path == "/slow":  # a request in flight for a graceful stop
            time.sleep(float(self.path.partition("s=")[2] or 2))
            return self.reply(200, {"slow": True})
        if ROLE == "inventory" and path == "/items":
            return self.reply(200, {"items": list(ITEMS.values())})
        if ROLE == "inventory" and path.startswith("/items/") and path[7:] in ITEMS:
            return self.reply(200, {"item": ITEMS[path[7:]]})
        if ROLE == "auth" and path == "/verify":
            ok = self.headers.get("Authorization", "").startswith("Bearer ")
            return self.reply(200 if ok else 401, {"valid": ok})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if ROLE == "auth" and self.path == "/login":
            return self.reply(200, {"token": "demo"})
        self.reply(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        sys.stderr.write("[%s] %s\n" % (ROLE, fmt % args))


if __name__ == "__main__":
    # the container's PID 1 ignores a signal it has no handler for: stop
    # on `podman stop` / `docker stop` rather than wait for SIGKILL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = ThreadingHTTPServer((os.environ.get("BIND_ADDR", "0.0.0.0"), PORT), Handler)
    srv.daemon_threads = True
    srv.serve_forever()
