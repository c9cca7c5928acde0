"""The Compose stack (deploy/compose.yml) as processes on loopback, for
machines without a container runtime: deploy/compose/portvakt.conf with
the services' ports made free ones and a DNS stub as the stack's name
server, the stack's own demo
services (deploy/compose/demo.py), a TCP listener standing for
PostgreSQL (inventory's health only connects to it), and a real
redis-server for the shared limit. It checks what scripts/podman-compose-test.sh
checks in containers:

- gating: the gateway's readiness endpoint (portvakt_ready, the image's
  healthcheck) answers 503, and the services get no traffic, until their
  health checks pass; inventory turns unhealthy when its database goes
  and readiness follows;
- the gateway at work: both services over HTTP and TLS, a rate limit
  answering 429 with RateLimit headers, its state in Redis;
- a service restarted at a new address (its name, in the stack's name
  server, moved with it), followed without a reload (`server ... resolve`);
- a graceful stop (SIGTERM) with a request in flight: answered, exit 0."""
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, RedisServer, free_port, http, openssl, port_open, wait_for
from dns_stub import A, DnsStub

pytestmark = pytest.mark.portvakt_only("the Compose stack's gateway config")

if not os.access("/usr/bin/redis-server", os.X_OK):
    pytest.skip("redis-server is not installed", allow_module_level=True)

DEMO = os.path.join(ROOT, "deploy", "compose", "demo.py")


def conf_text(tls, ports):
    with open(os.path.join(ROOT, "deploy", "compose", "portvakt.conf")) as f:
        text = f.read()
    subs = [("include /run/portvakt/resolvers.conf;", "resolver 127.0.0.1:%d valid=1s;" % ports["dns"]),
            ("server auth:8080 resolve;", "server auth:%d resolve;" % ports["auth"]),
            ("server inventory:8080 resolve;", "server inventory:%d resolve;" % ports["inventory"]),
            ("redis=redis:6379", "redis=127.0.0.1:%d" % ports["redis"]),
            ("listen 127.0.0.1:8081;", "listen 127.0.0.1:%d;" % ports["probe"]),
            ("listen 80;", "listen 127.0.0.1:%d;" % ports["http"]),
            ("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % ports["https"]),
            ("tls/cert.pem", os.path.join(tls, "cert.pem")),
            ("tls/key.pem", os.path.join(tls, "key.pem")),
            ("pid /run/portvakt/portvakt.pid;", "pid %s;" % os.path.join(tls, "portvakt.pid")),
            ("access_log /dev/stdout;", "access_log off;"),
            ("worker_processes auto;", "worker_processes 1;")]
    for old, new in subs:
        assert old in text, old
        text = text.replace(old, new)
    return text


class Demo:
    """deploy/compose/demo.py ROLE PORT, as the stack runs it, on one
    loopback address (a container's own)."""

    def __init__(self, role, port, db_port=None, addr="127.0.0.1"):
        env = dict(os.environ, DB_HOST="127.0.0.1", DB_PORT=str(db_port or 1), BIND_ADDR=addr)
        self.proc = subprocess.Popen([sys.executable, DEMO, role, str(port)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.port = port
        wait_for(lambda: port_open(port, addr), 10, what="%s up" % role)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Database:
    """A TCP listener where PostgreSQL would be."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.done:
            try:
                self.sock.accept()[0].close()
            except OSError:
                return

    def stop(self):
        self.done = True
        self.sock.close()


def ready(gw_probe):
    return http(gw_probe, "GET", "/readyz").status


def tls_get(port, path):
    r = subprocess.run(["curl", "-sk", "--max-time", "5", "https://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, text=True, timeout=10)
    return r.stdout


def test_compose_topology_as_processes(portvakt, tmp_path):
    tls = str(tmp_path / "tls")
    os.mkdir(tls)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", os.path.join(tls, "key.pem"),
            "-out", os.path.join(tls, "cert.pem"))
    ports = {k: free_port() for k in ("auth", "inventory", "db", "probe", "http", "https")}
    redis = RedisServer(tmp_path).start()
    ports["redis"] = redis.port
    # the stack's name server: each service's name, a short TTL as
    # Docker's embedded DNS and aardvark-dns keep none
    dns = DnsStub()
    ports["dns"] = dns.port
    dns.set("auth", (A, "127.0.0.1", 1))
    dns.set("inventory", (A, "127.0.0.1", 1))
    started = []
    try:
        # the gateway first, nothing behind it yet: not ready, and the
        # services' routes answer 503 (their mandatory checks have not passed)
        gw = portvakt(conf_text(tls, ports))
        assert ready(ports["probe"]) == 503
        assert http(ports["http"], "GET", "/api/inventory/items").status == 503
        assert http(ports["probe"], "GET", "/livez").status == 200

        # the services come up; inventory stays unhealthy without its database
        started += [Demo("auth", ports["auth"]), Demo("inventory", ports["inventory"], ports["db"])]
        # auth's checks pass, inventory's do not: readiness names inventory alone
        wait_for(lambda: b"auth_service" not in http(ports["probe"], "GET", "/readyz").body, 15,
                 what="auth let in by its checks")
        r = http(ports["probe"], "GET", "/readyz")
        assert r.status == 503 and b"inventory_service" in r.body, r
        assert http(ports["http"], "GET", "/api/inventory/items").status == 503
        assert http(ports["http"], "GET", "/api/auth/verify").status == 401
        db = Database(ports["db"])
        wait_for(lambda: ready(ports["probe"]) == 200, 15, what="ready once every service is healthy")

        # the gateway at work, over HTTP and TLS
        assert b"wool socks" in http(ports["http"], "GET", "/api/inventory/items").body
        assert "wool socks" in tls_get(ports["https"], "/api/inventory/items/2")
        assert http(ports["http"], "GET", "/api/auth/verify").status == 401
        codes = [http(ports["http"], "GET", "/api/auth/verify").status for _ in range(30)]
        assert 429 in codes, codes
        r = http(ports["http"], "GET", "/api/auth/verify")
        assert r.status == 429 and r.header("RateLimit-Policy"), r
        assert any(k.startswith(b"pv:lr:api:") for k in
                   re.findall(rb"pv:lr:[^\r\n]+", redis.command("KEYS", "pv:lr:*")))

        # inventory's database goes: inventory unhealthy, the gateway not ready
        db.stop()
        wait_for(lambda: ready(ports["probe"]) == 503, 15, what="not ready without the database")
        db = Database(ports["db"])
        wait_for(lambda: ready(ports["probe"]) == 200, 15, what="ready again")

        # auth's container recreated at a new address, its name moved
        # with it: the gateway follows without a reload
        started[0].stop()
        started[0] = Demo("auth", ports["auth"], addr="127.0.0.2")
        assert not port_open(ports["auth"], "127.0.0.1")
        dns.set("auth", (A, "127.0.0.2", 1))
        answers = []
        wait_for(lambda: answers.append(http(ports["http"], "GET", "/api/auth/verify",
                                             headers=[("Authorization", "Bearer x")])) or
                 answers[-1].status not in (429, 502, 503), 15, interval=0.25,
                 what="an answer past the limit, from the new address")
        assert answers[-1].status == 200 and b'"valid": true' in answers[-1].body, answers[-1]
        assert "reloaded" not in gw.stderr()

        # a graceful stop with a request in flight (once the shared limit,
        # which the tries above ran down, lets requests through again)
        wait_for(lambda: http(ports["http"], "GET", "/api/inventory/items").status == 200, 15, interval=0.25,
                 what="the limit refilled")
        time.sleep(0.5)
        got = {}

        def slow():
            got["r"] = http(ports["http"], "GET", "/api/inventory/slow?s=2", timeout=15)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        assert gw.stop() == 0
        t.join(15)
        assert got["r"].status == 200 and b'"slow": true' in got["r"].body, got
        db.stop()
    finally:
        for s in started:
            s.stop()
        redis.stop()
        dns.stop()
