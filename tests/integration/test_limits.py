"""Rate and connection limits: limit_req and limit_conn with NGINX's exact
semantics, checked differentially. Each differential test runs one
config and one request sequence, with the same timing, first through NGINX
and then through the server under test (each with its own upstream and
fresh zones), checks NGINX's answers against what the test expects (which
validates the expectation) and then that the server under test answered
the same. With PV_TARGET=nginx both sides are NGINX.

NGINX's leaky bucket, which the numbers below follow: a key's `excess`
(in requests) grows by 1 per request and leaks at `rate`; a request whose
excess would exceed `burst` is rejected and not counted; an accepted one
with excess above `delay` (0 by default, infinite with nodelay) is held
for (excess - delay) / rate seconds. Rates of 1r/m make the leak during a
test negligible, so excess values are whole numbers.

RateLimit headers, Retry-After and keys from API keys or JWT claims are
portvakt's own (portvakt_only).
"""

import re
import threading
import time

import pytest

from conftest import (BoundClient, Reply, free_port, http, http_from, make_jwt,
                      JwtKey, jwks_text, wait_for)


def both(nginx, gateway, upstream, conf, scenario, handler=None):
    """scenario(port, upstream, server) -> result, run on NGINX and then on
    the server under test; returns (nginx_result, result)."""
    out = []
    for start in (nginx, gateway):
        up = upstream(handler=handler)
        srv = start(conf, GW=free_port(), UP=up.port)
        try:
            out.append(scenario(srv.port, up, srv))
        finally:
            srv.stop()
            up.stop()
    return tuple(out)


def statuses(port, path, n, headers=None):
    return [http(port, "GET", path, headers=headers).status for _ in range(n)]


def staggered(port, path, n, gap, headers=None):
    """n requests for path + i, each on its own connection, the i-th sent
    i*gap seconds after the first; returns their statuses in send order."""
    out = [None] * n
    t0 = time.monotonic() + 0.05

    def one(i):
        time.sleep(max(0.0, t0 + i * gap - time.monotonic()))
        out[i] = http(port, "GET", "%s%d" % (path, i), headers=headers, timeout=10).status

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


LIMIT_LINE = re.compile(
    r'\[(\w+)\] \d+#\d+: (?:\*\d+ )?'
    r'((?:limiting requests|delaying request|limiting connections)[^,]*(?:, dry run)?,? ?'
    r'(?:excess: (\d+\.\d{3}),? )?by zone "[^"]+")')


def limit_log(server):
    """The limit lines of the error log as (level, text). Excess values
    (always three decimals) are shown rounded, as "~1": the few ms between
    requests leak a little at fast rates."""
    out = []
    for m in LIMIT_LINE.finditer(server.stderr()):
        text = m.group(2)
        if m.group(3):
            text = text.replace(m.group(3), "~%.0f" % float(m.group(3)))
        out.append((m.group(1), text))
    return out


def limit_kinds(server, n):
    """What the first limit lines of the error log say ("limiting
    requests", "delaying request"), once there are n of them or after 5 s
    (the log may be written a little after the response)."""
    try:
        wait_for(lambda: len(limit_log(server)) >= n, timeout=5, what="%d limit lines" % n)
    except AssertionError:
        pass
    return [text.split(",")[0] for _, text in limit_log(server)]


# ---------------------------------------------------------------- limit_req

BURST_ZERO = """
http {
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;
    limit_req_zone $binary_remote_addr zone=two:1m rate=1r/s;
    server {
        listen 127.0.0.1:@GW@;
        location /one/ {
            limit_req zone=one;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /429/ {
            limit_req zone=two;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_burst_zero_allows_one_request_per_period(nginx, gateway, upstream):
    def scenario(port, up, srv):
        first = statuses(port, "/one/", 2) + statuses(port, "/429/", 2)
        time.sleep(1.1)
        again = statuses(port, "/one/", 2) + statuses(port, "/429/", 2)
        return first, again, len(up.requests)

    ref, got = both(nginx, gateway, upstream, BURST_ZERO, scenario)
    # Rejected requests never reach the upstream.
    assert ref == ([200, 503, 200, 429], [200, 503, 200, 429], 4)
    assert got == ref


BURSTS = """
error_log stderr warn;
http {
    limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=five:1m rate=2r/s;
    limit_req_zone $binary_remote_addr zone=part:1m rate=2r/s;
    server {
        listen 127.0.0.1:@GW@;
        location /nodelay/ {
            limit_req zone=slow burst=2 nodelay;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /delay/ {
            limit_req zone=five burst=3;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /partial/ {
            limit_req zone=part burst=4 delay=2;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_burst_nodelay_passes_the_burst_at_once(nginx, gateway, upstream):
    # nothing is delayed (the log would say so at warn): only the two
    # beyond the burst are refused
    def scenario(port, up, srv):
        got = statuses(port, "/nodelay/", 5)
        return got, len(up.requests), limit_kinds(srv, 2)

    ref, got = both(nginx, gateway, upstream, BURSTS, scenario)
    assert ref == ([200, 200, 200, 503, 503], 3, ["limiting requests"] * 2)
    assert got == ref


# Requests 20 ms apart at 2r/s (0.04 of a request leaks per gap), so the
# outcome holds while the gaps stay under about 0.1 s. What was delayed is
# read from the error log, which names each request, never from a clock:
# on a loaded machine neither the time a response takes nor the order the
# requests leave in is certain.
GAP = 0.02


def outcome(res, log):
    """(statuses sorted, set of requests delayed, set refused) from
    staggered()'s result and the limit lines."""
    def named(kind):
        return {m.group(1) for k, m in log if k == kind}
    return sorted(res), named("delaying request"), named("limiting requests")


def limit_requests(server, n):
    """(kind, match of the request line) of the limit lines, once there are n."""
    limit_kinds(server, n)
    out = []
    for line in server.stderr().splitlines():
        for kind in ("delaying request", "limiting requests"):
            if kind in line:
                out.append((kind, re.search(r'request: "GET (\S+) HTTP', line)))
    return out


def test_burst_without_nodelay_delays_the_excess(nginx, gateway, upstream):
    # burst=3: three wait (about 0.5, 1 and 1.5 s at 2r/s); the fifth
    # (excess near 4, over 3) is refused at once.
    def scenario(port, up, srv):
        res = staggered(port, "/delay/", 5, GAP)
        return outcome(res, limit_requests(srv, 4))

    for statuses_, delayed, refused in both(nginx, gateway, upstream, BURSTS, scenario):
        assert statuses_ == [200] * 4 + [503]
        assert len(delayed) == 3 and len(refused) == 1 and not delayed & refused, (delayed, refused)


def test_delay_parameter_delays_only_beyond_it(nginx, gateway, upstream):
    # burst=4 delay=2: excess up to 2 passes at once, near 3 and 4 wait
    # (about 0.5 and 1 s at 2r/s), near 5 is refused.
    def scenario(port, up, srv):
        res = staggered(port, "/partial/", 6, GAP)
        return outcome(res, limit_requests(srv, 3))

    for statuses_, delayed, refused in both(nginx, gateway, upstream, BURSTS, scenario):
        assert statuses_ == [200] * 5 + [503]
        assert len(delayed) == 2 and len(refused) == 1 and not delayed & refused, (delayed, refused)


SEVERAL = """
http {
    limit_req_zone $host zone=global:1m rate=1r/m;
    limit_req_zone $http_x_client zone=perclient:1m rate=1r/m;
    limit_req_zone $host zone=strict:1m rate=1r/m;
    limit_req_zone $host zone=loose:1m rate=1r/m;
    server {
        listen 127.0.0.1:@GW@;
        limit_req zone=strict;
        location /two/ {
            limit_req zone=global burst=2 nodelay;
            limit_req zone=perclient nodelay;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /inherit/ {
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /own/ {
            # A location's own limit_req lines replace the server's.
            limit_req zone=loose burst=5 nodelay;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_several_limits_all_apply_and_rejections_are_not_charged(nginx, gateway, upstream):
    def scenario(port, up, srv):
        seq = []
        # a is stopped by perclient on its second request; those rejected
        # requests are not charged to global (else b would be refused);
        # global then runs out at d (its excess would be 3 > burst 2).
        for client in ("a", "a", "a", "b", "c", "d"):
            seq.append(http(port, "GET", "/two/", headers=[("X-Client", client)]).status)
        return (seq, statuses(port, "/inherit/", 2), statuses(port, "/own/", 3),
                len(up.requests))

    ref, got = both(nginx, gateway, upstream, SEVERAL, scenario)
    assert ref == ([200, 503, 503, 200, 200, 503], [200, 503], [200, 200, 200], 7)
    assert got == ref


NOT_COUNTED = """
http {
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/s;
    server {
        listen 127.0.0.1:@GW@;
        location / {
            limit_req zone=one burst=1 nodelay;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_rejected_requests_are_not_counted(nginx, gateway, upstream):
    def scenario(port, up, srv):
        first = statuses(port, "/", 6)
        # Excess is 2 after the first two; had the 4 rejections counted it
        # would be 6 and still over the burst after a second.
        time.sleep(1.1)
        return first, statuses(port, "/", 2)

    ref, got = both(nginx, gateway, upstream, NOT_COUNTED, scenario)
    assert ref == ([200, 200, 503, 503, 503, 503], [200, 503])
    assert got == ref


KEYS = """
http {
    limit_req_zone $binary_remote_addr zone=byaddr:1m rate=1r/m;
    limit_req_zone $http_x_client zone=byheader:1m rate=1r/m;
    server {
        listen 127.0.0.1:@GW@;
        location /addr/ {
            limit_req zone=byaddr;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /header/ {
            limit_req zone=byheader;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_keys_are_limited_independently(nginx, gateway, upstream):
    def scenario(port, up, srv):
        by_addr = [http_from(src, port, "GET", "/addr/").status
                   for src in ("127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3", "127.0.0.4")]
        by_header = [http(port, "GET", "/header/", headers=[("X-Client", c)]).status
                     for c in ("x", "y", "x", "y")]
        # An empty key is not limited at all.
        no_key = statuses(port, "/header/", 4)
        return by_addr, by_header, no_key

    ref, got = both(nginx, gateway, upstream, KEYS, scenario)
    assert ref == ([200, 200, 503, 503, 200], [200, 200, 503, 503], [200] * 4)
    assert got == ref


DRY_RUN = """
http {
    limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=drystatus:1m rate=1r/m;
    server {
        listen 127.0.0.1:@GW@;
        location /dry/ {
            limit_req zone=dry;
            limit_req_dry_run on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /status/ {
            limit_req zone=drystatus burst=1 nodelay;
            limit_req_dry_run on;
            proxy_set_header X-Limit $limit_req_status;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_dry_run_passes_everything_and_logs(nginx, gateway, upstream):
    def scenario(port, up, srv):
        got = statuses(port, "/dry/", 3)
        time.sleep(0.2)  # let the log lines reach the file
        # excess 1 (not 2: the logged requests are not counted); at 1r/m a
        # slow machine lets up to ~0.05 drain between two requests
        exact = len(re.findall(r'limiting requests, dry run, excess: (?:1\.000|0\.9[5-9]\d) by zone "dry"',
                               srv.stderr()))
        return got, len(up.requests), limit_log(srv), exact

    ref, got = both(nginx, gateway, upstream, DRY_RUN, scenario)
    # The state is updated as without dry run, so the second and third
    # requests are the ones logged, each with excess 1 (not counted).
    line = ("error", 'limiting requests, dry run, excess: ~1 by zone "dry"')
    assert ref == ([200, 200, 200], 3, [line, line], 2)
    assert got == ref


def test_dry_run_limit_req_status_variable(nginx, gateway, upstream):
    def scenario(port, up, srv):
        for _ in range(3):
            assert http(port, "GET", "/status/").status == 200
        return [q.header("X-Limit") for q in up.requests]

    ref, got = both(nginx, gateway, upstream, DRY_RUN, scenario)
    assert ref == ["PASSED", "PASSED", "REJECTED_DRY_RUN"]
    assert got == ref


LOG_LEVELS = """
error_log stderr info;
http {
    limit_req_zone $binary_remote_addr zone=warnz:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=infoz:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=delayz:1m rate=10r/s;
    limit_req_zone $binary_remote_addr zone=noticez:1m rate=10r/s;
    server {
        listen 127.0.0.1:@GW@;
        location /warn/ {
            limit_req zone=warnz;
            limit_req_log_level warn;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /info/ {
            limit_req zone=infoz;
            limit_req_log_level info;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /delay/ {
            limit_req zone=delayz burst=5;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /notice/ {
            limit_req zone=noticez burst=5;
            limit_req_log_level notice;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_log_levels_and_text(nginx, gateway, upstream):
    def scenario(port, up, srv):
        got = []
        for path in ("/warn/", "/info/", "/delay/", "/notice/"):
            got += statuses(port, path, 2)
        time.sleep(0.2)
        return got, limit_log(srv)

    ref, got = both(nginx, gateway, upstream, LOG_LEVELS, scenario)
    # A delay is logged one level below limit_req_log_level (error ->
    # warn, notice -> info), with a comma before "by zone" that the
    # rejection line does not have.
    assert ref == ([200, 503, 200, 503, 200, 200, 200, 200], [
        ("warn", 'limiting requests, excess: ~1 by zone "warnz"'),
        ("info", 'limiting requests, excess: ~1 by zone "infoz"'),
        ("warn", 'delaying request, excess: ~1, by zone "delayz"'),
        ("info", 'delaying request, excess: ~1, by zone "noticez"'),
    ])
    assert got == ref


def test_log_level_below_the_error_log_level_is_not_written(nginx, gateway, upstream):
    conf = LOG_LEVELS.replace("error_log stderr info;", "error_log stderr error;")

    def scenario(port, up, srv):
        got = statuses(port, "/warn/", 2) + statuses(port, "/delay/", 2)
        time.sleep(0.2)
        return got, limit_log(srv)

    ref, got = both(nginx, gateway, upstream, conf, scenario)
    assert ref == ([200, 503, 200, 200], [])
    assert got == ref


# ---------------------------------------------------------------- limit_conn

LIMIT_CONN = """
http {
    limit_conn_zone $binary_remote_addr zone=addr:1m;
    limit_conn_zone $binary_remote_addr zone=addr429:1m;
    limit_conn_zone $binary_remote_addr zone=addrdry:1m;
    limit_conn_zone $binary_remote_addr zone=addr2:1m;
    limit_conn_zone $http_x_client zone=client:1m;
    server {
        listen 127.0.0.1:@GW@;
        location /one/ {
            limit_conn addr 1;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /429/ {
            limit_conn addr429 1;
            limit_conn_status 429;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /dry/ {
            limit_conn addrdry 1;
            limit_conn_dry_run on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /two/ {
            limit_conn addr2 2;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /client/ {
            limit_conn client 1;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""

# Requests whose path ends in "slow" are held at the upstream until the
# test opens the gate, to keep a slot taken for as long as it needs.
GATE = threading.Event()


def slow_handler(req):
    if req.target.split("?")[0].endswith("slow"):
        GATE.wait(10)
        return Reply(200, body=b"slow\n")
    return Reply(200, body=b"fast\n")


class Background:
    """Requests running in threads while the test sends others."""

    def __init__(self):
        self.threads = []
        self.results = {}

    def start(self, name, fn, *args, **kw):
        def run():
            try:
                self.results[name] = fn(*args, **kw).status
            except Exception as e:  # recorded, the test compares results
                self.results[name] = repr(e)

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join(10)
        return self.results


def test_limit_conn_rejects_the_concurrent_extra_request(nginx, gateway, upstream):
    def scenario(port, up, srv):
        got = {}
        for path in ("/one/", "/429/", "/dry/"):
            GATE.clear()
            bg = Background()
            before = len(up.heads)
            bg.start("held", http, port, "GET", path + "slow", timeout=10)
            up.wait_heads(before + 1)
            # The slot is taken while the slow request is in flight.
            got[path + "extra"] = http(port, "GET", path + "fast").status
            got[path + "held_then"] = bg.results.get("held", "in flight")
            GATE.set()
            got[path + "held"] = bg.join()["held"]
            # ... and given back when it completes.
            got[path + "after"] = http(port, "GET", path + "fast").status
        time.sleep(0.2)
        return got, limit_log(srv)

    ref, got = both(nginx, gateway, upstream, LIMIT_CONN, scenario, handler=slow_handler)
    assert ref == ({
        "/one/extra": 503, "/one/held_then": "in flight", "/one/held": 200, "/one/after": 200,
        "/429/extra": 429, "/429/held_then": "in flight", "/429/held": 200, "/429/after": 200,
        "/dry/extra": 200, "/dry/held_then": "in flight", "/dry/held": 200, "/dry/after": 200,
    }, [
        ("error", 'limiting connections by zone "addr"'),
        ("error", 'limiting connections by zone "addr429"'),
        ("error", 'limiting connections, dry run, by zone "addrdry"'),
    ])
    assert got == ref


def test_limit_conn_counts_per_key(nginx, gateway, upstream):
    def scenario(port, up, srv):
        GATE.clear()
        bg = Background()
        # Two slots per address: two slow requests from .2 fill them.
        bg.start("a1", http_from, "127.0.0.2", port, "GET", "/two/slow", timeout=10)
        bg.start("a2", http_from, "127.0.0.2", port, "GET", "/two/slow", timeout=10)
        # One slot per X-Client.
        bg.start("x1", http, port, "GET", "/client/slow", headers=[("X-Client", "x")],
                 timeout=10)
        up.wait_heads(3)
        now = {
            "a3": http_from("127.0.0.2", port, "GET", "/two/fast").status,
            "b1": http_from("127.0.0.3", port, "GET", "/two/fast").status,
            "x2": http(port, "GET", "/client/fast", headers=[("X-Client", "x")]).status,
            "y1": http(port, "GET", "/client/fast", headers=[("X-Client", "y")]).status,
            # No X-Client: an empty key is not limited.
            "none": http(port, "GET", "/client/fast").status,
        }
        GATE.set()
        held = bg.join()
        return now, held

    ref, got = both(nginx, gateway, upstream, LIMIT_CONN, scenario, handler=slow_handler)
    assert ref == ({"a3": 503, "b1": 200, "x2": 503, "y1": 200, "none": 200},
                   {"a1": 200, "a2": 200, "x1": 200})
    assert got == ref


def test_limit_conn_slot_is_per_request_on_a_keepalive_connection(nginx, gateway, upstream):
    # NGINX counts requests being processed, not open connections: an
    # idle keepalive connection holds no slot.
    def scenario(port, up, srv):
        with BoundClient(port, "127.0.0.5") as idle:
            idle.request("GET", "/one/fast")
            first = idle.read_response().status
            other = http_from("127.0.0.5", port, "GET", "/one/fast").status
            idle.request("GET", "/one/fast")
            return first, other, idle.read_response().status

    ref, got = both(nginx, gateway, upstream, LIMIT_CONN, scenario, handler=slow_handler)
    assert ref == (200, 200, 200)
    assert got == ref


# ---------------------------------------------------------------- portvakt's own

HEADERS = """
http {
    limit_req_zone $binary_remote_addr zone=api:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=plain:1m rate=1r/m;
    server {
        listen 127.0.0.1:@GW@;
        location /api/ {
            limit_req zone=api burst=3 nodelay;
            limit_req_headers on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /plain/ {
            limit_req zone=plain;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""

SF_PARAM = re.compile(r";\s*([a-z]+)=(\d+)")


def sf_params(value):
    """Parameters of a structured-field item like '"api";r=3;t=60'."""
    assert value is not None
    assert re.match(r'^\s*"[^"]+"', value), value
    return {k: int(v) for k, v in SF_PARAM.findall(value)}


@pytest.mark.portvakt_only("RateLimit headers are a portvakt extension")
def test_ratelimit_headers(gateway, upstream, port):
    up = upstream()
    gw = gateway(HEADERS, GW=port(), UP=up.port).port
    t0 = time.monotonic()
    for i in range(4):
        r = http(gw, "GET", "/api/x")
        assert r.status == 200
        # 1r/m is NGINX's 16 thousandths of a request per second, shown as
        # 1 request per 60 s
        assert sf_params(r.header("RateLimit-Policy")) == {"q": 1, "w": 60}
        assert r.header("RateLimit-Policy").lstrip().startswith('"api"')
        now = sf_params(r.header("RateLimit"))
        assert r.header("RateLimit").lstrip().startswith('"api"')
        # Four at once are allowed (burst 3 + 1): i used, 3 - i left. The
        # bucket then holds i requests, which drain at 16/1000 per second:
        # t is i * 62.5 s rounded up, less what drained while the test ran
        # (NGINX's integer arithmetic: 16 * ms / 1000 per step).
        assert now["r"] == 3 - i, now
        drained = int(16 * (time.monotonic() - t0))  # thousandths of a request, at most
        hi = -(-i * 1000 // 16)
        lo = -(-(i * 1000 - drained) // 16)
        assert lo <= now["t"] <= hi, (i, now, drained)
    r = http(gw, "GET", "/api/x")
    assert r.status == 503
    # The fifth is one request over the burst: the next can pass once that
    # one has drained, 62.5 s rounded up, less what drained already.
    drained = int(16 * (time.monotonic() - t0))
    lo, hi = -(-(1000 - drained) // 16), 63
    now = sf_params(r.header("RateLimit"))
    assert now["r"] == 0 and lo <= now["t"] <= hi, (now, drained)
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit() and int(retry) == now["t"], (retry, now)
    assert len(up.requests) == 4


@pytest.mark.portvakt_only("NGINX sends no Retry-After with a limit_req rejection")
def test_rejection_carries_retry_after_without_headers(gateway, upstream, port):
    up = upstream()
    gw = gateway(HEADERS, GW=port(), UP=up.port).port
    r = http(gw, "GET", "/plain/x")
    assert r.status == 200 and not r.has("RateLimit") and not r.has("Retry-After")
    r = http(gw, "GET", "/plain/x")
    assert r.status == 429
    assert r.header("Retry-After", "").isdigit() and int(r.header("Retry-After")) >= 1
    assert not r.has("RateLimit") and not r.has("RateLimit-Policy")


CONSUMER_KEYS = """
http {
    limit_req_zone $consumer zone=perconsumer:1m rate=1r/m;
    limit_req_zone $jwt_claim_sub zone=persub:1m rate=1r/m;
    server {
        listen 127.0.0.1:@GW@;
        location /keys/ {
            auth_api_key_file @KEYS@;
            limit_req zone=perconsumer burst=1 nodelay;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /jwt/ {
            auth_jwt "api";
            auth_jwt_key_file @JWKS@;
            limit_req zone=persub burst=1 nodelay;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


@pytest.mark.portvakt_only("$consumer and $jwt_claim_* come from portvakt's auth extensions")
def test_limits_per_consumer(gateway, upstream, port, tmp_path):
    keys = tmp_path / "keys.txt"
    # Two keys of one consumer share its limit.
    keys.write_text("key-a1 alpha\nkey-a2 alpha\nkey-b1 beta\n")
    secret = b"s" * 32
    jwks = tmp_path / "jwks.json"
    jwks.write_text(jwks_text(JwtKey.hmac(secret, kid="k")))
    up = upstream()
    gw = gateway(CONSUMER_KEYS, GW=port(), UP=up.port, KEYS=keys, JWKS=jwks).port

    def key(k):
        return http(gw, "GET", "/keys/", headers=[("X-API-Key", k)]).status

    # The limit check runs after authentication has named the consumer
    # (an unknown key is a 401, never a 503).
    assert [key("key-a1"), key("key-a2"), key("key-a1"), key("key-b1"),
            key("key-b1"), key("key-b1"), key("nope")] == [200, 200, 503, 200, 200, 503, 401]

    def sub(s):
        now = int(time.time())
        token = make_jwt({"sub": s, "exp": now + 300}, JwtKey.hmac(secret, kid="k"), "HS256")
        return http(gw, "GET", "/jwt/", headers=[("Authorization", "Bearer " + token)]).status

    assert [sub("u1"), sub("u1"), sub("u1"), sub("u2"), sub("u2"), sub("u2")] == \
        [200, 200, 503, 200, 200, 503]
