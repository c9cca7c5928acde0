"""sub_filter (NGINX's ngx_http_sub_filter_module): static files, proxied
bodies and `return` texts through the same config on portvakt and NGINX,
compared on status, header fields (a multiset, Date and Server left out)
and body; a match cut across upstream reads sent with pauses, buffered
and not; sub_filter_once, sub_filter_types, variables in both strings,
the head changes (Content-Length, Last-Modified, ETag); the -t errors.
"""

import os
import re
import socket
import threading
import time

import pytest

from conftest import NGINX, EchoUpstream, Reply, check_conf, free_port, http

CONF = """
http {
    upstream u { server 127.0.0.1:@UP@; }
    sub_filter foo bar;
    server {
        listen 127.0.0.1:@GW@;
        root @ROOT@;
        location /s/ { }
        location /many/ { sub_filter_once off; alias @ROOT@/s/; }
        location /txt/ { sub_filter_types text/plain; alias @ROOT@/s/; }
        location /p/ { proxy_pass http://u; }
        location /pm/ { sub_filter_once off; proxy_pass http://u; }
        location /lm/ { sub_filter_last_modified on; proxy_pass http://u; }
        location /any/ { sub_filter_types *; proxy_pass http://u; }
        location /multi/ {
            sub_filter_once off;
            sub_filter abcd X;
            sub_filter bc Y;
            sub_filter ab Z;
            sub_filter <a A;
            proxy_pass http://u;
        }
        location /multi-once/ {
            sub_filter abcd X;
            sub_filter bc Y;
            sub_filter ab Z;
            proxy_pass http://u;
        }
        location /var/ {
            sub_filter_once off;
            sub_filter $arg_a "[$arg_b]";
            sub_filter ${arg_c}x "<$uri>";
            proxy_pass http://u;
        }
        location /empty-repl/ { sub_filter_once off; sub_filter foo ""; proxy_pass http://u; }
        location = /ret { sub_filter_types text/plain; sub_filter_once off; return 200 "foo and FOO and fo"; }
        location = /e404 { sub_filter "<hr>" "<HR>"; return 404; }
    }
}
"""

HTML = [("Content-Type", "text/html")]
BODY = b"<p>foo FOO Foo</p>foofoo f fo"
LM = "Thu, 01 Jan 2015 00:00:00 GMT"

# (name, path, upstream reply or None, method)
CASES = [
    ("static", "/s/a.html", None),
    ("static-many", "/many/a.html", None),
    ("static-txt-default", "/s/a.txt", None),
    ("static-txt-listed", "/txt/a.txt", None),
    ("static-head", "/s/a.html", None, "HEAD"),
    ("static-empty", "/s/empty.html", None),
    ("static-range", "/s/a.html", None, "GET", [("Range", "bytes=0-3")]),
    ("static-range-txt", "/s/a.txt", None, "GET", [("Range", "bytes=0-3")]),
    ("proxied", "/p/x", Reply(headers=HTML, body=BODY)),
    ("proxied-many", "/pm/x", Reply(headers=HTML, body=BODY)),
    ("proxied-charset", "/pm/x", Reply(headers=[("Content-Type", "Text/HTML; charset=utf-8")], body=BODY)),
    ("proxied-chunked", "/pm/x", Reply(headers=HTML, body=BODY * 50, chunked=True, chunk_size=7)),
    ("proxied-close", "/pm/x", Reply(headers=HTML, body=BODY, no_length=True, close=True)),
    ("proxied-plain", "/p/x", Reply(headers=[("Content-Type", "text/plain")], body=BODY)),
    ("proxied-no-type", "/p/x", Reply(body=BODY)),
    ("any-no-type", "/any/x", Reply(body=BODY)),
    ("any-image", "/any/x", Reply(headers=[("Content-Type", "image/png")], body=BODY)),
    ("validators", "/p/x", Reply(headers=HTML + [("ETag", '"abc"'), ("Last-Modified", LM)], body=BODY)),
    ("validators-kept", "/lm/x", Reply(headers=HTML + [("ETag", '"abc"'), ("Last-Modified", LM)], body=BODY)),
    ("weak-etag-kept", "/lm/x", Reply(headers=HTML + [("ETag", 'W/"abc"')], body=BODY)),
    ("unquoted-etag", "/lm/x", Reply(headers=HTML + [("ETag", "abc")], body=BODY)),
    ("head", "/p/x", Reply(headers=HTML + [("ETag", '"abc"')], body=BODY), "HEAD"),
    ("empty-length", "/p/x", Reply(headers=HTML + [("ETag", '"abc"')], body=b"")),
    ("status-404", "/p/x", Reply(status=404, headers=HTML, body=BODY)),
    ("multi", "/multi/x", Reply(headers=HTML, body=b"abcd abc xab <a <A ABCDbc bcd ab")),
    ("multi-tail", "/multi/x", Reply(headers=HTML, body=b"xy abc")),
    ("multi-once", "/multi-once/x", Reply(headers=HTML, body=b"ab ab bc bc abcd abcd foo")),
    ("var", "/var/x?a=Hello&b=w&c=Q", Reply(headers=HTML, body=b"hello HELLO qx Qx QX heLLo")),
    ("var-empty", "/var/x?b=w", Reply(headers=HTML + [("ETag", '"e"')], body=b"hello x")),
    ("empty-replacement", "/empty-repl/x", Reply(headers=HTML, body=b"afoob FOO")),
    ("return", "/ret", None),
    ("page-404", "/e404", None),
]

TOKEN = re.compile(rb"(nginx|portvakt)(/[0-9][0-9.]*)?")


def _case(c):
    return c[0], c[1], c[2], (c[3] if len(c) > 3 else "GET"), (c[4] if len(c) > 4 else None)


def _seen(r):
    body = TOKEN.sub(b"SERVER", r.body)
    fields = sorted((k.lower(), v) for k, v in r.headers if k.lower() not in ("date", "server", "last-modified")
                    or (k.lower() == "last-modified" and v == LM))
    return r.status, fields, body


def _root(tmp_path):
    root = tmp_path / "root"
    (root / "s").mkdir(parents=True)
    (root / "s" / "a.html").write_bytes(b"foo FOO foofoo\n")
    (root / "s" / "a.txt").write_bytes(b"foo FOO\n")
    (root / "s" / "empty.html").write_bytes(b"")
    for f in (root / "s").iterdir():
        os.utime(str(f), (1420070400, 1420070400))  # both roots' ETags alike
    return str(root)


def _start(factory, port, tmp_path, text=CONF):
    replies = {}
    up = EchoUpstream(handler=lambda req: replies.get(req.target.split("?")[0]))
    gw = factory(text, GW=port(), UP=up.port, ROOT=_root(tmp_path))
    return gw, up, replies


def _ask(gw, replies, case):
    name, path, reply, method, headers = _case(case)
    replies[path.split("?")[0]] = reply
    return http(gw.port, method, path, headers=headers)


# what portvakt must answer on its own, so a filter that does nothing fails
WANT = {
    "static": b"bar FOO foofoo\n",
    "static-many": b"bar bar barbar\n",
    "static-txt-default": b"foo FOO\n",
    "static-txt-listed": b"bar FOO\n",
    "proxied": b"<p>bar FOO Foo</p>foofoo f fo",
    "proxied-many": b"<p>bar bar bar</p>barbar f fo",
    "proxied-plain": BODY,
    "any-no-type": b"<p>bar FOO Foo</p>foofoo f fo",
    "multi": b"X Zc xZ A A XY Yd ab",
    "multi-tail": b"xy abc",
    "multi-once": b"Z ab Y bc X abcd foo",
    "static-range": b"bar FOO foofoo\n",
    "static-range-txt": b"foo ",
    "var": b"[w] [w] </var/x> </var/x> </var/x> [w]",
    "var-empty": b"hello </var/x>",
    "empty-replacement": b"ab ",
    "return": b"bar and bar and fo",
}


def test_sub_filter(portvakt, port, tmp_path):
    gw, up, replies = _start(portvakt, port, tmp_path)
    try:
        for case in CASES:
            name = case[0]
            r = _ask(gw, replies, case)
            if name in WANT:
                assert r.body == WANT[name], (name, r.body)
        r = _ask(gw, replies, ("validators", "/p/x", Reply(headers=HTML + [("ETag", '"abc"'), ("Last-Modified", LM)],
                                                            body=BODY)))
        assert not r.has("Content-Length") and not r.has("ETag") and not r.has("Last-Modified"), r.headers
        r = _ask(gw, replies, ("ranges", "/p/x", Reply(headers=HTML + [("Accept-Ranges", "bytes")], body=BODY)))
        assert not r.has("Accept-Ranges"), r.headers
        r = _ask(gw, replies, ("kept", "/lm/x", Reply(headers=HTML + [("ETag", '"abc"'), ("Last-Modified", LM)],
                                                      body=BODY)))
        assert r.header("ETag") == 'W/"abc"' and r.header("Last-Modified") == LM, r.headers
        r = _ask(gw, replies, ("untouched", "/p/x", Reply(headers=[("Content-Type", "text/plain"), ("ETag", '"e"')],
                                                          body=BODY)))
        assert r.header("Content-Length") == str(len(BODY)) and r.header("ETag") == '"e"', r.headers
        r = _ask(gw, replies, ("head", "/p/x", Reply(headers=HTML + [("ETag", '"abc"')], body=BODY), "HEAD"))
        assert r.status == 200 and not r.has("Content-Length") and not r.has("ETag") and r.body == b""
    finally:
        up.stop()


def test_sub_filter_same_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, up1, rep1 = _start(portvakt, port, tmp_path / "a")
    theirs, up2, rep2 = _start(nginx, port, tmp_path / "b")
    try:
        diffs = []
        for case in CASES:
            a, b = _seen(_ask(ours, rep1, case)), _seen(_ask(theirs, rep2, case))
            if a != b:
                diffs.append((case[0], a, b))
        assert not diffs, "\n".join(map(repr, diffs))
    finally:
        up1.stop()
        up2.stop()


def test_encoded_body_left_alone(portvakt, port, tmp_path):
    """A body with a Content-Encoding is not searched (its bytes are not
    the text); NGINX would search them."""
    gw, up, replies = _start(portvakt, port, tmp_path)
    try:
        r = _ask(gw, replies, ("gz", "/p/x", Reply(headers=HTML + [("Content-Encoding", "x-foo")], body=BODY)))
        assert r.body == BODY and r.header("Content-Length") == str(len(BODY))
    finally:
        up.stop()


# ---------------------------------------------------------------- upstream reads

SLOW_CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        sub_filter_once off;
        sub_filter foobar "[X]";
        sub_filter oba "[Y]";
        location /b/ { proxy_pass http://127.0.0.1:@UP@; }
        location /u/ { proxy_buffering off; proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""

PIECES = [b"<p>fo", b"o", b"ba", b"r x foob", b"ar foo", b"ba", b"rfooba", b"r oba ob", b"a fooba"]


class SlowUpstream:
    """Answers every request with PIECES, each in its own write after a
    pause, chunked or with a Content-Length."""

    def __init__(self, chunked):
        self.chunked = chunked
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            data = b""
            while b"\r\n\r\n" not in data:
                d = c.recv(4096)
                if not d:
                    return
                data += d
            frame = (b"Transfer-Encoding: chunked" if self.chunked
                     else b"Content-Length: %d" % sum(map(len, PIECES)))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n" + frame + b"\r\n\r\n")
            for p in PIECES:
                time.sleep(0.05)
                c.sendall(b"%x\r\n%s\r\n" % (len(p), p) if self.chunked else p)
            if self.chunked:
                c.sendall(b"0\r\n\r\n")

    def stop(self):
        self.sock.close()


SPLIT_WANT = b"<p>[X] x [X] [X][X] [Y] [Y] fooba"


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("where", ["/b/", "/u/"], ids=["buffered", "unbuffered"])
def test_match_across_reads(portvakt, nginx, port, chunked, where):
    up = SlowUpstream(chunked)
    try:
        gw = portvakt(SLOW_CONF, GW=port(), UP=up.port)
        r = http(gw.port, "GET", where + "x")
        assert r.status == 200 and r.body == SPLIT_WANT, r.body
        if os.access(NGINX, os.X_OK):
            ng = nginx(SLOW_CONF, GW=port(), UP=up.port)
            assert http(ng.port, "GET", where + "x").body == SPLIT_WANT
    finally:
        up.stop()


# ---------------------------------------------------------------- -t

@pytest.mark.parametrize("line,words", [
    ('sub_filter "" x;', "empty search pattern"),
    ("sub_filter a;", 'invalid number of arguments in "sub_filter" directive'),
    ("sub_filter_once maybe;", 'invalid value "maybe" in "sub_filter_once" directive'),
    ("sub_filter_last_modified on; sub_filter_last_modified on;", '"sub_filter_last_modified" directive is duplicate'),
    ("sub_filter_types;", 'invalid number of arguments in "sub_filter_types" directive'),
    ("sub_filter $nosuch x;", 'unknown "nosuch" variable'),
    ("sub_filter x $nosuch;", 'unknown "nosuch" variable'),
    ("".join("sub_filter s%d x; " % i for i in range(256)), "number of search patterns exceeds 255"),
    ("server { location / { if ($arg_x) { sub_filter a b; } } }", '"sub_filter" directive is not allowed here'),
])
def test_check_errors(tmp_path, line, words):
    path = tmp_path / "gw.conf"
    path.write_text("events {} http {\n    %s\n}\n" % line)
    out = check_conf(path, tmp_path)
    for name, (rc, text) in out.items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
        # NGINX names no line for a variable it resolves at the end
        assert "%s:2" % path in text or (name == "nginx" and "variable" in words), (name, text)


def test_check_accepts(tmp_path):
    path = tmp_path / "gw.conf"
    # a free port: NGINX's -t binds it, and an ordinary user may not bind port 1
    path.write_text("""events {} http {
    sub_filter a b; sub_filter $arg_x "[$uri]"; sub_filter_types text/css *; sub_filter_once off;
    sub_filter_last_modified on;
    server { listen 127.0.0.1:%d; sub_filter c d; location / { sub_filter_types text/plain; } }
}
""" % free_port())
    for name, (rc, text) in check_conf(path, tmp_path).items():
        assert rc == 0, (name, text)


# ---------------------------------------------------------------- HTTP/2

H2_CONF = """
http {
    upstream u { server 127.0.0.1:@UP@; }
    sub_filter_once off;
    sub_filter foo bar;
    server {
        listen 127.0.0.1:@GW@ http2;
        location /p/ { proxy_pass http://u; }
        location = /ret { sub_filter_types text/plain; return 200 "foo FOO fo"; }
    }
}
"""


def test_http2(portvakt, port):
    pytest.importorskip("h2")
    from test_h2 import H2Client
    up = EchoUpstream(reply=Reply(headers=HTML + [("ETag", '"e"')], body=BODY * 100, chunked=True, chunk_size=5))
    try:
        gw = portvakt(H2_CONF, GW=port(), UP=up.port)
        c = H2Client(gw.port)
        st, hs, body, _ = c.get("/p/x")
        assert st == 200 and body == b"<p>bar bar bar</p>barbar f fo" * 100
        assert "content-length" not in hs and "etag" not in hs, hs
        st, hs, body, _ = c.get("/ret")
        c.close()
        assert st == 200 and body == b"bar bar fo" and "content-length" not in hs, hs
    finally:
        up.stop()
