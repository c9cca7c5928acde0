"""HTTP/1.1 message framing on the client side (RFC 9112) and how bodies
flow through the proxy.

Everything here was checked against NGINX 1.22 (PV_TARGET=nginx) except the
tests marked portvakt_only, where portvakt is deliberately stricter.
"""

import hashlib
import threading
import time

import pytest

from conftest import Client, Reply, gen_sha256, http, raw, rss_kb

CONF = """
http {
    client_max_body_size 1k;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
    upstream up { server 127.0.0.1:@UP@; keepalive 8; }
    server {
        listen 127.0.0.1:@GW@;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Host $host;
        }
        location /big/ {
            client_max_body_size 0;
            proxy_request_buffering off;
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


@pytest.fixture
def gw(gateway, upstream, port):
    up = upstream()
    g = gateway(CONF, UP=up.port, GW=port())
    g.up = up
    return g


def reject(gw, data, status=400):
    """Send data; expect `status`, the connection closed, nothing upstream."""
    r, closed = raw(gw.port, data)
    assert r.status == status, r
    assert closed, "connection left open after %d" % status
    time.sleep(0.05)
    assert gw.up.requests == [], gw.up.requests


H = b"Host: x\r\n"

BAD_400 = {
    "cl_and_te": b"POST / HTTP/1.1\r\n" + H +
                 b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "differing_cl": b"POST / HTTP/1.1\r\n" + H +
                    b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "duplicate_cl": b"POST / HTTP/1.1\r\n" + H +
                    b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "cl_list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc",
    "cl_not_a_number": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n",
    "cl_negative": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "cl_plus_sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
    "te_on_http10": b"POST / HTTP/1.0\r\n" + H +
                    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n",
    "header_without_colon": b"GET / HTTP/1.1\r\n" + H + b"X-A a\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\n" + H + b"X-A : a\r\n\r\n",
    "empty_header_name": b"GET / HTTP/1.1\r\n" + H + b": a\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n",
    "bad_chunk_size": b"POST / HTTP/1.1\r\n" + H +
                      b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk_data_overrun": b"POST / HTTP/1.1\r\n" + H +
                          b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    "missing_host_http11": b"GET / HTTP/1.1\r\n\r\n",
    "duplicate_host": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "invalid_host": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "lowercase_method": b"get / HTTP/1.1\r\n" + H + b"\r\n",
    "connect_method": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_400))
def test_malformed_request_is_400_and_closed(gw, name):
    reject(gw, BAD_400[name])


@pytest.mark.parametrize("te", [b"gzip", b"gzip, chunked", b"chunked, gzip", b"foo"])
def test_unknown_transfer_coding_is_501(gw, te):
    reject(gw, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: " + te + b"\r\n\r\n", 501)


def test_unsupported_http_version_is_505(gw):
    reject(gw, b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505)


# RFC 9112 2.2: a recipient may take a bare LF as a line end; NGINX does,
# in the request line, the fields and the blank line ending the head
@pytest.mark.parametrize("data", [
    b"GET /lf HTTP/1.1\nHost: x\nX-A: b\n\n",
    b"GET /lf HTTP/1.1\nHost: x\r\nX-A: b\r\n\r\n",
    b"GET /lf HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    b"GET /lf HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\n",
    b"GET /lf HTTP/1.1\nHost: x\r\nX-A: b\n\r\n",
], ids=["all_lf", "line_lf", "one_field_lf", "final_lf", "mixed"])
def test_bare_lf_is_a_line_end(gw, data):
    r, _ = raw(gw.port, data)
    assert r.status == 200, r
    q = gw.up.last()
    assert q.target == "/lf"
    assert ["X-A", "b"] in [list(h) for h in q.headers], q.headers


# bare CR and obs-fold stay refused, with bare LF line ends too (NGINX
# refuses them as well)
@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\rHost: x\n\n",
    b"GET / HTTP/1.1\nHost: x\nX-A: a\rb\n\n",
    b"GET / HTTP/1.1\nHost: x\nX-A: a\n b\n\n",
    b"GET / HTTP/1.1\nHost: x\nX-A: a\n\tb\n\n",
], ids=["cr_line", "cr_value", "fold_space", "fold_tab"])
def test_bare_cr_and_obs_fold_with_lf_are_rejected(gw, data):
    reject(gw, data)


@pytest.mark.portvakt_only("NGINX passes control characters other than NUL, CR and LF")
@pytest.mark.parametrize("ctl", [b"\x01", b"\x1b", b"\x7f"], ids=["soh", "esc", "del"])
def test_control_character_in_field_value_is_rejected(gw, ctl):
    reject(gw, b"GET / HTTP/1.1\r\n" + H + b"X-A: a" + ctl + b"b\r\n\r\n")


def test_http10_without_host_is_fine(gw):
    r, closed = raw(gw.port, b"GET /v10 HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert closed
    assert gw.up.last().target == "/v10"


def test_chunk_extensions_are_accepted(gw):
    r, _ = raw(gw.port, b"POST /ext HTTP/1.1\r\n" + H + b"Connection: close\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n0\r\n\r\n")
    assert r.status == 200
    assert gw.up.last().body == b"abc"


def test_transfer_coding_name_is_case_insensitive(gw):
    r, _ = raw(gw.port, b"POST /ci HTTP/1.1\r\n" + H + b"Connection: close\r\n"
               b"Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert r.status == 200
    assert gw.up.last().body == b"abc"


def test_request_line_too_long_is_414(gw):
    reject(gw, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414)


@pytest.mark.portvakt_only("NGINX answers 400 for too-large header fields; RFC 6585 has 431")
def test_header_field_too_long_is_431(gw):
    reject(gw, b"GET / HTTP/1.1\r\n" + H + b"X-A: " + b"a" * 9000 + b"\r\n\r\n", 431)


@pytest.mark.portvakt_only("NGINX answers 400 for too-large header blocks; RFC 6585 has 431")
def test_header_block_too_large_is_431(gw):
    many = b"".join(b"X-%d: %s\r\n" % (i, b"a" * 4000) for i in range(10))
    reject(gw, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n", 431)


def test_headers_within_limits_pass(gw):
    # 4 fields of 4000 bytes fit in large_client_header_buffers 4 8k.
    many = [("X-%d" % i, "b" * 4000) for i in range(4)]
    r = http(gw.port, "GET", "/fits", headers=many)
    assert r.status == 200
    assert gw.up.last().header("X-3") == "b" * 4000


def test_body_over_client_max_body_size_is_413(gw):
    with Client(gw.port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        assert r.header("Connection") == "close"
    assert gw.up.requests == []


def test_chunked_body_over_client_max_body_size_is_413(gw):
    reject(gw, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n7d0\r\n"
           + b"a" * 2000 + b"\r\n0\r\n\r\n", 413)


def test_body_at_the_limit_passes(gw):
    r = http(gw.port, "POST", "/limit", body=b"z" * 1024)
    assert r.status == 200
    assert gw.up.last().body_len == 1024


def test_pipelined_requests(gw):
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
    reqs += b"POST /p3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    reqs += b"GET /p4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with Client(gw.port) as c:
        c.send(reqs)
        targets = [c.read_response().json()["target"] for _ in range(5)]
        assert c.closed()
    assert targets == ["/p0", "/p1", "/p2", "/p3", "/p4"]
    assert [r.target for r in gw.up.requests] == targets
    assert gw.up.requests[3].body == b"hello"


def test_head_has_no_body_and_keeps_connection(gw):
    gw.up.reply = Reply(200, headers=[("Content-Type", "text/plain")], body=b"x" * 100)
    with Client(gw.port) as c:
        c.request("HEAD", "/h")
        r = c.read_response("HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == "100"
        assert r.body == b""
        c.request("GET", "/g")
        r = c.read_response()
        assert r.body == b"x" * 100
    assert [q.method for q in gw.up.requests] == ["HEAD", "GET"]


def test_http10_client(gw):
    gw.up.reply = Reply(200, body=b"abc", chunked=True)
    with Client(gw.port) as c:
        c.request("GET", "/old", version="HTTP/1.0")
        r = c.read_response()
        assert r.status == 200
        # A 1.0 client cannot take chunked: the body ends at close.
        assert not r.chunked and r.body == b"abc"
        assert c.closed()
    assert gw.up.last().version == "HTTP/1.1"


def test_http10_client_keepalive(gw):
    with Client(gw.port) as c:
        for i in range(2):
            c.request("GET", "/ka%d" % i, headers=[("Connection", "keep-alive")],
                      version="HTTP/1.0")
            r = c.read_response()
            assert r.status == 200
            assert r.header("Connection", "").lower() == "keep-alive"
            assert r.header("Content-Length") is not None
        assert not c.closed(0.3)


def test_http11_close(gw):
    with Client(gw.port) as c:
        c.request("GET", "/c", headers=[("Connection", "close")])
        r = c.read_response()
        assert r.status == 200
        assert r.header("Connection") == "close"
        assert c.closed()


def test_absolute_form_target(gw):
    r, _ = raw(gw.port, b"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: other\r\n"
               b"Connection: close\r\n\r\n")
    assert r.status == 200
    got = gw.up.last()
    assert got.target == "/p?q=1"
    # The host of an absolute-form target wins over the Host field.
    assert got.header("X-Host") == "example.com"


def test_host_variable_lowercased_without_port(gw):
    http(gw.port, "GET", "/h", host="API.Example.COM:8080")
    assert gw.up.last().header("X-Host") == "api.example.com"


def test_expect_100_continue(gw):
    with Client(gw.port) as c:
        c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.read_response(interim=True)
        assert interim.status == 100
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200
    got = gw.up.last()
    assert got.body == b"hello"
    assert not got.has("Expect")


def test_expect_100_continue_over_limit_is_413_without_continue(gw):
    with Client(gw.port) as c:
        c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response(interim=True)
        assert r.status == 413


def test_chunked_request_body(gw):
    with Client(gw.port) as c:
        c.send(b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"hello ", b"chunked ", b"world"):
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
            time.sleep(0.05)
        c.send(b"0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
    got = gw.up.last()
    assert got.body == b"hello chunked world"
    assert got.body_len == 19
    # Exactly one framing for the upstream, whichever the gateway chose.
    assert got.chunked != got.has("Content-Length")


@pytest.mark.portvakt_only("how a body streams with proxy_request_buffering off is portvakt's own")
def test_chunked_request_body_is_streamed(gw):
    with Client(gw.port) as c:
        c.send(b"POST /big/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nfirst\r\n")
        # The upstream sees the request before the client has finished it.
        head = gw.up.wait_heads(1, timeout=3)[0]
        assert head.target == "/big/stream"
        assert gw.up.requests == []
        time.sleep(0.3)
        c.send(b"4\r\nlast\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
    assert gw.up.last().body == b"firstlast"


def test_small_body_is_read_whole_before_the_upstream_is_asked(gw):
    # A slow client sending a small body holds no upstream connection.
    with Client(gw.port) as c:
        c.send(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        time.sleep(0.4)
        assert gw.up.heads == [] and gw.up.requests == []
        c.send(b"world")
        r = c.read_response()
        assert r.status == 200
    assert gw.up.last().body == b"helloworld"


@pytest.mark.portvakt_only("how a body streams with proxy_request_buffering off is portvakt's own")
def test_large_body_streams(gw):
    with Client(gw.port) as c:
        c.send(b"POST /big/large HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 20000)
        head = gw.up.wait_heads(1, timeout=3)[0]
        assert head.target == "/big/large"
        c.send(b"b" * 80000)
        assert c.read_response().status == 200
    assert gw.up.last().body_len == 100000


def test_upstream_chunked_response(gw):
    body = b"".join(b"line %d\n" % i for i in range(2000))
    gw.up.reply = Reply(200, body=body, chunked=True, chunk_size=1000)
    r = http(gw.port, "GET", "/chunked-response")
    assert r.status == 200
    assert r.body == body


def test_upstream_close_delimited_response(gw):
    body = b"until close\n" * 500
    gw.up.reply = Reply(200, body=body, no_length=True)
    r = http(gw.port, "GET", "/close-delimited")
    assert r.status == 200
    assert r.body == body
    # For a 1.1 client the gateway frames it (chunked) and keeps the connection.
    assert r.chunked


@pytest.mark.portvakt_only("NGINX relays a response without a valid status line as HTTP/0.9")
@pytest.mark.parametrize("data", [b"garbage\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
                         ids=["no_status_line", "bad_status", "conflicting_length"])
def test_invalid_upstream_response_is_502(gw, data):
    gw.up.reply = Reply(raw=data, close=True)
    r = http(gw.port, "GET", "/invalid")
    assert r.status == 502


def test_upstream_204_and_304_have_no_body(gw):
    gw.up.reply = Reply(204)
    with Client(gw.port) as c:
        c.request("GET", "/204")
        r = c.read_response()
        assert r.status == 204 and r.body == b""
        assert not r.has("Transfer-Encoding")
        gw.up.reply = Reply(304, headers=[("ETag", '"v1"')])
        c.request("GET", "/304")
        r = c.read_response()
        assert r.status == 304 and r.header("ETag") == '"v1"'
        gw.up.reply = None
        c.request("GET", "/after")
        assert c.read_response().json()["target"] == "/after"


MB = 1 << 20
BIG = 50 * MB


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; .peak in kB."""

    def __init__(self, pid):
        self.pid = pid
        self.base = rss_kb(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak - self.base


def test_large_upload_streams_with_bounded_memory(gw):
    http(gw.port, "GET", "/big/warmup")
    s = RssSampler(gw.pid)
    block = b"0123456789abcdef" * 4096  # 64 KiB
    h = hashlib.sha256()
    with Client(gw.port, timeout=30) as c:
        c.send(b"POST /big/up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BIG)
        for _ in range(BIG // len(block)):
            c.send(block)
            h.update(block)
        r = c.read_response()
    grew = s.stop()
    assert r.status == 200
    got = gw.up.last()
    assert got.body_len == BIG
    assert got.body_sha256 == h.hexdigest()
    assert grew < 24 * 1024, "RSS grew by %d kB for a %d MB upload" % (grew, BIG // MB)


def test_large_download_slow_client_bounded_memory(gw):
    http(gw.port, "GET", "/big/warmup")
    gw.up.reply = Reply(200, body_size=BIG, chunk_size=65536)
    s = RssSampler(gw.pid)
    with Client(gw.port, timeout=30) as c:
        c.request("GET", "/big/down")
        # Stall before reading: the gateway must stop reading the upstream
        # instead of buffering the rest in memory.
        time.sleep(1.0)
        r = c.read_response(keep_body=0)
    grew = s.stop()
    assert r.status == 200
    assert r.body_len == BIG
    assert r.sha256 == gen_sha256(BIG, 65536)
    assert grew < 24 * 1024, "RSS grew by %d kB for a %d MB download" % (grew, BIG // MB)
