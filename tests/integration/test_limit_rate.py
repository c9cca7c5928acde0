"""limit_rate, limit_rate_after, $limit_rate (also set with `set`) and the
upstream's X-Accel-Limit-Rate, as NGINX's: the rate in effect is read
from the access log, compared with NGINX's; the pace itself is checked
only by a lower bound on the time a limited response takes, which a
loaded machine can only lengthen."""

import os
import time

import pytest

from conftest import NGINX, Client, Reply, http, wait_for

CONF = """
http {
    log_format rate "$uri $limit_rate $status $body_bytes_sent";
    log_format urt "$uri $upstream_response_time $status $body_bytes_sent";
    access_log /dev/stdout rate;
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { proxy_pass http://up; }
        location /lim { limit_rate 100k; proxy_pass http://up; }
        location /after { limit_rate 100k; limit_rate_after 1m; proxy_pass http://up; }
        location /var { limit_rate $arg_r; limit_rate_after $arg_a; proxy_pass http://up; }
        location /set { limit_rate 1k; set $limit_rate 200k; proxy_pass http://up; }
        location /bad { set $limit_rate 12q; proxy_pass http://up; }
        location /ign { proxy_ignore_headers X-Accel-Limit-Rate; limit_rate 5k; proxy_pass http://up; }
        location /if {
            if ($arg_slow) { limit_rate 3k; }
            proxy_pass http://up;
        }
        location /ret { limit_rate 7k; return 200 "text"; }
        location /plim {
            access_log /dev/stdout urt;
            proxy_limit_rate 100k;
            proxy_pass http://up;
        }
        location /pslow {
            access_log /dev/stdout urt;
            proxy_limit_rate 1;
            location /pslow/off { proxy_buffering off; proxy_pass http://up; }
            proxy_pass http://up;
        }
    }
}
"""

SIZE = 300 * 1024


def answer(req):
    headers = []
    if "xal" in req.target:
        headers.append(("X-Accel-Limit-Rate", "123456"))
    if "xab" in req.target:
        headers.append(("X-Accel-Buffering", "no"))
    size = SIZE if "big" in req.target else 12000 if "mid" in req.target else 100
    return Reply(200, headers=headers, body_size=size)


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream(handler=answer)
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port)
    g.up = up
    return g


def logged(gw, uri):
    """$limit_rate, $status and $body_bytes_sent of uri's access log line."""
    line = wait_for(lambda: [l for l in gw.access_log_lines() if l.split()[0] == uri],
                    what="the log line of " + uri)[-1]
    return line.split()[1:]


@pytest.mark.parametrize("target,uri,rate", [
    ("/plain", "/plain", "0"),
    ("/lim", "/lim", "102400"),
    ("/after", "/after", "102400"),
    ("/var?r=12k&a=256", "/var", "12288"),
    ("/var", "/var", "0"),
    ("/set", "/set", "204800"),
    ("/bad", "/bad", "0"),
    ("/xal", "/xal", "123456"),
    ("/lim-xal", "/lim-xal", "123456"),
    ("/ign-xal", "/ign-xal", "5120"),
    ("/if?slow=1", "/if", "3072"),
    ("/if", "/if", "0"),
    ("/ret", "/ret", "7168"),
])
def test_rate_in_effect_as_nginx(gw, target, uri, rate):
    r = http(gw.port, "GET", target, timeout=30)
    assert r.status == 200
    assert logged(gw, uri)[0] == rate


def test_invalid_set_value_is_logged(gw):
    assert http(gw.port, "GET", "/bad", timeout=30).status == 200
    wait_for(lambda: 'invalid $limit_rate "12q"' in gw.stderr(), what="the error log line")


def test_limited_response_takes_its_time(gw):
    """300 KiB at 100 KiB/s, the first second's worth at once (NGINX's
    reckoning): at least about two seconds; the bound asserted is one."""
    t = time.monotonic()
    r = http(gw.port, "GET", "/lim-big", timeout=60)
    took = time.monotonic() - t
    assert r.status == 200 and len(r.body) == SIZE
    assert took >= 1.0, took
    assert logged(gw, "/lim-big") == ["102400", "200", str(SIZE)]


def test_limit_after_covers_the_response(gw):
    """limit_rate_after 1m: a 300 KiB response is not limited; the rate is
    still the one in effect."""
    r = http(gw.port, "GET", "/after-big", timeout=60)
    assert r.status == 200 and len(r.body) == SIZE
    assert logged(gw, "/after-big") == ["102400", "200", str(SIZE)]


def test_slow_response_reaches_every_byte_over_keepalive(gw):
    """Two limited responses in a row on one client connection."""
    with Client(gw.port, timeout=60) as c:
        for _ in range(2):
            c.request("GET", "/var-big?r=200k")
            r = c.read_response()
            assert r.status == 200 and len(r.body) == SIZE


def test_proxy_limit_rate_paces_the_upstream_read(gw):
    """proxy_limit_rate 100k: 300 KiB read from the upstream in no less
    than about two seconds (the first second's worth at once); the bound
    asserted is one. The client side has no limit."""
    r = http(gw.port, "GET", "/plim-big", timeout=60)
    assert r.status == 200 and len(r.body) == SIZE
    took, status, sent = logged(gw, "/plim-big")
    assert float(took) >= 1.0, took
    assert (status, sent) == ("200", str(SIZE))


@pytest.mark.parametrize("target", ["/pslow/off-big", "/pslow/xab-big"])
def test_proxy_limit_rate_needs_buffering(gw, target):
    """At one byte a second the response could never finish while
    limited: without buffering (proxy_buffering off, or the upstream's
    X-Accel-Buffering: no) the rate does not apply, as NGINX's."""
    r = http(gw.port, "GET", target, timeout=60)
    assert r.status == 200 and len(r.body) == SIZE



@pytest.mark.parametrize("target,rate", [("/var-big?r=4k", 4096), ("/var-mid?r=2k", 2048)])
def test_each_write_is_capped_at_the_allowance(gw, target, rate):
    """A write takes at most what the rate allows, never all that is
    queued: the upstream hands over 16 KiB and more at once, and a 12 KB
    answer is queued whole when the proxy finishes. In half a second at
    most two seconds' worth can have left, however the second boundaries
    fall; the bound asserted is three."""
    with Client(gw.port) as c:
        c.request("GET", target)
        got = 0
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            c.sock.settimeout(max(end - time.monotonic(), 0.01))
            try:
                data = c.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            got += len(data)
    assert 0 < got <= 3 * rate, got
