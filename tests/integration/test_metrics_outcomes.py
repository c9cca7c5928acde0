"""portvakt_metrics' outcome counters, each against what the test made
happen: authentication outcomes per method, limit_req and limit_conn per
zone, retries and failures, upstream connections opened, reused, idle and
closed by cause, requests in progress, TLS handshakes, resumptions and
failures, HTTP/2 streams and resets; the series fixed by the config
whatever requests carry; and the histogram's p95 beside the p95 the
client measured."""

import socket
import ssl
import subprocess
import threading
import time

import h2.config
import h2.connection
import h2.errors
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import EchoUpstream, Reply, free_port, http, wait_for
from tls_pki import Pki

CONF = """\
worker_processes 2;
error_log stderr warn;
http {
    access_log off;
    limit_req_zone $binary_remote_addr zone=slow:1m rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=one:1m;
    upstream app {
        server 127.0.0.1:@DEAD@ max_fails=1 fail_timeout=60s;
        server @UP@;
        keepalive 4;
    }
    upstream nopool { server @UP@; }
    server {
        listen 127.0.0.1:@PORT@;
        listen 127.0.0.1:@TLS@ ssl;
        listen 127.0.0.1:@H2@ http2;
        server_name ops.test;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_protocols TLSv1.2;
        location /api/ { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location /plain/ { proxy_pass http://nopool; }
        location /held/ { limit_conn one 1; proxy_pass http://nopool; }
        location = /limited { limit_req zone=slow; proxy_pass http://nopool; }
        location = /basic { auth_basic "ops"; auth_basic_user_file @HT@; proxy_pass http://nopool; }
        location = /sub-yes { auth_request /yes; proxy_pass http://nopool; }
        location = /sub-no { auth_request /no; proxy_pass http://nopool; }
        location = /yes { internal; return 204; }
        location = /no { internal; return 403; }
        location = /local { return 204; }
        location = /metrics { portvakt_metrics; }
    }
}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.ops = p.issue("ops", "ops.test", "ec", sans=["ops.test"])
    return p


@pytest.fixture
def gate():
    g = threading.Event()
    yield g
    g.set()


@pytest.fixture
def app(gate):
    def answer(req):
        if req.target.startswith("/held/"):
            gate.wait(10)
        return Reply(status=200, body=b"ok\n")
    u = EchoUpstream(handler=answer)
    yield u
    u.stop()


@pytest.fixture
def ops(portvakt, app, pki, tmp_path):
    ht = tmp_path / "ops.htpasswd"
    pw = subprocess.run(["openssl", "passwd", "-apr1", "s3cret"], capture_output=True, check=True).stdout.decode().strip()
    ht.write_text("ops:%s\n" % pw)
    ports = {"PORT": free_port(), "TLS": free_port(), "H2": free_port(), "DEAD": free_port()}
    portvakt(CONF, UP=app.addr, CRT=pki.ops[0], KEY=pki.ops[1], HT=str(ht), **ports)
    return ports


def samples(port):
    r = http(port, target="/metrics")
    assert r.status == 200
    out = {}
    for fam in text_string_to_metric_families(r.body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(ss, name, **labels):
    return ss.get((name, tuple(sorted(labels.items()))))


def settled(port, pred, what):
    """The samples once pred(samples) holds (a request is counted as it ends)."""
    return wait_for(lambda: (lambda s: pred(s) and s)(samples(port)), what=what)


def test_auth_outcomes_per_method(ops):
    port = ops["PORT"]
    assert http(port, target="/basic").status == 401
    assert http(port, target="/basic", headers=[("Authorization", "Basic b3BzOndyb25n")]).status == 401  # ops:wrong
    for _ in range(2):
        assert http(port, target="/basic", headers=[("Authorization", "Basic b3BzOnMzY3JldA==")]).status == 200
    assert http(port, target="/sub-yes").status == 200
    for _ in range(3):
        assert http(port, target="/sub-no").status == 403
    ss = settled(port, lambda s: val(s, "portvakt_auth_total", method="request", outcome="403") == 3, "auth counted")
    assert val(ss, "portvakt_auth_total", method="basic", outcome="401") == 2
    assert val(ss, "portvakt_auth_total", method="basic", outcome="passed") == 2
    assert val(ss, "portvakt_auth_total", method="basic", outcome="403") == 0
    assert val(ss, "portvakt_auth_total", method="request", outcome="passed") == 1
    assert val(ss, "portvakt_auth_total", method="jwt", outcome="passed") == 0


def test_limit_outcomes_and_requests_in_progress(ops, app, gate):
    port = ops["PORT"]
    assert http(port, target="/limited").status == 200
    assert http(port, target="/limited").status == 503
    assert http(port, target="/limited").status == 503
    held = threading.Thread(target=lambda: http(port, target="/held/1"))
    held.start()
    wait_for(lambda: any(h.target == "/held/1" for h in app.heads), what="the held request at the upstream")
    assert http(port, target="/held/2").status == 503  # limit_conn one 1
    ss = settled(port, lambda s: val(s, "portvakt_limit_conn_total", zone="one", outcome="rejected") == 1,
                 "limit_conn counted")
    # the held request and this scrape are in progress
    assert val(ss, "portvakt_server_requests_active", server="ops.test") == 2
    assert val(ss, "portvakt_upstream_server_active", upstream="nopool", server=app.addr) == 1
    assert val(ss, "portvakt_limit_conn_total", zone="one", outcome="passed") == 1
    assert val(ss, "portvakt_limit_req_total", zone="slow", outcome="passed") == 1
    assert val(ss, "portvakt_limit_req_total", zone="slow", outcome="rejected") == 2
    assert val(ss, "portvakt_limit_req_total", zone="slow", outcome="delayed") == 0
    gate.set()
    held.join()
    ss = settled(port, lambda s: val(s, "portvakt_server_requests_active", server="ops.test") == 1, "the held one ended")
    assert val(ss, "portvakt_upstream_server_active", upstream="nopool", server=app.addr) == 0


def test_retries_and_connections_by_cause(ops, app):
    port, dead = ops["PORT"], "127.0.0.1:%d" % ops["DEAD"]
    for i in range(6):
        assert http(port, target="/api/%d" % i).status == 200
    for i in range(3):
        assert http(port, target="/plain/%d" % i).status == 200
    ss = settled(port, lambda s: val(s, "portvakt_location_requests_total", server="ops.test", location="/plain/",
                                     method="GET") == 3, "every request counted")
    live = {"upstream": "app", "server": app.addr}
    refused = val(ss, "portvakt_upstream_server_failures_total", upstream="app", server=dead, cause="connect")
    assert refused >= 1
    assert val(ss, "portvakt_upstream_retries_total", upstream="app") == refused
    assert val(ss, "portvakt_upstream_server_requests_total", **live) == 6
    assert val(ss, "portvakt_upstream_server_state", upstream="app", server=dead, state="failed") == 1
    # every connection opened is idle in a pool or closed, by one cause
    opened = val(ss, "portvakt_upstream_connections_opened_total", **live)
    reused = val(ss, "portvakt_upstream_connections_reused_total", **live)
    idle = val(ss, "portvakt_upstream_connections_idle", **live)
    causes = ("error", "not_reusable", "pool_full", "idle_timeout", "peer_closed", "shutdown")
    closed = sum(val(ss, "portvakt_upstream_connections_closed_total", cause=c, **live) for c in causes)
    assert opened + reused == 6 and idle >= 1 and opened == idle + closed, (opened, reused, idle, closed)
    # no keepalive: each of the three closed as not reusable
    plain = {"upstream": "nopool", "server": app.addr}
    assert val(ss, "portvakt_upstream_connections_opened_total", **plain) == 3
    assert val(ss, "portvakt_upstream_connections_closed_total", cause="not_reusable", **plain) == 3
    assert val(ss, "portvakt_upstream_connections_idle", **plain) == 0


def test_tls_handshakes_resumptions_and_failures(ops, pki):
    port = ops["TLS"]
    ctx = ssl.create_default_context(cafile=pki.ca[0])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def get(session=None):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="ops.test", session=session) as s:
                s.sendall(b"GET /local HTTP/1.1\r\nHost: ops.test\r\nConnection: close\r\n\r\n")
                while s.recv(4096):
                    pass
                return s.session, s.session_reused

    sess, reused = get()
    assert not reused
    _, reused = get(sess)
    assert reused
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x04\x01\x00\x00\x00")  # a ClientHello of no length
        raw.recv(4096)
    ss = settled(ops["PORT"], lambda s: val(s, "portvakt_tls_handshake_failures_total") == 1, "the failed handshake")
    assert val(ss, "portvakt_tls_handshakes_total") == 2
    assert val(ss, "portvakt_tls_sessions_resumed_total") == 1


def test_http2_streams_and_resets(ops):
    port = ops["H2"]
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    hdrs = [(":method", "GET"), (":scheme", "http"), (":authority", "ops.test"), (":path", "/local")]
    for sid in (1, 3, 5):
        conn.send_headers(sid, hdrs, end_stream=True)
    conn.send_headers(7, [(":method", "POST")] + hdrs[1:], end_stream=False)
    conn.reset_stream(7, h2.errors.ErrorCodes.CANCEL)
    sock.sendall(conn.data_to_send())
    # a stream is counted as it opens, its response as it ends (after the
    # write): wait for both
    ss = settled(ops["PORT"], lambda s: val(s, "portvakt_http2_streams_total") == 4
                 and val(s, "portvakt_http2_stream_resets_total") == 1
                 and val(s, "portvakt_location_responses_total", server="ops.test", location="= /local",
                         code="2xx") >= 3, "four streams, one reset, three answers")
    sock.close()
    assert val(ss, "portvakt_http2_streams_total") == 4


def series(port):
    """The set of (name, labels) of every sample, values aside."""
    return set(samples(port))


def test_series_fixed_by_the_config_not_by_requests(ops, app):
    """Requests with random methods, hosts, URIs, arguments and header
    fields, through every kind of location, add no series: the set of
    (name, labels) after them is the set before."""
    port = ops["PORT"]
    for t in ("/api/x", "/plain/x", "/local", "/nowhere", "/basic", "/limited", "/sub-no"):
        http(port, target=t)
    settled(port, lambda s: val(s, "portvakt_location_requests_total", server="ops.test", location="= /limited",
                                method="GET") == 1, "warm-up counted")
    before = series(port)
    for i in range(60):
        method = ("GET", "FOO%d" % i, "PROPFIND", "DELETE")[i % 4]
        host = "h%d.example" % i
        target = ("/api/", "/plain/", "/x%d/" % i, "/local", "/limited")[i % 5] + "r%d?a%d=%d" % (i, i, i)
        r = http(port, method=method, target=target, headers=[("Host", host), ("X-Rand-%d" % i, "v"),
                                                              ("Authorization", "Basic %d" % i)])
        assert r.status > 0
    settled(port, lambda s: sum(v for (n, l), v in s.items() if n == "portvakt_server_requests_total") >= 70,
            "the hostile requests counted")
    after = series(port)
    assert after == before, (sorted(after - before)[:10], sorted(before - after)[:10])


def histogram_quantile(q, buckets):
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def test_p95_beside_the_client_measured_p95(portvakt):
    """An upstream sleeping 10, 50 or 200 ms in a known mix (50 %, 30 %,
    20 %), the client timing each request on its own keepalive connection:
    histogram_quantile's p95 is within 10 % of the p95 the client
    measured."""
    def answer(req):
        # the response in one write: no small second segment held back
        # by Nagle until the gateway's delayed ACK
        return Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
                     delay=int(req.target.rsplit("/", 1)[1]) / 1000.0)
    up = EchoUpstream(handler=answer)
    try:
        port = free_port()
        portvakt("""
worker_processes 2;
error_log stderr warn;
http {
    access_log off;
    upstream app { server @UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@PORT@;
        location /sleep/ { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location = /metrics { portvakt_metrics; }
    }
}
""", PORT=port, UP=up.addr)
        mix = [10] * 25 + [50] * 15 + [200] * 10
        client_ms = []
        for ms in mix:
            t0 = time.monotonic()
            assert http(port, target="/sleep/%d" % ms).status == 200
            client_ms.append((time.monotonic() - t0) * 1000)
        want = sorted(client_ms)[int(0.95 * len(client_ms)) - 1]

        def buckets():
            ss = samples(port)
            return [(float(dict(l)["le"]), v) for (n, l), v in ss.items()
                    if n == "portvakt_location_request_duration_seconds_bucket" and dict(l).get("location") == "/sleep/"]
        b = wait_for(lambda: (lambda b: b and max(c for _, c in b) == len(mix) and b)(buckets()), what="every request")
        p95 = histogram_quantile(0.95, b) * 1000
        assert abs(p95 - want) <= 0.10 * want, (p95, want, sorted(client_ms)[-6:])
    finally:
        up.stop()
