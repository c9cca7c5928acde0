"""The charset module's recoding (charset_map, source_charset,
override_charset, charset_types, X-Accel-Charset) beside NGINX: static
and proxied bodies, a UTF-8 sequence cut between two upstream reads,
and the -t errors of charset_map's lines.

Every request is made of portvakt and of NGINX on the same config and
files; status, Content-Type, whether Content-Length is sent, its value,
and the body must be the same, and the tests also state what the answer
must be.
"""

import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import NGINX, PORTVAKT, EchoUpstream, Reply, http

CONF = """
http {
    types { text/html html; text/plain txt; application/json json; }
    charset_map koi8-r utf-8 {
        C1 D0B0;   # a
        C2 D0B1;   # b
        D7 D0B2;   # v
        95 E28899; # a three-byte one
    }
    charset_map B A { 58 59; }
    charset_map windows-1251 koi8-r { E0 C1; E1 C2; }
    server {
        listen 127.0.0.1:@GW@;
        root @ROOT@;
        location /k2u/ { charset utf-8; source_charset koi8-r; }
        location /u2k/ { charset koi8-r; source_charset utf-8; }
        location /ab/ { charset A; source_charset B; }
        location /w2k/ { charset koi8-r; source_charset windows-1251; }
        location /types/ { charset utf-8; source_charset koi8-r; charset_types application/json; }
        location /any/ { charset utf-8; source_charset koi8-r; charset_types *; }
        location /var/ { charset $arg_c; source_charset koi8-r; }
        location /off/ { charset off; }
        location /ret/ { charset koi8-r; source_charset utf-8; return 200 "ret \u0430\u20ac\n"; }
        location /ret404/ { charset utf-8; source_charset koi8-r; return 404; }
        location /px/ { charset utf-8; override_charset on; proxy_pass http://127.0.0.1:@UP@; }
        location /pxkeep/ { charset utf-8; proxy_pass http://127.0.0.1:@UP@; }
        location /pxnone/ { charset utf-8; source_charset koi8-r; proxy_pass http://127.0.0.1:@UP@; }
        location /pxrange/ {
            charset utf-8; source_charset koi8-r;
            proxy_force_ranges on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /pxrangeab/ {
            charset A; source_charset B;
            proxy_force_ranges on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /pxign/ {
            charset utf-8; source_charset koi8-r;
            proxy_ignore_headers X-Accel-Charset;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /split/ {
            charset koi8-r; source_charset utf-8;
            proxy_buffering off;
            proxy_pass http://127.0.0.1:@SPLIT@;
        }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name srv.test;
        charset koi8-r;
        source_charset utf-8;
        return 200 "srv \u0430\n";
    }
}
"""

KOI = b"plain \xc1\xc2\xd7 \x95 \xff end\n"
UTF = ("a\u0430\u0431 \u2219 \u0432 \u20ac \U0001F600 ".encode() + b"\xff \xc3A \xe2\x88 z\n")
FILES = {
    "k2u/t.html": KOI, "k2u/t.json": KOI, "u2k/t.html": UTF, "ab/t.html": b"XXaX" * 50,
    "w2k/t.txt": b"\xe0\xe1\xe2", "types/t.json": KOI, "types/t.html": KOI, "any/t.bin": KOI,
    "var/t.html": KOI, "off/t.html": KOI,
    "k2u/big.html": bytes(range(256)) * 12289,  # 3 MB: many reads, the buffer reused
}

K2U = {0xC1: "\u0430", 0xC2: "\u0431", 0xD7: "\u0432", 0x95: "\u2219"}


def upstream_answer(req):
    path = req.target.split("?")[0]
    if path.endswith("/own"):  # names its charset
        return Reply(headers=[("Content-Type", "text/html; charset=koi8-r")], body=KOI)
    if path.endswith("/big"):
        return Reply(headers=[("Content-Type", "text/html")], body=bytes(range(256)) * 12289)
    if path.endswith("/accel"):  # names the charset to recode into
        return Reply(headers=[("Content-Type", "text/html"), ("X-Accel-Charset", "utf-8")], body=KOI)
    return Reply(headers=[("Content-Type", "text/html")], body=KOI)


class SplitUpstream:
    """Answers every request with a UTF-8 body sent in three writes, each
    cutting a multi-byte sequence (the pause lets each arrive alone)."""

    PARTS = [b"one \xd0", b"\xb0 two \xe2\x88", b"\x99 \xf0\x9f\x98\x80 three\n"]

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                data = b""
                while b"\r\n\r\n" not in data:
                    got = c.recv(4096)
                    if not got:
                        break
                    data += got
                body = b"".join(self.PARTS)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                          b"Connection: close\r\n\r\n" % len(body))
                for p in self.PARTS:
                    c.sendall(p)
                    time.sleep(0.1)

    def stop(self):
        self.sock.close()


def start(factory, port, root):
    up = EchoUpstream(handler=upstream_answer)
    split = SplitUpstream()
    gw = factory(CONF, GW=port(), UP=up.port, SPLIT=split.port, ROOT=root)
    return gw, up, split


def observe(gw, target):
    host = "localhost"
    if not target.startswith("/"):
        host, target = target.split("/", 1)
        target = "/" + target
    r = http(gw.port, "GET", target, host=host)
    return (r.status, r.header("Content-Type"), r.header("Content-Length"), r.body)


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "www"
    for name, data in FILES.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    return str(d)


@pytest.fixture
def cs(portvakt, port, root):
    gw, up, split = start(portvakt, port, root)
    yield gw
    up.stop()
    split.stop()


KOI_AS_UTF = "plain \u0430\u0431\u0432 \u2219 ? end\n".encode()

# target: (Content-Type, Content-Length, body); None: no Content-Length
WANT = {
    "/k2u/t.html": ("text/html; charset=utf-8", None, KOI_AS_UTF),
    "/k2u/t.json": ("application/json", str(len(KOI)), KOI),
    "/u2k/t.html": ("text/html; charset=koi8-r", None,
                    # \xff leads a four-byte form: the space after it goes with it
                    b"a\xc1\xc2 \x95 \xd7 &#8364; &#128512; ?? ?z\n"),
    "/ab/t.html": ("text/html; charset=A", "200", b"YYaY" * 50),
    "/w2k/t.txt": ("text/plain; charset=koi8-r", "3", b"\xc1\xc2?"),
    "/types/t.json": ("application/json; charset=utf-8", None, KOI_AS_UTF),
    "/types/t.html": ("text/html; charset=utf-8", None, KOI_AS_UTF),  # text/html stays listed
    "/any/t.bin": ("text/plain; charset=utf-8", None, KOI_AS_UTF),
    "/var/t.html?c=utf-8": ("text/html; charset=utf-8", None, KOI_AS_UTF),
    "/var/t.html?c=koi8-r": ("text/html; charset=koi8-r", str(len(KOI)), KOI),
    "/var/t.html?c=latin1": ("text/html", str(len(KOI)), KOI),
    "/off/t.html": ("text/html", str(len(KOI)), KOI),
    "/px/own": ("text/html; charset=utf-8", None, KOI_AS_UTF),
    "/pxkeep/own": ("text/html; charset=koi8-r", str(len(KOI)), KOI),
    "/pxnone/x": ("text/html; charset=utf-8", None, KOI_AS_UTF),
    "/pxnone/accel": ("text/html; charset=utf-8", None, KOI_AS_UTF),
    "/pxign/accel": ("text/html; charset=utf-8", None, KOI_AS_UTF),
    "srv.test/": ("text/plain; charset=koi8-r", None, b"srv \xc1\n"),
    "/ret/x": ("text/plain; charset=koi8-r", None, b"ret \xc1&#8364;\n"),
    "/split/x": ("text/html; charset=koi8-r", None, b"one \xc1 two \x95 &#128512; three\n"),
}


@pytest.mark.parametrize("target", sorted(WANT))
def test_recoding(cs, target):
    status, ct, cl, body = observe(cs, target)
    assert (status, ct, cl, body) == (200,) + WANT[target]


def test_big_body_recoded_whole(cs):
    table = [bytes([b]) if b < 0x80 else K2U.get(b, "?").encode() for b in range(256)]
    want = b"".join(table) * 12289
    for target in ("/k2u/big.html", "/pxnone/big"):
        r = http(cs.port, "GET", target, timeout=30)
        assert (r.status, r.header("Content-Length"), len(r.body), r.body == want) == (200, None, len(want), True)


def test_head_has_no_length_when_recoded(cs):
    r = http(cs.port, "HEAD", "/k2u/t.html")
    assert (r.status, r.header("Content-Length"), r.body) == (200, None, b"")
    r = http(cs.port, "HEAD", "/ab/t.html")
    assert r.header("Content-Length") == "200"


def test_ranges_only_without_utf8(cs, nginx, port, root):
    cases = [("/ab/t.html", 206, b"YYaY"), ("/k2u/t.html", 200, KOI_AS_UTF),
             ("/pxrange/x", 200, KOI_AS_UTF), ("/pxrangeab/x", 206, b"plai")]
    servers = [cs]
    if os.access(NGINX, os.X_OK):
        theirs = start(nginx, port, root)
        servers.append(theirs[0])
    try:
        for gw in servers:
            for target, status, body in cases:
                r = http(gw.port, "GET", target, headers=[("Range", "bytes=0-3")])
                assert (r.status, r.body) == (status, body), (gw, target)
    finally:
        if len(servers) > 1:
            theirs[0].stop(), theirs[1].stop(), theirs[2].stop()


def test_same_answers_as_nginx(portvakt, nginx, port, root):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, theirs = start(portvakt, port, root), start(nginx, port, root)
    diffs = []
    try:
        for target in sorted(WANT) + ["/ab/t.html?r"]:
            a, b = observe(ours[0], target), observe(theirs[0], target)
            if a != b:
                diffs.append((target, a, b))
    finally:
        for s in (ours, theirs):
            s[0].stop(), s[1].stop(), s[2].stop()
    assert not diffs, "\n".join("%s\n  portvakt %r\n  nginx    %r" % d for d in diffs)


# ---- -t errors: NGINX's words and FILE:LINE ----

def run_t(binary, path):
    p = subprocess.run([binary, "-t", "-c", str(path)] + (["-p", str(path.parent)] if binary == NGINX else []),
                       capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode()


BAD = [
    ("charset_map koi8-r utf-8 {\n  C1 ZZ;\n}", 'invalid value "ZZ" in {F}:3'),
    ("charset_map koi8-r utf-8 {\n  C1;\n}", "invalid parameters number in {F}:3"),
    ("charset_map koi8-r utf-8 {\n  100 D0B0;\n}", 'invalid value "100" in {F}:3'),
    # NGINX 1.22 takes this one (and overruns its table); later NGINX refuses it
    ("charset_map koi8-r utf-8 {\n  C1 D0B0D0B1;\n}", 'invalid value "D0B0D0B1" in {F}:3'),
    ("charset_map koi8-r utf-8 {\n  C1 41;\n}", 'invalid value "41" in {F}:3'),
    ("charset_map koi8-r utf-8 {\n  C1 D0B;\n}", 'invalid value "D0B" in {F}:3'),
    ("charset_map B A {\n  58 159;\n}", 'invalid value "159" in {F}:3'),
    ("charset_map B b { }", '"charset_map" between the same charsets "B" and "b" in {F}:2'),
    ("charset_map B A { }\ncharset_map A B { }", 'duplicate "charset_map" between "A" and "B" in {F}:3'),
    ("server { charset_map B A { } }", '"charset_map" directive is not allowed here in {F}:2'),
    ("charset utf-8; charset koi8-r;", '"charset" directive is duplicate in {F}:2'),
    ("override_charset maybe;", 'invalid value "maybe" in "override_charset" directive'),
    ("charset utf-8; source_charset koi8-r; server { listen 127.0.0.1:1; }",
     'no "charset_map" between the charsets "koi8-r" and "utf-8"'),
]


@pytest.mark.parametrize("body,words", BAD)
def test_config_errors(tmp_path, body, words):
    path = tmp_path / "gw.conf"
    path.write_text("http {\n%s\n}\n" % body)
    rc, out = run_t(PORTVAKT, path)
    assert rc != 0 and words.replace("{F}", str(path)) in out, out
    if os.access(NGINX, os.X_OK):
        npath = tmp_path / "nginx.conf"
        npath.write_text("events {}\n" + path.read_text().replace("http {\n", "http {\n", 1))
        rc, nout = run_t(NGINX, npath)
        # NGINX's words are the same (its file is one line further down, for `events`)
        want = words.split(" in {F}")[0]
        if "D0B0D0B1" not in body:
            assert rc != 0 and want in nout, nout


def test_map_from_utf8_refused(tmp_path):
    path = tmp_path / "gw.conf"
    path.write_text("http {\ncharset_map utf-8 koi8-r { D0B0 C1; }\n}\n")
    rc, out = run_t(PORTVAKT, path)
    assert rc != 0 and 'a "charset_map" from "utf-8" is not supported' in out and ":2" in out, out


def test_config_accepted(tmp_path):
    path = tmp_path / "gw.conf"
    path.write_text("http {\ncharset_map koi8-r UTF-8 { c1 d0b0; 0C2 D0B1; }\n"
                    "charset koi8-r; source_charset utf-8; charset_types *;\n"
                    "server { listen 127.0.0.1:1; location / { charset $arg_c; source_charset $arg_s;"
                    " override_charset on; } }\n}\n")
    rc, out = run_t(PORTVAKT, path)
    assert rc == 0, out


def test_error_page_labelled_and_recoded(cs, nginx, port, root):
    """An error page gets the charset and, recoded to utf-8, loses its
    Content-Length, as NGINX's does."""
    want = (404, "text/html; charset=utf-8", None)
    assert observe(cs, "/ret404/x")[:3] == want
    if os.access(NGINX, os.X_OK):
        theirs = start(nginx, port, root)
        try:
            assert observe(theirs[0], "/ret404/x")[:3] == want
        finally:
            theirs[0].stop(), theirs[1].stop(), theirs[2].stop()


def h2_get(port, path):
    """One GET over HTTP/2 (prior knowledge): (headers, body)."""
    import h2.config
    import h2.connection
    import h2.events
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                            (":authority", "localhost")], end_stream=True)
    s.sendall(conn.data_to_send())
    headers, body, done = {}, b"", False
    while not done:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                headers = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
        s.sendall(conn.data_to_send())
    s.close()
    return headers, body


def test_http2_recoded(portvakt, port, root):
    pytest.importorskip("h2")
    conf = CONF.replace("listen 127.0.0.1:@GW@;", "listen 127.0.0.1:@GW@ http2;")
    up, split = EchoUpstream(handler=upstream_answer), SplitUpstream()
    try:
        gw = portvakt(conf, GW=port(), UP=up.port, SPLIT=split.port, ROOT=root)
        for target in ("/k2u/t.html", "/u2k/t.html", "/ab/t.html", "/px/own", "/ret/x"):
            headers, body = h2_get(gw.port, target)
            ct, cl, want = WANT[target]
            assert (headers.get(":status"), headers.get("content-type"), headers.get("content-length"), body) == (
                "200", ct, cl, want), target
    finally:
        up.stop(), split.stop()


def raw_answer(port, target):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target.encode())
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    return data


def test_charset_variable_not_found_answers_nothing(cs, nginx, port, root):
    """`charset $arg_c` without the argument: NGINX's filter fails and the
    connection closes with nothing sent; with it empty, no charset."""
    servers = [cs]
    if os.access(NGINX, os.X_OK):
        theirs = start(nginx, port, root)
        servers.append(theirs[0])
    try:
        for gw in servers:
            assert raw_answer(gw.port, "/var/t.html") == b""
            assert observe(gw, "/var/t.html?c=")[:3] == (200, "text/html", str(len(KOI)))
    finally:
        if len(servers) > 1:
            theirs[0].stop(), theirs[1].stop(), theirs[2].stop()
