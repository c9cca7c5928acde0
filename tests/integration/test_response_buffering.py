"""Response buffering as NGINX does it (proxy_buffering, proxy_buffers,
proxy_buffer_size, proxy_busy_buffers_size, proxy_max_temp_file_size,
proxy_temp_file_write_size, X-Accel-Buffering): a slow client does not
hold the upstream connection, the response it has not taken waits in
memory and then in a temp file that is gone afterwards. Compared with
NGINX."""

import os
import socket
import threading
import time

import pytest

from conftest import NGINX, Client, Reply, check_conf, fd_links, free_port, http, wait_for

BIG = 16 << 20  # more than loopback socket buffers can hide

CONF = """
error_log stderr warn;
http {
    proxy_temp_path @DIR@/proxy 1;
    upstream up { server 127.0.0.1:@UP@; keepalive 1; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { proxy_pass http://up; }
        location /off/ { proxy_buffering off; proxy_pass http://up; }
        location /mem/ { proxy_max_temp_file_size 0; proxy_pass http://up; }
        location /head/ { proxy_buffer_size 1k; proxy_pass http://up; }
        location /ign/ { proxy_ignore_headers X-Accel-Buffering; proxy_pass http://up; }
    }
}
"""


class BigUpstream:
    """Keepalive HTTP/1.1 upstream answering every request with `size`
    bytes (10 for a target with "small"; "accel-no" adds X-Accel-Buffering:
    no, "bighead" a 2 KiB field, "chunked" sends the body chunked);
    records (connection, target) per request and the connections whose
    last answer was written whole."""

    def __init__(self, size):
        self.size = size
        self.seen = []
        self.done = set()
        self.closed = set()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, c, cid):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        with self.lock:
                            self.closed.add(cid)
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                target = head.split(b" ")[1].decode()
                with self.lock:
                    self.seen.append((cid, target))
                extra = b""
                if "accel-no" in target:
                    extra += b"X-Accel-Buffering: no\r\n"
                if "bighead" in target:
                    extra += b"X-Big: " + b"h" * 2048 + b"\r\n"
                size = 10 if "small" in target else self.size
                block = bytes(range(97, 123)) * 2521  # 65546 bytes: a pattern that shows misordering
                if "chunked" in target:
                    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n" % extra)
                else:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (size, extra))
                left = size
                while left:
                    part = block[:min(left, len(block))]
                    c.sendall(b"%x\r\n%s\r\n" % (len(part), part) if "chunked" in target else part)
                    left -= len(part)
                if "chunked" in target:
                    c.sendall(b"0\r\n\r\n")
                with self.lock:
                    self.done.add(cid)
        except OSError:
            return

    def stop(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def expected(size):
    block = bytes(range(97, 123)) * 2521
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = BigUpstream(BIG)
    d = tmp_path / ("t-" + request.param)
    d.mkdir()
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port, DIR=str(d))
    g.up, g.dir, g.kind = up, d, request.param
    yield g
    up.stop()


def slow_client(gw, target):
    """A client that sends its request and reads (almost) nothing. (Its
    receive buffer keeps the kernel's default: one made small before the
    connect keeps the window small for good, and reading the rest later
    would crawl at the persist timer's pace.)"""
    c = Client(gw.port, timeout=60)
    c.request("GET", target)
    c.sock.recv(10)
    return c


def served_again_on(gw, cid):
    """Small requests on other clients until upstream connection cid is
    seen released: a request reaches it (the pool took it back), or the
    gateway closes it (the pool keeps one idle connection, so one released
    while a small request was in flight is the older one, and goes). The
    gateway may still be reading the last megabytes the upstream wrote.
    True, or False after 30 s."""
    deadline = time.monotonic() + 30
    i = 0
    while time.monotonic() < deadline:
        i += 1
        r = http(gw.port, "GET", "/small%d" % i, timeout=30)
        assert r.status == 200 and r.body == expected(10)
        with gw.up.lock:
            if gw.up.seen[-1][0] == cid or cid in gw.up.closed:
                return True
        time.sleep(0.05)
    return False


def absorbed(gw, target):
    """A slow client's request; returns (client, upstream connection) once
    the upstream has written the whole response (the gateway read it all
    while the client read nearly nothing)."""
    c = slow_client(gw, target)
    wait_for(lambda: len(gw.up.seen) == 1, what="upstream request")
    cid = gw.up.seen[0][0]
    wait_for(lambda: cid in gw.up.done, timeout=60, what="the whole response read from the upstream")
    return c, cid


def dechunk(body):
    out, at = bytearray(), 0
    while True:
        eol = body.index(b"\r\n", at)
        n = int(body[at:eol], 16)
        if n == 0:
            return bytes(out)
        out += body[eol + 2:eol + 2 + n]
        at = eol + 2 + n + 2


def read_rest(c, size):
    """The rest of the response on a slow client's socket: its head and
    body (the chunked coding taken off)."""
    data = bytearray()
    c.sock.settimeout(60)
    while True:
        if b"\r\n\r\n" in data:
            head, body = bytes(data).split(b"\r\n\r\n", 1)
            chunked = b"transfer-encoding: chunked" in head.lower()
            if chunked and body.endswith(b"\r\n0\r\n\r\n"):
                return head, dechunk(body)
            if not chunked and len(body) >= size:
                return head, body
        d = c.sock.recv(1 << 20)
        if not d:
            return bytes(data).split(b"\r\n\r\n", 1)
        data += d


def temp_files(d):
    return [os.path.join(r, f) for r, _, fs in os.walk(str(d / "proxy")) for f in fs]


def held_upstream(gw, target):
    """The upstream connection stays with a slow client: other requests
    go on other connections."""
    c = slow_client(gw, target)
    wait_for(lambda: len(gw.up.seen) == 1, what="upstream request")
    cid = gw.up.seen[0][0]
    for i in range(3):
        assert http(gw.port, "GET", "/small%d" % i, timeout=30).status == 200
    with gw.up.lock:
        assert all(s[0] != cid for s in gw.up.seen[1:])
        assert cid not in gw.up.done and cid not in gw.up.closed
    return c


@pytest.mark.parametrize("where", ["/slow", "/chunked-slow", "/ign/accel-no"])
def test_slow_client_releases_the_upstream(gw, where):
    """The response is absorbed (memory, then a temp file) and the
    connection goes back to the pool while the client still reads; the
    client then gets every byte in order."""
    c, cid = absorbed(gw, where)
    assert served_again_on(gw, cid), gw.up.seen[:5]
    head, body = read_rest(c, BIG)
    assert body == expected(BIG)
    c.close()


def test_temp_file_used_and_removed(gw):
    c, cid = absorbed(gw, "/slow")
    # NGINX's warning names the file under proxy_temp_path (levels 1)
    wait_for(lambda: "buffered to a temporary file" in gw.stderr(), what="the warning")
    warn = [l for l in gw.stderr().splitlines() if "an upstream response is buffered to a temporary file" in l]
    assert len(warn) == 1, gw.stderr()
    assert str(gw.dir / "proxy") + "/" in warn[0]
    assert "while reading upstream" in warn[0]
    if gw.kind == "portvakt":
        # open, and already gone from the directory
        links = fd_links(gw.pid).values()
        assert any(l.startswith(str(gw.dir / "proxy")) and l.endswith("(deleted)") for l in links), links
    head, body = read_rest(c, BIG)
    assert body == expected(BIG)
    c.close()
    assert temp_files(gw.dir) == []
    if gw.kind == "portvakt":
        def file_closed():
            links = fd_links(gw.pid).values()
            return not any(l.startswith(str(gw.dir / "proxy")) for l in links)
        wait_for(file_closed, what="the temp file closed")


def test_buffering_off_holds_the_upstream(gw):
    held_upstream(gw, "/off/slow").close()


def test_x_accel_buffering_no_holds_the_upstream(gw):
    held_upstream(gw, "/accel-no/slow").close()


def test_no_temp_file_holds_the_upstream(gw):
    """proxy_max_temp_file_size 0: only proxy_buffers of memory, then the
    client's pace again; the response still arrives whole."""
    c = held_upstream(gw, "/mem/slow")
    head, body = read_rest(c, BIG)
    assert body == expected(BIG)
    c.close()
    assert "buffered to a temporary file" not in gw.stderr()


def test_head_over_proxy_buffer_size_is_502(gw):
    r = http(gw.port, "GET", "/head/bighead", timeout=30)
    assert r.status == 502
    wait_for(lambda: "upstream sent too big header" in gw.stderr(), what="the error log line")
    r = http(gw.port, "GET", "/bighead-small", timeout=30)  # 2 KiB fits the default 4k
    assert r.status == 200


def check(tmp_path, body):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n listen 127.0.0.1:%d;\n location / {\n%s\n }\n }\n}\n"
                    % (tmp_path, free_port(), body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("proxy_buffering x;", 'it must be "on" or "off"'),
    ("proxy_buffers 1 4k;", 'there must be at least 2 "proxy_buffers"'),
    ("proxy_buffers 0 4k;", '"proxy_buffers" directive invalid value'),
    ("proxy_buffers 8 x;", '"proxy_buffers" directive invalid value'),
    ("proxy_buffers 8 4k; proxy_buffers 8 4k;", '"proxy_buffers" directive is duplicate'),
    ("proxy_busy_buffers_size 2k;",
     '"proxy_busy_buffers_size" must be equal to or greater than the maximum of the value of '
     '"proxy_buffer_size" and one of the "proxy_buffers"'),
    ("proxy_busy_buffers_size 64k;",
     '"proxy_busy_buffers_size" must be less than the size of all "proxy_buffers" minus one buffer'),
    ("proxy_buffers 2 4k;",
     '"proxy_busy_buffers_size" must be less than the size of all "proxy_buffers" minus one buffer'),
    ("proxy_temp_file_write_size 1k;",
     '"proxy_temp_file_write_size" must be equal to or greater than the maximum of the value of '
     '"proxy_buffer_size" and one of the "proxy_buffers"'),
    ("proxy_max_temp_file_size 1k;",
     '"proxy_max_temp_file_size" must be equal to zero to disable temporary files usage or must be '
     'equal to or greater than the maximum of the value of "proxy_buffer_size" and one of the '
     '"proxy_buffers"'),
    ("proxy_buffer_size x;", '"proxy_buffer_size" directive invalid value'),
    ("proxy_ignore_client_abort maybe;", 'it must be "on" or "off"'),
    ("limit_rate x;", '"limit_rate" directive invalid value'),
    ("limit_rate_after 1q;", '"limit_rate_after" directive invalid value'),
    ("limit_rate 1k; limit_rate 2k;", '"limit_rate" directive is duplicate'),
    ("proxy_limit_rate 1q;", '"proxy_limit_rate" directive invalid value'),
    ("proxy_limit_rate $arg_r;", '"proxy_limit_rate" directive invalid value'),
    ("proxy_limit_rate 1k; proxy_limit_rate 1k;", '"proxy_limit_rate" directive is duplicate'),
    ("proxy_limit_rate;", 'invalid number of arguments in "proxy_limit_rate" directive'),
    ("if ($arg_a) { proxy_limit_rate 1k; }", '"proxy_limit_rate" directive is not allowed here'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


@pytest.mark.parametrize("body", [
    "proxy_buffers 16 16k; proxy_buffer_size 32k;",
    "proxy_buffer_size 128k; proxy_buffers 4 256k; proxy_busy_buffers_size 256k;",
    "proxy_max_temp_file_size 0; proxy_buffering off; proxy_temp_file_write_size 64k;",
    "limit_rate 10k; limit_rate_after 1m; proxy_ignore_client_abort on;",
    "proxy_limit_rate 0; proxy_buffering on;",
    "proxy_limit_rate 512k;",
    "limit_rate $arg_r; limit_rate_after $arg_a; if ($arg_x) { limit_rate 1k; }",
])
def test_check_accepts_as_nginx(tmp_path, body):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 0, (name, text)


ABORT_CONF = """
http {
    log_format st "$uri $status $body_bytes_sent $upstream_status";
    access_log /dev/stdout st;
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { proxy_pass http://up; }
        location /ignore { proxy_ignore_client_abort on; proxy_pass http://up; }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def agw(request, portvakt, nginx, upstream, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream(handler=lambda req: Reply(200, body=b"late", delay=0.5 if "slow" in req.target else 0))
    g = (portvakt if request.param == "portvakt" else nginx)(ABORT_CONF, GW=port(), UP=up.port)
    g.up = up
    return g


def abandon(agw, target, n):
    """Send target on a new connection and close it once the upstream has
    the request, before the answer; return the request's log line."""
    c = Client(agw.port)
    c.request("GET", target)
    agw.up.wait_heads(n)
    c.close()
    return wait_for(lambda: [l for l in agw.access_log_lines() if l.startswith(target + " ")],
                    15, what="the log line of " + target)[0].split()


@pytest.mark.parametrize("where,kept", [("/slow", False), ("/ignore/slow", True)])
def test_client_abort(agw, where, kept):
    """A client gone before the answer: by default the upstream connection
    is closed with it and the request logged with 499, no body bytes and
    no upstream status, as NGINX; with proxy_ignore_client_abort on the
    exchange runs to its end (logged with the upstream's status) and the
    connection goes back to the pool."""
    line = abandon(agw, where, 1)
    if kept:
        assert line[1] == "200" and line[3] == "200", line
    else:
        assert line[1:] == ["499", "0", "-"], line
        wait_for(lambda: agw.up.open_connections == 0, what="the upstream connection closed")
    r = http(agw.port, "GET", "/next", timeout=30)
    assert r.status == 200
    reqs = agw.up.wait_requests(2)
    assert (reqs[1].conn_id == reqs[0].conn_id) == kept


def test_client_abort_ignored_in_a_row(agw):
    """proxy_ignore_client_abort on: requests abandoned one after another
    each run to their end on the one keepalive upstream connection, each
    seen once by the upstream, and a request after them is answered on it
    too (one abandoned exchange used to leave a request that followed
    without its end)."""
    n = 4
    for i in range(n):
        line = abandon(agw, "/ignore/slow%d" % i, i + 1)
        assert line[1] == "200" and line[3] == "200", line
    r = http(agw.port, "GET", "/next", timeout=30)
    assert r.status == 200 and r.body == b"late"
    reqs = agw.up.wait_requests(n + 1)
    assert [q.target for q in reqs] == ["/ignore/slow%d" % i for i in range(n)] + ["/next"]
    assert {q.conn_id for q in reqs} == {reqs[0].conn_id}
    assert agw.up.connections == 1


def test_client_abort_in_a_row_logged_499(agw):
    """Without it, each request abandoned before the answer closes its
    upstream connection and is logged with 499, as NGINX logs it."""
    n = 3
    for i in range(n):
        line = abandon(agw, "/slow%d" % i, i + 1)
        assert line[1:] == ["499", "0", "-"], line
    wait_for(lambda: agw.up.open_connections == 0, what="the upstream connections closed")
    reqs = agw.up.wait_requests(n)
    assert len({q.conn_id for q in reqs}) == n
