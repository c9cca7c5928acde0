"""Client and upstream timeouts. Configs use 1 s timeouts to keep the run
short. No assertion is on a duration (the machine may be loaded): a test
checks that a timeout fires at all within a generous wait, what the error
log says fired, that a trickle which would outlast the timeout is cut
before it ends, and, where two timeouts differ widely, their order.

NGINX closes silently when client_header_timeout or client_body_timeout
expires (it only logs 408); portvakt answers 408 Request Timeout first when
part of a request has arrived (RFC 9110 15.5.9). The shared tests check the
close and its timing; the 408 itself is portvakt_only.
"""

import socket
import threading
import time

import pytest

from conftest import TARGET, Client, Closed, Reply, http, wait_for

CONF = """
error_log stderr info;
http {
    client_header_timeout 1s;
    client_body_timeout 1s;
    send_timeout 1s;
    keepalive_timeout 1s;
    keepalive_requests 3;
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /t/ {
            # 1 s upstream timeouts only here: elsewhere a test upstream
            # slow on a loaded machine must not turn a 200 into a 504
            proxy_read_timeout 1s;
            proxy_connect_timeout 1s;
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /dead/ {
            proxy_pass http://127.0.0.1:@DEAD@/;
        }
        location /long/ {
            keepalive_timeout 4s;
            proxy_pass http://up/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


def error_line(gw, text):
    """The first error log line containing text, once it is written."""
    def find():
        return next((l for l in gw.stderr().splitlines() if text in l), None)
    try:
        return wait_for(find, timeout=10)
    except AssertionError:
        raise AssertionError("no error log line with %r in:\n%s" % (text, gw.stderr()))


@pytest.fixture
def gw(gateway, upstream, port):
    up = upstream()
    g = gateway(CONF, UP=up.port, GW=port(), DEAD=port())
    g.up = up
    return g


def response_or_none(c):
    """The next response, or None if the server closed without one."""
    try:
        return c.read_response()
    except Closed:
        return None


def trickle(c, data, gap):
    """Send data one byte at a time in a thread, gap seconds apart at the
    least; stops when the peer closes. The thread's `sent` counts the bytes
    that went."""
    def run():
        for b in data:
            try:
                c.send(bytes([b]))
            except OSError:
                return
            t.sent += 1
            time.sleep(gap)
    t = threading.Thread(target=run, daemon=True)
    t.sent = 0
    t.start()
    return t


# Trickled a byte every 50 ms, this head takes 6 s at the least: a
# timeout restarted by every byte (20 times shorter than the 1 s) would
# never fire, and the request would be served.
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"


def test_trickled_header_is_cut_at_client_header_timeout(gw):
    # client_header_timeout bounds the whole head, not the gap between reads.
    with Client(gw.port, timeout=30) as c:
        t = trickle(c, HEAD, 0.05)
        r = response_or_none(c)
        sent = t.sent
        # portvakt answers 408 (README: where it differs); NGINX just closes
        assert (r and r.status) == (None if TARGET == "nginx" else 408), r
        assert c.closed(10)
    assert sent < len(HEAD), "the whole head went through before the cut"
    assert gw.up.requests == []


@pytest.mark.portvakt_only("NGINX closes without a response")
def test_trickled_header_gets_408(gw):
    with Client(gw.port, timeout=10) as c:
        trickle(c, HEAD, 0.05)
        r = c.read_response()
        assert r.status == 408
        assert r.header("Connection") == "close"
        assert c.closed(10)


def test_silent_connection_closed_without_response(gw):
    # client_header_timeout closes it: the client's 30 s wait would
    # otherwise end in socket.timeout, not a close
    with Client(gw.port, timeout=30) as c:
        assert response_or_none(c) is None


def test_stalled_body_is_cut_at_client_body_timeout(gw):
    with Client(gw.port, timeout=30) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        r = response_or_none(c)
        assert (r and r.status) == (None if TARGET == "nginx" else 408), r
    # The upstream never got a complete request.
    assert gw.up.requests == []


def test_hanging_upstream_is_504(gw):
    gw.up.reply = Reply(hang=True)
    r = http(gw.port, "GET", "/t/hang", timeout=30)
    assert r.status == 504
    error_line(gw, "upstream timed out (110: Connection timed out) while reading response header from upstream")


def test_upstream_stalling_mid_body_closes_client(gw):
    # Headers sent, body stalls: the status is already out, so the gateway
    # can only cut the response short (and must not keep the connection).
    gw.up.reply = Reply(200, raw=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    with Client(gw.port, timeout=10) as c:
        c.request("GET", "/t/stall")
        with pytest.raises(Closed):
            c.read_response()


def test_refused_upstream_is_502(gw):
    # at once, from the refusal: not after proxy_connect_timeout (a 504)
    r = http(gw.port, "GET", "/dead/x", timeout=30)
    assert r.status == 502
    error_line(gw, "connect() failed (111: Connection refused) while connecting to upstream")
    assert "timed out" not in gw.stderr(), gw.stderr()


def test_keepalive_timeout_closes_idle_client(gw):
    with Client(gw.port, timeout=10) as c:
        c.request("GET", "/a")
        assert c.read_response().status == 200
        assert c.closed(30)


def test_keepalive_timeout_per_location(gw):
    # Two idle connections, the second after a request to /long/ (4 s
    # against 1 s): the first is closed while the second is still open,
    # then the second is closed too.
    with Client(gw.port, timeout=10) as short, Client(gw.port, timeout=10) as long_:
        long_.request("GET", "/long/a")
        assert long_.read_response().status == 200
        short.request("GET", "/a")
        assert short.read_response().status == 200
        assert short.closed(30)
        assert not long_.closed(0.05), "location keepalive_timeout 4s not applied"
        assert long_.closed(30)


def test_keepalive_requests_limits_a_connection(gw):
    with Client(gw.port) as c:
        for i in range(3):
            c.request("GET", "/k%d" % i)
            r = c.read_response()
            assert r.status == 200
            want = "close" if i == 2 else "keep-alive"
            assert r.header("Connection", "").lower() == want, (i, r.headers)
        assert c.closed()


def test_send_timeout_drops_stalled_client(gw):
    gw.up.reply = Reply(200, body_size=50 << 20, chunk_size=65536)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", gw.port))
    try:
        s.sendall(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
        # The gateway gives up on the client: NGINX logs "client timed out
        # ... while sending to client" (it reads the whole response into
        # temp files); portvakt closes the upstream connection with it.
        gw.up.wait_heads(1, timeout=30)
        wait_for(lambda: "client timed out" in gw.stderr() or gw.up.open_connections == 0,
                 timeout=30, what="the gateway to give up on the client")
        s.settimeout(5)
        got = 0
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
    finally:
        s.close()
    # The gateway gave up on the client rather than waiting forever.
    assert got < (50 << 20)
