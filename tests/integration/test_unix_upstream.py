"""Unix-domain socket upstreams: `server unix:/path` in an upstream block
and `proxy_pass http://unix:/path[:/uri]`, each answer and upstream
request compared with NGINX's on the same config, and their `-t` errors."""

import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import NGINX, Client, check_conf, free_port, http, wait_for

CONF = """
http {
    upstream unixes {
        server unix:@SOCK@ weight=2 max_fails=3;
        keepalive 4;
    }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Up $upstream_addr always;
        location /block/ { proxy_pass http://unixes; }
        location /kept/ {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://unixes;
        }
        location /uri/ { proxy_pass http://unix:@SOCK@:/base/; }
        location /plain/ { proxy_pass http://unix:@SOCK@; }
        location /gone/ { proxy_pass http://unix:@GONE@:/x; }
    }
}
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host"),
                                 self.headers.get("Connection")))
        body = json.dumps({"path": self.path, "host": self.headers.get("Host")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"


class UnixUpstream(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path):
        super().__init__(path, _Handler)
        self.seen = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def unix_up(tmp_path):
    made = []

    def make(name):
        u = UnixUpstream(str(tmp_path / name))
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


def start(factory, unix_up, tmp_path, tag):
    up = unix_up("up-%s.sock" % tag)
    gw = factory(CONF, GW=free_port(), SOCK=up.server_address,
                 GONE=str(tmp_path / "gone.sock"))
    return gw, up


def observe(gw, up, target):
    n = len(up.seen)
    r = http(gw.port, "GET", target)
    seen = {"status": r.status, "x-up": r.header("X-Up", "").replace(up.server_address, "SOCK")}
    if len(up.seen) > n:
        seen["up"] = up.seen[-1]
    return seen


TARGETS = ["/block/a?q=1", "/kept/b", "/uri/c/d?e=f", "/plain/g", "/gone/h"]


def test_unix_upstreams(portvakt, unix_up, tmp_path):
    gw, up = start(portvakt, unix_up, tmp_path, "pv")
    assert observe(gw, up, "/block/a?q=1") == {
        "status": 200, "x-up": "unix:SOCK", "up": ("/block/a?q=1", "unixes", "close")}
    assert observe(gw, up, "/uri/c/d?e=f")["up"] == ("/base/c/d?e=f", "localhost", "close")
    assert observe(gw, up, "/plain/g")["up"] == ("/plain/g", "localhost", "close")
    gone = observe(gw, up, "/gone/h")
    assert gone["status"] == 502 and "up" not in gone
    want = ("connect() failed (2: No such file or directory) while connecting to upstream, "
            "upstream: unix:%s" % (tmp_path / "gone.sock"))
    wait_for(lambda: want in gw.stderr(), what="the connect() error line")


def test_unix_keepalive_pool(portvakt, unix_up, tmp_path):
    gw, up = start(portvakt, unix_up, tmp_path, "pv")
    with Client(gw.port) as c:
        for i in range(3):
            c.request("GET", "/kept/%d" % i)
            assert c.read_response("GET").status == 200
    assert [s[0] for s in up.seen] == ["/kept/0", "/kept/1", "/kept/2"]
    assert all(s[2] is None for s in up.seen)


def test_same_answers_as_nginx(portvakt, nginx, unix_up, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = start(portvakt, unix_up, tmp_path, "pv")
    theirs = start(nginx, unix_up, tmp_path, "ngx")
    diffs = []
    for t in TARGETS:
        a, b = observe(*ours, t), observe(*theirs, t)
        if a != b:
            diffs.append((t, a, b))
    assert not diffs, "\n".join("%r\n  portvakt %r\n  nginx    %r" % d for d in diffs)


def check(tmp_path, body, http_level=""):
    path = tmp_path / "gw.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n%s\n server {\n  listen 127.0.0.1:%d;\n%s\n }\n}\n"
                    % (tmp_path, http_level, free_port(), body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("http_level,body,words", [
    ("upstream u { server unix:; }", "location / { proxy_pass http://u; }",
     'no path in the unix domain socket in upstream "unix:"'),
    ("upstream u { server unix:/%s; }" % ("x" * 120), "location / { proxy_pass http://u; }",
     "too long path in the unix domain socket in upstream"),
    ("", "location / { proxy_pass http://unix:; }", "no path in the unix domain socket"),
    ("", "location / { proxy_pass http://unix::/x; }", "no path in the unix domain socket"),
    ("", "location ~ /r { proxy_pass http://unix:/tmp/s:/x; }", '"proxy_pass" cannot have URI part'),
])
def test_check_errors_as_nginx(tmp_path, http_level, body, words):
    for name, (rc, text) in check(tmp_path, body, http_level).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
