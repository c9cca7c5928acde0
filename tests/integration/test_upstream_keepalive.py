"""Upstream connection pooling (`keepalive` in an upstream block), counted
at the echo upstream, which numbers its connections.

`worker_processes 1` makes the counts exact: pools are per worker.
"""

import socket
import threading
import time

import pytest

from conftest import TARGET, Client, Reply, http, wait_for

CONF = """
worker_processes 1;
http {
    upstream pool2 {
        server 127.0.0.1:@UP@;
        keepalive 2;
        @STRICT@
    }
    upstream grace2 {
        server 127.0.0.1:@UP@;
        keepalive 2;
        @GRACE@
    }
    upstream limited {
        server 127.0.0.1:@UP@;
        keepalive 8;
        keepalive_requests 3;
    }
    upstream short_idle {
        server 127.0.0.1:@UP@;
        keepalive 8;
        keepalive_timeout 500ms;
    }
    upstream short_life {
        server 127.0.0.1:@UP@;
        keepalive 8;
        keepalive_time 1s;
    }
    upstream pooled {
        server 127.0.0.1:@UP@;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /pool2/ { proxy_pass http://pool2/; }
        location /grace2/ { proxy_pass http://grace2/; }
        location /limited/ { proxy_pass http://limited/; }
        location /short_idle/ { proxy_pass http://short_idle/; }
        location /short_life/ { proxy_pass http://short_life/; }
        location /pooled/ { proxy_pass http://pooled/; }
        location /streamed/ { proxy_request_buffering off; proxy_pass http://pooled/; }
        location /http10/ {
            proxy_http_version 1.0;
            proxy_set_header Connection close;
            proxy_pass http://pooled/;
        }
        location /nopool/ { proxy_pass http://127.0.0.1:@UP@/; }
    }
}
"""


def start(gateway, upstream, port, grace="keepalive_grace 1s;", **up_opts):
    """pool2 has NGINX's strict cap (portvakt's `keepalive_grace off`),
    grace2 portvakt's grace (NGINX: grace2 is a second pool2)."""
    up = upstream(**up_opts)
    pv = TARGET == "portvakt"
    gw = gateway(CONF, UP=up.port, GW=port(), STRICT="keepalive_grace off;" if pv else "",
                 GRACE=grace if pv else "")
    return gw, up


def burst(port, path, n):
    """n concurrent requests; returns their statuses."""
    statuses = [None] * n

    def one(i):
        statuses[i] = http(port, "GET", "%s%d" % (path, i), timeout=10).status

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


def test_sequential_requests_share_one_connection(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    for i in range(20):
        assert http(gw.port, "GET", "/pooled/s%d" % i).status == 200
    assert up.connections == 1
    assert [r.seq_on_conn for r in up.requests] == list(range(1, 21))


def test_pool_keeps_at_most_keepalive_idle_connections(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    up.reply = Reply(200, body=b"slow\n", delay=0.3)
    assert burst(gw.port, "/pool2/a", 6) == [200] * 6
    assert up.connections == 6
    # Two stay pooled; the gateway closes the other four.
    wait_for(lambda: up.open_connections == 2, 3, what="pool to shrink to 2")
    time.sleep(0.2)
    assert up.open_connections == 2
    assert burst(gw.port, "/pool2/b", 6) == [200] * 6
    # The second burst reused the two pooled connections.
    assert up.connections == 6 + 4


@pytest.mark.portvakt_only("keepalive_grace: connections beyond the pool stay while the load needs them")
def test_pool_grace_keeps_what_the_load_needs(gateway, upstream, port):
    gw, up = start(gateway, upstream, port, grace="keepalive_grace 1m;")
    up.reply = Reply(200, body=b"slow\n", delay=0.3)
    assert burst(gw.port, "/grace2/a", 6) == [200] * 6
    assert up.connections == 6
    # all six were in use at once: all six stay, and the next burst
    # opens none
    assert burst(gw.port, "/grace2/b", 6) == [200] * 6
    assert up.connections == 6
    assert up.open_connections == 6


@pytest.mark.portvakt_only("keepalive_grace: the extra idle connections close once the load has gone")
def test_pool_grace_shrinks_back_to_keepalive(gateway, upstream, port):
    gw, up = start(gateway, upstream, port, grace="keepalive_grace 300ms;")
    up.reply = Reply(200, body=b"slow\n", delay=0.3)
    assert burst(gw.port, "/grace2/a", 6) == [200] * 6
    assert up.connections == 6
    # idle past the grace, the four beyond `keepalive 2` close; two stay
    wait_for(lambda: up.open_connections == 2, 10, what="pool to shrink to 2")
    up.reply = Reply(200, body=b"quick\n")
    for i in range(3):
        assert http(gw.port, "GET", "/grace2/c%d" % i).status == 200
    assert up.connections == 6


def test_no_pool_without_keepalive_directive(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    for i in range(3):
        assert http(gw.port, "GET", "/nopool/x%d" % i).status == 200
    assert up.connections == 3
    # proxy_http_version and proxy_set_header are inherited from the server.
    assert all(r.version == "HTTP/1.1" for r in up.requests)
    assert not any(r.has("Connection") for r in up.requests)


def test_http10_to_upstream_is_never_pooled(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    for i in range(3):
        assert http(gw.port, "GET", "/http10/x%d" % i).status == 200
    assert up.connections == 3
    assert all(r.version == "HTTP/1.0" for r in up.requests)


def test_upstream_connection_close_is_honoured(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    up.reply = Reply(200, body=b"bye\n", close=True)
    for i in range(3):
        assert http(gw.port, "GET", "/pooled/c%d" % i).status == 200
    assert up.connections == 3


def test_upstream_keepalive_requests(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    for i in range(9):
        assert http(gw.port, "GET", "/limited/r%d" % i).status == 200
    assert up.connections == 3
    assert max(r.seq_on_conn for r in up.requests) == 3


def test_upstream_keepalive_timeout(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    assert http(gw.port, "GET", "/short_idle/a").status == 200
    assert http(gw.port, "GET", "/short_idle/b").status == 200
    assert up.connections == 1
    time.sleep(1.0)
    # The idle connection was closed by the gateway after 500ms...
    assert up.open_connections == 0 and up.peer_closed == 1
    assert http(gw.port, "GET", "/short_idle/c").status == 200
    # ...so this one needed a new one.
    assert up.connections == 2


def test_upstream_keepalive_time(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    for i in range(4):
        assert http(gw.port, "GET", "/short_life/t%d" % i).status == 200
        time.sleep(0.6)
    # Requests at 0, 0.6, 1.2 s share a connection; after the one that ended
    # past keepalive_time (1 s) it is closed, so the fourth opens a new one.
    assert [r.conn_id for r in up.requests] == [1, 1, 1, 2]


def test_upstream_closing_idle_connections_causes_no_502(gateway, upstream, port):
    # The upstream closes keepalive connections idle for 200 ms while the
    # gateway would keep them 60 s: the gateway must notice (or retry) and
    # never answer 502.
    gw, up = start(gateway, upstream, port, idle_close_ms=200)
    statuses = []
    for i, gap in enumerate([0.25, 0.3, 0.21, 0.19, 0.2, 0.22, 0.18, 0.205, 0.195, 0.4]):
        statuses.append(http(gw.port, "GET", "/pooled/g%d" % i).status)
        time.sleep(gap)
    assert statuses == [200] * len(statuses)
    assert up.idle_closed >= 5


def test_reused_connection_dropped_before_response_is_retried(gateway, upstream, port):
    # The upstream reads a request on a reused connection and closes without
    # answering: the classic keepalive race, made deterministic. An
    # idempotent request must be retried on a fresh connection.
    gw, up = start(gateway, upstream, port)

    def drop_reused(req):
        if req.seq_on_conn > 1:
            return Reply(raw=b"", close=True)
        return None

    up.handler = drop_reused
    for i in range(5):
        r = http(gw.port, "GET", "/pooled/race%d" % i)
        assert r.status == 200, (i, r)
    assert up.connections >= 5
    served = [q for q in up.requests if q.seq_on_conn == 1]
    assert [q.target for q in served] == ["/race%d" % i for i in range(5)]


def test_many_clients_few_upstream_connections(gateway, upstream, port):
    gw, up = start(gateway, upstream, port)
    clients = [Client(gw.port) for _ in range(20)]
    try:
        for rnd in range(3):
            for i, c in enumerate(clients):
                c.request("GET", "/pooled/m%d_%d" % (rnd, i))
                assert c.read_response().status == 200
    finally:
        for c in clients:
            c.close()
    assert len(up.requests) == 60
    assert up.connections == 1


def _recv_until(sock, buf, marker):
    while marker not in buf:
        data = sock.recv(65536)
        if not data:
            raise AssertionError("closed before %r" % marker)
        buf += data
    i = buf.index(marker) + len(marker)
    head = bytes(buf[:i])
    del buf[:i]
    return head


def test_connection_answered_before_the_body_was_written_is_not_reused(gateway, port):
    # The upstream answers (401) after the request head, before the body is
    # written: it may not read the rest, which would then start the next
    # request on that connection. Here it does read it, and sends the end
    # of its answer only after, so the exchange ends cleanly; still the
    # connection must not be reused.
    body_len = 65536
    first_part = 16384
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    after = {}
    conns = []

    def serve_first(c):
        buf = bytearray()
        head = _recv_until(c, buf, b"\r\n\r\n")
        after["head"] = head
        c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nno")
        got = len(buf)
        while got < body_len:
            data = c.recv(65536)
            if not data:
                after["short"] = got
                return
            got += len(data)
        c.sendall(b"pe")
        # the gateway must close it rather than send another request here
        c.settimeout(5)
        try:
            after["next"] = c.recv(65536)
        except OSError as e:
            after["next"] = e

    def serve_other(c):
        buf = bytearray()
        head = _recv_until(c, buf, b"\r\n\r\n")
        after.setdefault("others", []).append(head)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    def accept_loop():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            conns.append(c)
            fn = serve_first if len(conns) == 1 else serve_other
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    try:
        gw = gateway(CONF, UP=lsock.getsockname()[1], GW=port(), STRICT="", GRACE="")
        with Client(gw.port) as c:
            c.send(b"POST /streamed/upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body_len
                   + b"a" * first_part)
            # the answer's head reaches the client before the rest of the body is sent
            buf = bytearray()
            while b"\r\n\r\n" not in buf:
                data = c.sock.recv(65536)
                assert data, "gateway closed before the response head"
                buf += data
            assert buf.startswith(b"HTTP/1.1 401 ")
            c.send(b"a" * (body_len - first_part))
            c.buf = buf
            r = c.read_response("POST")
            assert r.status == 401 and r.body == b"nope"
        wait_for(lambda: "next" in after, 5, what="first upstream connection to end")
        assert after["next"] == b"", after["next"]
        assert http(gw.port, "GET", "/pooled/after").status == 200
        assert len(conns) == 2 and after["others"][0].startswith(b"GET /after ")
    finally:
        lsock.close()
        for c in conns:
            c.close()


@pytest.mark.portvakt_only("keepalive_grace is portvakt's own")
def test_keepalive_grace_errors(tmp_path):
    import subprocess
    from conftest import PORTVAKT, free_port
    for line, msg in {"keepalive_grace 0;": 'invalid value "0" in "keepalive_grace" directive',
                      "keepalive_grace x;": 'invalid value "x" in "keepalive_grace" directive',
                      "keepalive_grace 1s; keepalive_grace off;": '"keepalive_grace" directive is duplicate'}.items():
        conf = tmp_path / "bad.conf"
        conf.write_text("http { upstream u { server 127.0.0.1:1; keepalive 2; %s }"
                        " server { listen 127.0.0.1:%d; location / { proxy_pass http://u; } } }" % (line, free_port()))
        out = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
        assert out.returncode != 0 and msg in out.stderr, (line, out.stderr)
