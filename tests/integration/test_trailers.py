"""Response trailers. NGINX does not pass an upstream's trailer fields to
an HTTP/1.1 client (its chunked body ends with an empty trailer section),
and neither does portvakt; `add_trailer NAME VALUE [always]` adds fields
at the end of a response, which then goes out chunked to an HTTP/1.1
client (its Content-Length dropped) and as a trailing HEADERS frame to an
HTTP/2 one. Each HTTP/1.1 answer is compared with NGINX's byte for byte
but for the Server and Date fields."""

import re
import socket
import subprocess
import threading

import h2.events
import pytest

from conftest import LOOPBACK, PORTVAKT, free_port
from test_h2 import H2Client

pytestmark = pytest.mark.portvakt_only("compares portvakt with NGINX itself")

UP_REPLY = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")

CONF = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@;
        add_trailer X-Server-Level "s";
        location /proxy { proxy_pass http://127.0.0.1:@UP@; proxy_http_version 1.1; }
        location /proxy-add {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_http_version 1.1;
            add_trailer X-Status "$status";
        }
        location /ret { add_trailer X-T "v1"; add_trailer X-Empty "$arg_none"; return 200 "hello\\n"; }
        location /notfound { add_trailer X-T "v"; return 404; }
        location /always { add_trailer X-T "v" always; return 404; }
        location /inherit { return 200 "x\\n"; }
        location /redirect { add_trailer X-T "v"; return 302 /elsewhere; }
        location /nocontent { add_trailer X-T "v"; return 204; }
        location /off { chunked_transfer_encoding off; add_trailer X-T "v"; return 200 "y\\n"; }
        location /sent {
            add_trailer Foo foo; add_trailer Foo bar;
            add_trailer X-Sent "[$sent_trailer_foo][$sent_trailer_x_sent][$sent_trailer_none]";
            add_header Cache-Control one; add_header Cache-Control two; add_header Bar a; add_header Bar b;
            add_header X-Sent "[$sent_http_cache_control][$sent_http_bar][$sent_http_x_sent]";
            return 200 "";
        }
    }
}
"""


def raw_upstream():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((LOOPBACK, 0))
    srv.listen(16)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                b = c.recv(4096)
                if not b:
                    break
                data += b
            c.sendall(UP_REPLY)
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def exchange(port, target, version="HTTP/1.1", method="GET"):
    with socket.create_connection((LOOPBACK, port), timeout=5) as s:
        s.sendall(b"%s %s %s\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                  % (method.encode(), target.encode(), version.encode()))
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


def normalize(resp):
    # the upstream's Trailer field: NGINX passes it, portvakt drops it (a
    # hop-by-hop field here: it names fields an HTTP/1.1 client never gets)
    resp = re.sub(rb"\r\nTrailer: [^\r]*", b"", resp)
    resp = re.sub(rb"\r\nServer: [^\r]*", b"\r\nServer: S", resp)
    resp = re.sub(rb"localhost:\d+", b"localhost:PORT", resp)
    resp = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: D", resp)
    # error pages name the server: their length differs
    if b"<hr><center>" in resp:
        resp = re.sub(rb"Content-Length: \d+", b"Content-Length: N", resp)
        resp = re.sub(rb"\r\n\r\n[0-9a-f]+\r\n<html>", b"\r\n\r\nSIZE\r\n<html>", resp)
    return re.sub(rb"<hr><center>[^<]*</center>", b"<hr><center>S</center>", resp)


CASES = [("/proxy", "HTTP/1.1"), ("/proxy-add", "HTTP/1.1"), ("/ret", "HTTP/1.1"), ("/ret", "HTTP/1.0"),
         ("/notfound", "HTTP/1.1"), ("/always", "HTTP/1.1"), ("/inherit", "HTTP/1.1"),
         ("/redirect", "HTTP/1.1"), ("/nocontent", "HTTP/1.1"), ("/off", "HTTP/1.1"),
         ("/sent", "HTTP/1.1")]


def answers(start):
    up = raw_upstream()
    gw = free_port()
    try:
        start(CONF, GW=gw, UP=up.getsockname()[1])
        out = {c: normalize(exchange(gw, *c)) for c in CASES}
        out["head"] = normalize(exchange(gw, "/ret", method="HEAD"))
        return out
    finally:
        up.close()


def test_trailers_as_nginx(portvakt, nginx):
    got = answers(portvakt)
    want = answers(nginx)
    for k in want:
        assert got[k] == want[k], k
    # and they mean what they say
    assert got[("/proxy", "HTTP/1.1")].endswith(b"5\r\nhello\r\n0\r\nX-Server-Level: s\r\n\r\n")
    assert b"abc123" not in got[("/proxy", "HTTP/1.1")]
    assert got[("/proxy-add", "HTTP/1.1")].endswith(b"0\r\nX-Status: 200\r\n\r\n")
    ret = got[("/ret", "HTTP/1.1")]
    assert b"Transfer-Encoding: chunked" in ret and b"Content-Length" not in ret
    assert ret.endswith(b"6\r\nhello\n\r\n0\r\nX-T: v1\r\n\r\n")
    assert got[("/ret", "HTTP/1.0")].endswith(b"Content-Length: 6\r\nConnection: close\r\n\r\nhello\n")
    assert b"chunked" not in got[("/notfound", "HTTP/1.1")]
    assert got[("/always", "HTTP/1.1")].endswith(b"\r\n0\r\nX-T: v\r\n\r\n")
    assert got[("/inherit", "HTTP/1.1")].endswith(b"0\r\nX-Server-Level: s\r\n\r\n")
    assert b"chunked" not in got[("/nocontent", "HTTP/1.1")]
    assert b"chunked" not in got[("/off", "HTTP/1.1")] and got[("/off", "HTTP/1.1")].endswith(b"y\n")
    assert b"chunked" not in got["head"]
    # $sent_trailer_ and $sent_http_ see the fields made before them: a
    # repeated trailer or field gives its first (NGINX 1.22), Cache-Control
    # all, joined
    sent = got[("/sent", "HTTP/1.1")]
    assert b"\r\nX-Sent: [foo][][]\r\n" in sent
    assert b"\r\nX-Sent: [one, two][a][]\r\n" in sent


def h2_get(port, path):
    c = H2Client(port)
    c.request(path)
    trailers, data, ended = [], b"", False
    while not ended:
        chunk = c.sock.recv(65536)
        assert chunk, "closed"
        for ev in c.conn.receive_data(chunk):
            if isinstance(ev, h2.events.TrailersReceived):
                trailers = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
        c.flush()
    return data, trailers


def test_add_trailer_over_h2(portvakt):
    up = raw_upstream()
    gw = free_port()
    try:
        portvakt(CONF.replace("listen 127.0.0.1:@GW@;", "listen 127.0.0.1:@GW@ http2;"), GW=gw,
                 UP=up.getsockname()[1])
        # the upstream's trailers first, then add_trailer's
        assert h2_get(gw, "/proxy-add") == (b"hello", [("x-checksum", "abc123"), ("x-status", "200")])
        assert h2_get(gw, "/ret") == (b"hello\n", [("x-t", "v1")])
        assert h2_get(gw, "/notfound")[1] == []
    finally:
        up.close()


def test_t_errors(tmp_path):
    conf = tmp_path / "t.conf"
    for line, msg in (("add_trailer X v sometimes;", 'invalid parameter "sometimes"'),
                      ("add_trailer X;", 'invalid number of arguments in "add_trailer" directive')):
        conf.write_text("http {\n server { listen 127.0.0.1:1;\n location / { %s } } }\n" % line)
        r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr and "t.conf:3" in r.stderr, r.stderr
