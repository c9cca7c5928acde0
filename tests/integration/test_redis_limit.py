"""Cluster-wide limit_req zones kept in Redis (portvakt's extension of
limit_req_zone: `redis=HOST:PORT [redis_fail=open|closed]`), against a
real redis-server started per test on a free port.

The zone allows 6r/m with burst=2 nodelay: 3 requests of a key pass at
once and the leak during a test (0.1 request per second) never frees
another, so pass counts are exact. Rejections use status 429 so they
cannot be mistaken for other 503s. One worker per gateway makes the
outage log count exact.
"""

import time

import pytest

from conftest import http, wait_for

pytestmark = pytest.mark.portvakt_only("Redis-backed zones are a portvakt extension")

CONF = """
worker_processes 1;
http {
    limit_req_zone $http_x_client zone=shared:1m rate=6r/m
                   redis=127.0.0.1:@REDIS@ redis_fail=@FAIL@;
    server {
        listen 127.0.0.1:@GW@;
        location / {
            limit_req zone=shared burst=2 nodelay;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""

PASSES = 3  # burst 2 + 1


def start(portvakt, upstream, port, redis, fail="open", n=1):
    up = upstream()
    gws = [portvakt(CONF, GW=port(), UP=up.port, REDIS=redis.port, FAIL=fail) for _ in range(n)]
    return gws, up


def send(gws, client, n):
    """n requests for key `client`, alternating between the gateways;
    returns the statuses."""
    out = []
    for i in range(n):
        gw = gws[i % len(gws)]
        out.append(http(gw.port, "GET", "/", headers=[("X-Client", client)], timeout=5).status)
    return out


def redis_lines(gw, redis):
    """Error log lines that name the Redis server."""
    addr = "127.0.0.1:%d" % redis.port
    return [l for l in gw.stderr().splitlines() if addr in l]


def test_two_gateways_share_one_limit(portvakt, upstream, port, redis_server):
    gws, up = start(portvakt, upstream, port, redis_server, n=2)
    a = send(gws, "a", 10)
    # One shared bucket: 3 passes in all, not 3 per gateway.
    assert a.count(200) == PASSES and a.count(429) == 10 - PASSES, a
    assert a[:PASSES] == [200] * PASSES
    # Another key has its own bucket, shared the same way.
    b = send(gws, "b", 6)
    assert b == [200] * PASSES + [429] * (6 - PASSES)
    # Both gateways served and refused some requests.
    assert len(up.requests) == 2 * PASSES
    assert redis_server.ping()


def test_redis_fail_open_falls_back_to_the_local_limit(portvakt, upstream, port, redis_server):
    (gw,), up = start(portvakt, upstream, port, redis_server, fail="open")
    assert send([gw], "before", 4) == [200] * PASSES + [429]
    redis_server.stop()
    t0 = time.monotonic()
    during = send([gw], "during", 8)
    # Limited locally: the same bucket size, neither all refused nor
    # unlimited; and without waiting for Redis on every request.
    assert during == [200] * PASSES + [429] * (8 - PASSES)
    assert time.monotonic() - t0 < 4.0


def test_redis_fail_closed_refuses(portvakt, upstream, port, redis_server):
    (gw,), up = start(portvakt, upstream, port, redis_server, fail="closed")
    assert send([gw], "before", 1) == [200]
    redis_server.stop()
    before = len(up.requests)
    assert send([gw], "during", 6) == [429] * 6
    assert len(up.requests) == before


def test_outage_is_logged_once_and_the_shared_limit_comes_back(portvakt, upstream, port,
                                                               redis_server):
    gws, up = start(portvakt, upstream, port, redis_server, fail="open", n=2)
    assert send(gws, "warmup", 4).count(200) == PASSES
    quiet = [len(redis_lines(gw, redis_server)) for gw in gws]

    redis_server.stop()
    during = send(gws, "down", 40)
    # Each gateway falls back to its own bucket: 3 passes on each.
    assert during.count(200) == 2 * PASSES
    # the log writer thread writes the lines a little after the fact
    wait_for(lambda: all(len(redis_lines(gw, redis_server)) > q for gw, q in zip(gws, quiet)),
             what="the outage logged by both gateways")
    logged = [len(redis_lines(gw, redis_server)) - q for gw, q in zip(gws, quiet)]
    # The outage is logged, and not once per request.
    assert all(1 <= n <= 2 for n in logged), [redis_lines(gw, redis_server) for gw in gws]
    send(gws, "down2", 40)
    time.sleep(0.3)
    assert [len(redis_lines(gw, redis_server)) - q for gw, q in zip(gws, quiet)] == logged

    # Redis comes back on the same port (empty); the gateways reconnect by
    # themselves and share one bucket again.
    redis_server.start()
    tries = [0]

    def shared_again():
        tries[0] += 1
        got = send(gws, "after%d" % tries[0], 4)
        return got.count(200) == PASSES

    wait_for(shared_again, timeout=10.0, interval=0.25, what="the shared limit after a Redis restart")
    assert send(gws, "settled", 8).count(200) == PASSES
    # Down once, back once: a bounded number of lines in all.
    total = [len(redis_lines(gw, redis_server)) - q for gw, q in zip(gws, quiet)]
    assert all(n <= 3 for n in total), [redis_lines(gw, redis_server) for gw in gws]
