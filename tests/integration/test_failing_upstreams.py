"""Upstreams that fail: refuse, reset, stall, answer with too much or with
interim responses, close idle keepalive connections, or never answer.
What is already covered elsewhere is not repeated here: a refused single
server and a hanging upstream (test_timeouts.py), the reused-connection
race with one dropped request (test_upstream_keepalive.py).

Upstream servers: EchoUpstream for ordinary answers, RawUpstream (below)
where the test must control the socket itself (partial answers then a
reset, accept and never read), and a bare listening socket that never
accepts. `worker_processes 1` keeps connection counts exact.
"""

import socket
import struct
import threading
import time

import pytest

from conftest import Client, Closed, Reply, free_port, http, wait_for


# Servers marked max_fails=0 stay in rotation whatever happens: these tests
# look at one exchange at a time, not at failure accounting. Only /t/ has
# 1 s timeouts, for the tests of them; elsewhere NGINX's 60 s defaults
# leave a slow test upstream on a loaded machine room to answer.
CONF = """
worker_processes 1;
http {
    log_format up '$request_uri|$status|$upstream_addr|$upstream_status';
    access_log /dev/stdout up;
    upstream pair {
        server 127.0.0.1:@A@ max_fails=0;
        server 127.0.0.1:@B@ max_fails=0;
        keepalive 4;
    }
    upstream pair_503 {
        server 127.0.0.1:@A@ max_fails=0;
        server 127.0.0.1:@B@ max_fails=0;
    }
    upstream only_a { server 127.0.0.1:@A@ max_fails=0; keepalive 4; }
    upstream single { server 127.0.0.1:@A@; }
    upstream halfdead { server 127.0.0.1:@A@ max_fails=0; server 127.0.0.1:@B@; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /pair/ { proxy_pass http://pair; }
        location /no-next/ { proxy_pass http://pair; proxy_next_upstream off; }
        location /on-503/ { proxy_pass http://pair_503; proxy_next_upstream error timeout http_503; }
        location /a/ { proxy_pass http://only_a; }
        location /t/ {
            proxy_pass http://only_a;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1s;
            proxy_send_timeout 1s;
        }
        location /single/ { proxy_pass http://single; }
        location /halfdead/ { proxy_pass http://halfdead; }
    }
}
"""


def start(gateway, a, b=None):
    """The gateway with server A (and B) at the given ports."""
    return gateway(CONF, A=a, B=b if b is not None else free_port(), GW=free_port())


def error_line(gw, text):
    """The first error log line containing text, once it is written (the
    log may come a little after the response)."""
    def find():
        return next((l for l in gw.stderr().splitlines() if text in l), None)
    try:
        return wait_for(find, timeout=10)
    except AssertionError:
        raise AssertionError("no error log line with %r in:\n%s" % (text, gw.stderr()))


def log_rows(gw, n):
    """The last n access log lines as (uri, status, upstream_addr, upstream_status)."""
    return [tuple(l.split("|")) for l in gw.wait_access_log(n)[-n:]]


class RawUpstream:
    """A listening socket; each accepted connection is handed to
    script(sock, index) in its own thread. Counts connections and whether
    the gateway closed them (closed_by_peer, set by wait_peer_close)."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.heads = []
        self.peer_closed = 0
        self.stopping = threading.Event()
        self._conns = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(c)
            self.connections += 1
            threading.Thread(target=self._run, args=(c, self.connections), daemon=True).start()

    def _run(self, c, n):
        try:
            self.script(self, c, n)
        except OSError:
            pass

    def read_head(self, c):
        buf = b""
        c.settimeout(5)
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        self.heads.append(buf)
        return buf

    def wait_peer_close(self, c, timeout=10):
        """Block until the gateway closes c (EOF or reset)."""
        c.settimeout(timeout)
        try:
            while c.recv(65536):
                pass
        except socket.timeout:
            return
        except OSError:
            pass
        self.peer_closed += 1

    def hold(self):
        self.stopping.wait(30)

    def stop(self):
        self.stopping.set()
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


def reset(c):
    """Close with RST instead of FIN."""
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


@pytest.fixture
def raw_upstream():
    made = []

    def make(script):
        u = RawUpstream(script)
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


def read_until_eof(c, timeout=6.0):
    """Everything the gateway sends on a raw client socket until it closes;
    fails if it does not close within timeout."""
    c.settimeout(timeout)
    data = b""
    while True:
        try:
            d = c.recv(65536)
        except ConnectionResetError:
            return data
        except socket.timeout:
            raise AssertionError("the gateway kept the client connection open; got %r" % data[-200:])
        if not d:
            return data
        data += d


# ---------------------------------------------------------------- retries


def test_refused_first_server_is_retried_on_the_next(gateway, upstream):
    b = upstream()
    dead = free_port()
    gw = start(gateway, dead, b.port)
    for i in range(4):
        r = http(gw.port, "GET", "/pair/r%d" % i)
        assert r.status == 200 and r.json()["target"] == "/pair/r%d" % i
    assert [q.target for q in b.requests] == ["/pair/r%d" % i for i in range(4)]
    rows = log_rows(gw, 4)
    tried_dead = [r for r in rows if r[2].startswith("127.0.0.1:%d" % dead)]
    assert tried_dead, rows  # round robin put the refusing server first at least once
    for uri, status, addrs, statuses in tried_dead:
        assert addrs == "127.0.0.1:%d, 127.0.0.1:%d" % (dead, b.port), addrs
        assert (status, statuses) == ("200", "502, 200")


def test_no_live_server_left_for_the_retry_names_the_upstream(gateway, upstream):
    """As NGINX: when a try fails and the next finds every other server
    down, $upstream_addr ends with the upstream's name."""
    a = upstream(reply=Reply(reset=True))
    dead = free_port()
    gw = start(gateway, a.port, dead)
    assert http(gw.port, "GET", "/halfdead/1").status == 502  # A resets, the dead one refuses
    assert http(gw.port, "GET", "/halfdead/2").status == 502  # A resets, the dead one is down
    rows = log_rows(gw, 2)
    assert rows[0][2] == "127.0.0.1:%d, 127.0.0.1:%d" % (a.port, dead), rows
    assert rows[1][2] == "127.0.0.1:%d, halfdead" % a.port, rows


def test_no_retry_when_proxy_next_upstream_off(gateway, upstream):
    b = upstream()
    dead = free_port()
    gw = start(gateway, dead, b.port)
    statuses = [http(gw.port, "GET", "/no-next/r%d" % i).status for i in range(4)]
    # round robin alternates; every request that drew the refusing server fails
    assert sorted(statuses) == [200, 200, 502, 502], statuses
    assert len(b.requests) == 2


def test_reset_before_response_is_retried_on_the_next_server(gateway, upstream):
    a = upstream(reply=Reply(reset=True))
    b = upstream()
    gw = start(gateway, a.port, b.port)
    r = http(gw.port, "GET", "/pair/first")
    # the first pick is server A, which reads the request and resets
    assert r.status == 200 and r.json()["target"] == "/pair/first"
    assert [q.target for q in a.requests] == ["/pair/first"]
    assert [q.target for q in b.requests] == ["/pair/first"]
    assert log_rows(gw, 1)[0][3] == "502, 200"


def test_reset_before_response_not_retried_for_post(gateway, upstream):
    # A non-idempotent request that reached the upstream may have had an
    # effect: without `non_idempotent` it is not sent again.
    a = upstream(reply=Reply(reset=True))
    b = upstream()
    gw = start(gateway, a.port, b.port)
    r = http(gw.port, "POST", "/pair/pay", body=b"once")
    assert r.status == 502
    assert [q.body for q in a.requests] == [b"once"]
    assert b.requests == []


def test_reset_before_response_of_the_only_server_is_502(gateway, upstream):
    a = upstream(reply=Reply(reset=True))
    gw = start(gateway, a.port)
    with Client(gw.port) as c:
        c.request("GET", "/a/x")
        assert c.read_response().status == 502
        # the client connection survives a 502
        a.reply = None
        c.request("GET", "/a/y")
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/a/y"


def test_http_503_is_retried_when_proxy_next_upstream_says_so(gateway, upstream):
    a = upstream(reply=Reply(503, body=b"busy\n"))
    b = upstream()
    gw = start(gateway, a.port, b.port)
    r = http(gw.port, "GET", "/on-503/x")
    assert r.status == 200 and r.json()["target"] == "/on-503/x"
    assert len(a.requests) == 1 and len(b.requests) == 1
    assert log_rows(gw, 1)[0][3] == "503, 200"


def test_single_server_stays_in_service_after_a_failure(gateway, upstream):
    a = upstream(reply=Reply(reset=True))
    gw = start(gateway, a.port)
    assert http(gw.port, "GET", "/single/fails").status == 502
    a.reply = None
    r = http(gw.port, "GET", "/single/recovers")
    assert r.status == 200, r
    assert a.last().target == "/single/recovers"


# ---------------------------------------------------------------- partial responses
#
# Once the head has gone to the client the status cannot change: a failure
# must show as a truncated message (close before the end), never as a
# complete one. Not the terminating chunk, not a short body followed by
# another response on the same connection.


def partial_then(data, end):
    """A RawUpstream script: read the request, send data, then end it:
    "reset", "fin" or "stall" (keep the connection open, silent)."""
    def script(u, c, n):
        u.read_head(c)
        c.sendall(data)
        time.sleep(0.1)
        if end == "reset":
            reset(c)
        elif end == "fin":
            c.shutdown(socket.SHUT_WR)
            u.wait_peer_close(c)
        else:
            u.wait_peer_close(c)
    return script


BODY = b"x" * 20000


@pytest.mark.parametrize("end", ["reset", "fin", "stall"])
def test_length_body_cut_short_closes_the_client(gateway, raw_upstream, end):
    # A reset or close ends the response at once: under /a/ the gateway
    # would otherwise wait 60 s for proxy_read_timeout, past the client's
    # 30 s. A stall is ended by /t/'s 1 s proxy_read_timeout. The error
    # log says which.
    u = raw_upstream(partial_then(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + BODY, end))
    gw = start(gateway, u.port)
    with Client(gw.port, timeout=30) as c:
        c.request("GET", "/t/partial" if end == "stall" else "/a/partial")
        with pytest.raises(Closed) as exc:
            c.read_response()
        # EOF came before Content-Length bytes; nothing follows
        assert "body bytes missing" in str(exc.value), exc.value
        assert c.eof
    cause = {"reset": "failed (104: Connection reset by peer) while reading upstream",  # recv(), readv()
             "fin": "upstream prematurely closed connection while reading upstream",
             "stall": "upstream timed out (110: Connection timed out) while reading upstream"}[end]
    error_line(gw, cause)
    if end != "stall":
        assert "timed out" not in gw.stderr(), gw.stderr()


@pytest.mark.parametrize("upstream_framing", ["chunked", "close-delimited"])
@pytest.mark.parametrize("end", ["reset", "stall"])
def test_chunked_to_client_cut_short_has_no_last_chunk(gateway, raw_upstream, upstream_framing, end):
    if upstream_framing == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        data = head + b"".join(b"%x\r\n%s\r\n" % (1000, b"y" * 1000) for _ in range(5))
    else:
        head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
        data = head + b"y" * 5000
    u = raw_upstream(partial_then(data, end))
    gw = start(gateway, u.port)
    s = socket.create_connection(("127.0.0.1", gw.port))
    try:
        s.sendall(b"GET /t/partial HTTP/1.1\r\nHost: x\r\n\r\n")
        got = read_until_eof(s)
    finally:
        s.close()
    resp_head, _, body = got.partition(b"\r\n\r\n")
    assert resp_head.startswith(b"HTTP/1.1 200"), got[:200]
    assert b"transfer-encoding: chunked" in resp_head.lower(), resp_head
    assert body.count(b"y") >= 1000, "some of the body was relayed"
    assert not body.endswith(b"0\r\n\r\n"), "a cut body was given its last chunk"
    assert b"\r\n0\r\n" not in body


def test_close_delimited_body_ended_by_fin_is_complete(gateway, raw_upstream):
    # The counterpart of the above: FIN is the normal end of such a body.
    u = raw_upstream(partial_then(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 5000, "fin"))
    gw = start(gateway, u.port)
    with Client(gw.port) as c:
        c.request("GET", "/a/to-close")
        r = c.read_response()
        assert r.status == 200 and r.chunked and r.body == b"z" * 5000


# ---------------------------------------------------------------- extra bytes


@pytest.mark.parametrize("extra", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle",  # a whole second response
    b"junk",
], ids=["second-response", "junk"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_bytes_after_a_complete_response_are_not_pooled(gateway, upstream, framing, extra):
    body = b"first"
    if framing == "length":
        resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body
    else:
        resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n"
    a = upstream()
    a.handler = lambda q: Reply(raw=resp + extra) if q.target == "/a/one" else None
    gw = start(gateway, a.port)
    with Client(gw.port) as c:
        c.request("GET", "/a/one")
        r = c.read_response()
        assert r.status == 200 and r.body == body
        c.request("GET", "/a/two")
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/a/two", r
    q1, q2 = a.wait_requests(2)
    assert q2.conn_id != q1.conn_id, "the connection with surplus bytes was reused"


def test_bytes_arriving_on_an_idle_pooled_connection_discard_it(gateway, raw_upstream):
    # The surplus comes later, while the connection sits in the pool: the
    # test sends it once the first response is in, and the gateway must
    # close that connection (not only skip it) before the next request.
    answered, first_closed = threading.Event(), threading.Event()

    def script(u, c, n):
        u.read_head(c)
        if n == 1:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
            answered.wait(10)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
            before = u.peer_closed
            u.wait_peer_close(c, 30)
            if u.peer_closed > before:
                first_closed.set()
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain")
            u.wait_peer_close(c, 5)

    u = raw_upstream(script)
    gw = start(gateway, u.port)
    assert http(gw.port, "GET", "/a/one").body == b"first"
    answered.set()
    assert first_closed.wait(30), "the idle connection that received bytes was kept open"
    r = http(gw.port, "GET", "/a/two")
    assert r.status == 200 and r.body == b"again"
    assert u.connections == 2, "the idle connection that received bytes was reused"


# ---------------------------------------------------------------- 1xx


INTERIM = {
    "100": b"HTTP/1.1 100 Continue\r\n\r\n",
    "102": b"HTTP/1.1 102 Processing\r\n\r\n",
    "103": b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n",
    "several": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n"
                b"Link: </b.css>; rel=preload\r\n\r\n"),
}


@pytest.mark.portvakt_only("NGINX 1.22 takes an upstream 1xx response as the final head")
@pytest.mark.parametrize("name", sorted(INTERIM))
def test_interim_responses_then_the_final_one(gateway, upstream, name):
    a = upstream(reply=Reply(200, headers=[("X-Final", "yes")], body=b"final body", interim=INTERIM[name]))
    gw = start(gateway, a.port)
    with Client(gw.port) as c:
        for i in range(2):
            c.request("GET", "/a/i%d" % i)
            r = c.read_response(interim=True)
            # interim responses are the gateway's own business here; the
            # client gets the final one, whole, and the connection goes on
            while 100 <= r.status < 200:
                r = c.read_response(interim=True)
            assert r.status == 200 and r.body == b"final body"
            assert r.header("X-Final") == "yes"
            assert not r.has("Link"), "a 103 field leaked into the final response"
    assert a.connections == 1, "the upstream connection was not reused after 1xx"


@pytest.mark.portvakt_only("NGINX 1.22 takes an upstream 1xx response as the final head")
def test_interim_response_for_a_request_with_a_body(gateway, upstream):
    a = upstream(reply=Reply(201, body=b"made", interim=INTERIM["100"]))
    gw = start(gateway, a.port)
    r = http(gw.port, "POST", "/a/upload", body=b"payload" * 100)
    assert r.status == 201 and r.body == b"made"
    assert a.last().body == b"payload" * 100


# ---------------------------------------------------------------- idle close race


@pytest.mark.portvakt_only("portvakt retries a request that fails on a reused connection before any "
                           "response byte; NGINX with one server does not and may answer 502")
def test_upstream_closing_idle_connections_near_reuse_time(gateway, upstream):
    # The upstream closes a keepalive connection idle for 300 ms. The gap
    # between requests hovers at the edge where the gateway reuses the
    # pooled connection just as the upstream closes it: after a gap the
    # upstream closed in, the next gap is shorter, else longer, with the
    # step halving at each turn (to 50 us). That edge is the race; every
    # request must still succeed.
    a = upstream(idle_close_ms=300)
    gw = start(gateway, a.port)
    gap, step, last = 0.29, 0.004, None
    failed = []
    for i in range(30):
        closed_before = a.idle_closed
        r = http(gw.port, "GET", "/a/g%d" % i)
        if r.status != 200:
            failed.append((i, gap, r.status))
        time.sleep(gap)
        direction = -1 if a.idle_closed > closed_before else 1
        if last is not None and direction != last:
            step = max(step / 2, 0.00005)
        last = direction
        gap += direction * step
    assert failed == []
    assert len(a.requests) >= 30
    # the edge was found: the upstream did close pooled connections
    assert a.idle_closed >= 5, a.idle_closed


# ---------------------------------------------------------------- no answer


def test_upstream_accepts_and_never_reads_is_504(gateway, raw_upstream):
    u = raw_upstream(lambda u, c, n: u.hold())
    gw = start(gateway, u.port)
    r = http(gw.port, "GET", "/t/silent", timeout=30)
    assert r.status == 504
    # proxy_read_timeout ended it, waiting for the response head
    error_line(gw, "upstream timed out (110: Connection timed out) while reading response header from upstream")
    # Only now read what sat unread: the request, then the gateway's close.
    assert u.connections == 1
    c = u._conns[0]
    c.settimeout(3)
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    assert got.startswith(b"GET /t/silent HTTP/1.1\r\n"), got[:100]


def test_upstream_never_accepts_is_504(gateway):
    # The kernel completes the handshake into the backlog; nothing ever
    # accepts or reads.
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    try:
        gw = start(gateway, ls.getsockname()[1])
        r = http(gw.port, "GET", "/t/backlog", timeout=30)
        assert r.status == 504
        # connected, so proxy_read_timeout ended it, not the connect timeout
        error_line(gw, "upstream timed out (110: Connection timed out) while reading response header from upstream")
    finally:
        ls.close()


def test_upstream_backlog_full_is_504_after_connect_timeout(gateway):
    # A full accept queue: SYNs are dropped and connect() never completes.
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    try:
        for _ in range(2):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            f.connect_ex(ls.getsockname())
            fillers.append(f)
        time.sleep(0.2)
        gw = start(gateway, ls.getsockname()[1])
        r = http(gw.port, "GET", "/t/unreachable", timeout=30)
        assert r.status == 504
        # proxy_connect_timeout ended it
        error_line(gw, "upstream timed out (110: Connection timed out) while connecting to upstream")
        assert "while reading" not in gw.stderr(), gw.stderr()
    finally:
        for f in fillers:
            f.close()
        ls.close()
