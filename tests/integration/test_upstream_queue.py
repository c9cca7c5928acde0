"""`queue N [timeout=T]` in an upstream (NGINX Plus's syntax; NGINX OSS
has no queue, so these run on portvakt only): when every server is at
max_conns a request waits, in order, in a queue of at most N; past N, or
after T without a server, it gets 502. The upstream never has more than
max_conns requests at once."""

import os
import signal
import threading
import time

from conftest import Client, EchoUpstream, free_port, http, render, wait_for

CONF = """
worker_processes 1;
error_log stderr warn;
http {
    access_log off;
    upstream u {
        server 127.0.0.1:@UP@ max_conns=1;
        keepalive 1;
        queue @QUEUE@;
    }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { proxy_pass http://u; }
    }
}
"""


class Slow:
    """An upstream handler that holds each request for `hold` seconds,
    and keeps the order requests came in and the most at once."""

    def __init__(self, hold):
        self.hold = hold
        self.order = []
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, req):
        with self.lock:
            self.order.append(req.target)
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return None


def start_requests(port, targets, gap=0.15):
    """One request per target on its own connection, started gap seconds
    apart (so they reach the gateway in order); returns (threads, results)."""
    results = {}

    def one(t):
        try:
            results[t] = http(port, target=t, timeout=20).status
        except OSError as e:
            results[t] = repr(e)
    threads = []
    for t in targets:
        th = threading.Thread(target=one, args=(t,))
        th.start()
        threads.append(th)
        time.sleep(gap)
    return threads, results


def test_queued_in_order_overflow_502(portvakt):
    slow = Slow(0.5)
    up = EchoUpstream(handler=slow)
    try:
        gw = portvakt(CONF, UP=up.port, GW=free_port(), QUEUE="2 timeout=30s")
        threads, results = start_requests(gw.port, ["/a", "/b", "/c", "/d"])
        for th in threads:
            th.join(30)
        # /a is served, /b and /c wait their turn, /d finds the queue full
        assert results == {"/a": 200, "/b": 200, "/c": 200, "/d": 502}
        assert slow.order == ["/a", "/b", "/c"]
        assert slow.most == 1
        assert up.connections == 1  # one pooled connection, never a second
        assert 'queue is full in upstream "u"' in gw.stderr()
    finally:
        up.stop()


def test_queue_timeout_and_client_gone(portvakt):
    slow = Slow(2.0)
    up = EchoUpstream(handler=slow)
    try:
        gw = portvakt(CONF, UP=up.port, GW=free_port(), QUEUE="2 timeout=300ms")
        threads, results = start_requests(gw.port, ["/a", "/b"])
        # a client that leaves while queued takes its request with it
        c = Client(gw.port)
        c.request("GET", "/gone")
        time.sleep(0.1)
        c.close()
        for th in threads:
            th.join(30)
        assert results == {"/a": 200, "/b": 502}
        wait_for(lambda: 'queue timed out in upstream "u"' in gw.stderr(), what="the timeout logged")
        assert http(gw.port, target="/after").status == 200
        assert slow.order == ["/a", "/after"]
        assert slow.most == 1
    finally:
        up.stop()


def test_queue_errors(tmp_path):
    import subprocess
    from conftest import PORTVAKT
    for line, msg in {"queue 0;": 'invalid value "0" in "queue" directive',
                      "queue 5 timeout=x;": 'invalid parameter "timeout=x"',
                      "queue 5 wait=1s;": 'invalid parameter "wait=1s"',
                      "queue 1; queue 2;": '"queue" directive is duplicate'}.items():
        conf = tmp_path / "bad.conf"
        conf.write_text("http { upstream u { server 127.0.0.1:1 max_conns=1; %s }"
                        " server { listen 127.0.0.1:%d; location / { proxy_pass http://u; } } }" % (line, free_port()))
        out = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
        assert out.returncode != 0 and msg in out.stderr, (line, out.stderr)


def test_max_conns_bounds_the_pool(portvakt):
    """max_conns=2 with keepalive 8 and its grace: six clients at once
    never make more than two connections to the server, idle ones
    included (an idle one is reused before another is opened)."""
    slow = Slow(0.2)
    up = EchoUpstream(handler=slow)
    try:
        conf = CONF.replace("max_conns=1;", "max_conns=2;").replace("keepalive 1;", "keepalive 8;")
        gw = portvakt(conf, UP=up.port, GW=free_port(), QUEUE="20 timeout=30s")
        for _ in range(2):
            threads, results = start_requests(gw.port, ["/%d" % i for i in range(6)], gap=0.02)
            for th in threads:
                th.join(30)
            assert set(results.values()) == {200}
        assert slow.most == 2
        assert up.max_open <= 2 and up.connections == 2
    finally:
        up.stop()


def test_max_conns_bounds_the_pools_of_all_workers(portvakt):
    """max_conns=2 with keepalive 8 and two workers: many clients, spread
    over both workers by the kernel, never make more than two connections
    open to the server at once, idle ones in either worker's pool
    included; the requests that find both taken wait in the queue and
    all succeed."""
    slow = Slow(0.05)
    up = EchoUpstream(handler=slow)
    try:
        conf = (CONF.replace("worker_processes 1;", "worker_processes 2;")
                .replace("max_conns=1;", "max_conns=2;").replace("keepalive 1;", "keepalive 8;"))
        gw = portvakt(conf, UP=up.port, GW=free_port(), QUEUE="100 timeout=30s")
        for r in range(3):
            threads, results = start_requests(gw.port, ["/%d/%d" % (r, i) for i in range(24)], gap=0.01)
            for th in threads:
                th.join(40)
            assert list(results.values()) == [200] * 24, results
            time.sleep(0.3)  # idle connections sit in both pools before the next round
        assert slow.most <= 2
        assert up.max_live <= 2, (up.max_live, up.max_open)
        assert up.connections >= 2
    finally:
        up.stop()


def test_max_conns_places_survive_a_reload(portvakt):
    """The count of open connections behind max_conns across workers
    follows its connections through a reload (idle ones carried over or
    closed, busy ones closed as they come back): afterwards both places
    are still used at once, and never a third."""
    up = EchoUpstream()
    try:
        conf = (CONF.replace("worker_processes 1;", "worker_processes 2;")
                .replace("max_conns=1;", "max_conns=2;").replace("keepalive 1;", "keepalive 8;")
                .replace("location / {", 'location = /v { return 200 "@V@"; }\n        location / {'))
        port = free_port()
        gw = portvakt(conf, UP=up.port, GW=port, QUEUE="100 timeout=10s", V="one")
        for v in ("two", "three"):
            up.handler = Slow(0.1)
            threads, results = start_requests(port, ["/%s/%d" % (v, i) for i in range(16)], gap=0.01)
            with open(gw.conf_path, "w") as f:  # reloaded while requests are in flight
                f.write(render(conf, UP=up.port, GW=port, QUEUE="100 timeout=10s", V=v))
            os.kill(gw.pid, signal.SIGHUP)
            for th in threads:
                th.join(30)
            assert list(results.values()) == [200] * 16, results
            wait_for(lambda: http(port, target="/v").body == v.encode(), what="the new config")
        slow = up.handler = Slow(0.1)
        threads, results = start_requests(port, ["/after/%d" % i for i in range(16)], gap=0.01)
        for th in threads:
            th.join(30)
        assert list(results.values()) == [200] * 16, results
        assert slow.most == 2
        assert up.max_live <= 2, (up.max_live, up.max_open)
    finally:
        up.stop()
