"""What fastcgi_pass shares with proxy_pass through NGINX's upstream
module, beside NGINX: X-Accel-Redirect (a URI, a named location, the
fields that go on, fastcgi_ignore_headers), X-Accel-Charset,
fastcgi_force_ranges, fastcgi_ignore_client_abort, fastcgi_store and
fastcgi_store_access, and their `-t` errors."""

import os
import select
import socket
import stat
import struct
import threading

import pytest

from conftest import NGINX, check_conf, free_port, http, wait_for
from test_fastcgi import BEGIN, END, PARAMS, STDIN, STDOUT, decode_params, record, stream

BODY = b"0123456789abcdef\n"
LM = "Wed, 01 Jan 2020 00:00:00 GMT"
LM_EPOCH = 1577836800

# the CGI head (without its blank line) and body each name answers with
ANSWERS = {
    "plain": (b"Content-Type: text/plain\r\nContent-Length: %d\r\nLast-Modified: %s\r\n"
              % (len(BODY), LM.encode()), BODY),
    "nolen": (b"Content-Type: text/plain\r\n", BODY),
    "missing": (b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n", b"no\n"),
    "short": (b"Content-Type: text/plain\r\nContent-Length: 100\r\n", b"0123456789"),
    "redir": (b"X-Accel-Redirect: /files/f.txt\r\nSet-Cookie: a=b\r\nX-Other: 1\r\n"
              b"Content-Type: text/x-fcgi\r\n", b"the responder's body\n"),
    "redir-named": (b"X-Accel-Redirect: @named\r\n", b"the responder's body\n"),
    "redir-unsafe": (b"X-Accel-Redirect: /files/../secret\r\n", b"the responder's body\n"),
    "charset": (b"Content-Type: text/html\r\nX-Accel-Charset: koi8-r\r\n", b"x\n"),
}


class Responder:
    """A FastCGI responder on 127.0.0.1 answering by DOCUMENT_URI's last
    part (ANSWERS); `hold` waits up to 5 s for the gateway to close the
    connection before it answers. `seen` records each request's name, and
    for hold whether it was "closed" or "answered"."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped = True
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read(c, n):
        b = b""
        while len(b) < n:
            d = c.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b

    def _serve(self, c):
        try:
            params, rid, done = b"", 1, False
            while not done:
                _, t, rid, clen, pad, _ = struct.unpack(">BBHHBB", self._read(c, 8))
                content = self._read(c, clen + pad)[:clen]
                if t == PARAMS:
                    params += content
                elif t == STDIN:
                    done = clen == 0
            name = dict(decode_params(params)).get("DOCUMENT_URI", "/").rsplit("/", 1)[-1]
            if name == "hold":
                self.seen.append("hold")
                readable, _, _ = select.select([c], [], [], 5)
                if readable and c.recv(1) == b"":
                    self.seen.append("hold closed")
                    return
                self.seen.append("hold answered")
                head, body = b"Content-Type: text/plain\r\n", b"held\n"
            else:
                head, body = ANSWERS[name]
            c.sendall(stream(STDOUT, head + b"\r\n" + body, rid) + record(END, b"\0" * 8, rid))
            self.seen.append(name)
        except (EOFError, OSError, KeyError):
            pass
        finally:
            c.close()


CONF = """
error_log stderr warn;
http {
    fastcgi_param DOCUMENT_URI $document_uri;
    fastcgi_temp_path @DIR@/temp 1;
    charset_map koi8-r utf-8 { C1 D090; }
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@/html;
        location /files/ { }
        location @named { return 200 "named $uri\\n"; }
        location /fc/ { fastcgi_pass 127.0.0.1:@UP@; }
        location /ign/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_ignore_headers X-Accel-Redirect X-Accel-Charset;
        }
        location /cs/ { fastcgi_pass 127.0.0.1:@UP@; charset utf-8; source_charset koi8-r; }
        location /ranges/ { fastcgi_pass 127.0.0.1:@UP@; fastcgi_force_ranges on; }
        location /abort/ { fastcgi_pass 127.0.0.1:@UP@; fastcgi_ignore_client_abort on; }
        location /s/ { fastcgi_pass 127.0.0.1:@UP@; fastcgi_store on; }
        location /acc/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_store on;
            fastcgi_store_access user:rw group:rw all:r;
        }
        location /str/ { fastcgi_pass 127.0.0.1:@UP@; fastcgi_store @DIR@/named$uri.$arg_v; }
        location /unbuf/ { fastcgi_pass 127.0.0.1:@UP@; fastcgi_store on; fastcgi_buffering off; }
        location /proxystore/ { fastcgi_pass 127.0.0.1:@UP@; proxy_store on; }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = Responder()
    d = tmp_path / ("fcgi-" + request.param)
    (d / "html" / "files").mkdir(parents=True)
    (d / "html" / "files" / "f.txt").write_bytes(b"the file\n")
    os.chmod(d, 0o777)  # NGINX's workers store as nobody
    for top, dirs, _ in os.walk(d):
        for x in dirs:
            os.chmod(os.path.join(top, x), 0o777)
    start = portvakt if request.param == "portvakt" else nginx
    g = start(CONF, GW=free_port(), UP=up.port, DIR=str(d))
    g.dir, g.up = str(d), up
    yield g
    up.stop()


def get(g, target, method="GET", **kw):
    """One request; returns once the server has logged it (the store is
    done before the request ends)."""
    n = len(g.access_log_lines())
    try:
        r = http(g.port, method, target, **kw)
    finally:
        g.wait_access_log(n + 1)
    return r


def stored(g, rel):
    p = os.path.join(g.dir, rel)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


def temp_files(g):
    out = []
    for top, _, files in os.walk(os.path.join(g.dir, "temp")):
        out += [os.path.join(top, f) for f in files]
    return out


# ---- X-Accel-Redirect, X-Accel-Charset


def test_accel_redirect_to_uri(gw):
    r = http(gw.port, "GET", "/fc/redir")
    assert r.status == 200 and r.body == b"the file\n"
    assert r.header("Set-Cookie") == "a=b"  # the fields NGINX keeps go on
    assert r.header("X-Other") is None and r.header("X-Accel-Redirect") is None
    assert r.header("Content-Type") == "text/x-fcgi"


def test_accel_redirect_to_named_location(gw):
    r = http(gw.port, "GET", "/fc/redir-named")
    assert r.status == 200 and r.body == b"named /fc/redir-named\n"


def test_accel_redirect_unsafe_uri(gw):
    r = http(gw.port, "GET", "/fc/redir-unsafe")
    assert r.status == 404
    wait_for(lambda: 'unsafe URI "/files/../secret" was detected' in gw.stderr(), what="the log line")


def test_accel_redirect_ignored(gw):
    r = http(gw.port, "GET", "/ign/redir")
    assert r.status == 200 and r.body == b"the responder's body\n"
    assert r.header("X-Accel-Redirect") is None  # still hidden
    assert r.header("X-Other") == "1"


def test_accel_charset(gw):
    r = http(gw.port, "GET", "/cs/charset")
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=koi8-r"
    r = http(gw.port, "GET", "/ign/charset")
    assert r.header("Content-Type") == "text/html"


# ---- fastcgi_force_ranges


def test_force_ranges(gw):
    r = http(gw.port, "GET", "/ranges/plain", headers=[("Range", "bytes=2-5")])
    assert r.status == 206 and r.body == b"2345"
    assert r.header("Content-Range") == "bytes 2-5/%d" % len(BODY)
    r = http(gw.port, "GET", "/ranges/plain", headers=[("Range", "bytes=100-")])
    assert r.status == 416
    r = http(gw.port, "GET", "/fc/plain", headers=[("Range", "bytes=2-5")])
    assert r.status == 200 and r.body == BODY


def test_force_ranges_needs_a_length(gw):
    r = http(gw.port, "GET", "/ranges/nolen", headers=[("Range", "bytes=2-5")])
    assert r.status == 200 and r.body == BODY


# ---- fastcgi_ignore_client_abort


@pytest.mark.parametrize("target,want", [("/abort/hold", "hold answered"), ("/fc/hold", "hold closed"),
                                         ("/s/hold", "hold answered")])
def test_ignore_client_abort(gw, target, want):
    """The client closes while the responder has not answered: the
    exchange ends with it, unless fastcgi_ignore_client_abort (or
    fastcgi_store) keeps it going."""
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: "hold" in gw.up.seen, what="the request at the responder")
    s.close()
    wait_for(lambda: [x for x in gw.up.seen if x.startswith("hold ")], timeout=10, what="the responder's verdict")
    assert [x for x in gw.up.seen if x.startswith("hold ")] == [want]


# ---- fastcgi_store


def test_stored_under_root(gw):
    r = get(gw, "/s/a/b/plain")
    assert r.status == 200 and r.body == BODY
    p = os.path.join(gw.dir, "html/s/a/b/plain")
    assert stored(gw, "html/s/a/b/plain") == BODY
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert os.stat(p).st_mtime == LM_EPOCH
    assert temp_files(gw) == []


def test_store_access_bits(gw):
    assert get(gw, "/acc/d/plain").status == 200
    assert stat.S_IMODE(os.stat(os.path.join(gw.dir, "html/acc/d/plain")).st_mode) == 0o664


def test_store_string_path(gw):
    assert get(gw, "/str/plain?v=7").body == BODY
    assert stored(gw, "named/str/plain.7") == BODY
    assert stored(gw, "html/str/plain") is None


def test_head_stored(gw):
    """A HEAD's responder writes the body all the same: it is read and
    stored, the client gets the head alone."""
    r = get(gw, "/s/h/plain", "HEAD")
    assert r.status == 200 and r.body == b""
    assert stored(gw, "html/s/h/plain") == BODY


def test_stored_without_length(gw):
    assert get(gw, "/s/nolen").body == BODY
    assert stored(gw, "html/s/nolen") == BODY


@pytest.mark.parametrize("target", ["/s/missing", "/unbuf/plain", "/proxystore/plain"])
def test_not_stored(gw, target):
    r = get(gw, target)
    assert r.status in (200, 404)
    assert stored(gw, "html" + target) is None
    assert temp_files(gw) == []


def test_short_body_not_stored(gw):
    n = len(gw.access_log_lines())
    try:
        http(gw.port, "GET", "/s/short")
    except Exception:
        pass  # the connection is cut
    gw.wait_access_log(n + 1)
    assert stored(gw, "html/s/short") is None
    assert temp_files(gw) == []


def check(tmp_path, body):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n fastcgi_cache_path %s/c keys_zone=z:1m;\n server {\n"
                    " listen 127.0.0.1:%d;\n location / {\n%s\n }\n }\n}\n"
                    % (tmp_path, tmp_path, 1024 + os.getpid() % 30000, body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("fastcgi_store on; fastcgi_cache z;", '"fastcgi_cache" directive is incompatible with "fastcgi_store"'),
    ("fastcgi_cache z; fastcgi_store on;", '"fastcgi_store" directive is incompatible with "fastcgi_cache"'),
    ("fastcgi_store on; fastcgi_store off;", '"fastcgi_store" directive is duplicate'),
    ("fastcgi_store_access user:x;", 'invalid value "user:x"'),
    ("fastcgi_store_access a b c d;", 'invalid number of arguments in "fastcgi_store_access" directive'),
    ("fastcgi_ignore_client_abort 1;", 'it must be "on" or "off"'),
    ("fastcgi_force_ranges on; fastcgi_force_ranges on;", '"fastcgi_force_ranges" directive is duplicate'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


@pytest.mark.parametrize("body", [
    "fastcgi_store on; fastcgi_store_access group:r all:r;",
    "fastcgi_store /tmp$uri; proxy_cache_valid 1m;",
    "fastcgi_store on; proxy_cache off;",
    "fastcgi_ignore_client_abort on; fastcgi_force_ranges off;",
])
def test_check_accepts_as_nginx(tmp_path, body):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 0, (name, text)
