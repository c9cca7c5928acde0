"""Client keepalive as NGINX decides it: keepalive_timeout's second value
(the Keep-Alive field), keepalive_requests per location, keepalive_time,
keepalive_disable by User-Agent, and $connection_time; each connection's
answers compared with NGINX's for the same config."""

import os
import time

import pytest

from conftest import NGINX, Client, free_port

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        keepalive_timeout 30 9;
        add_header X-Conn "$connection_requests:$connection_time";
        location / { return 200 "ok\\n"; }
        location /nohdr { keepalive_timeout 30; return 200 "ok\\n"; }
        location /off { keepalive_timeout 30 0; return 200 "ok\\n"; }
        location /two { keepalive_requests 2; return 200 "ok\\n"; }
        location /time { keepalive_time 1s; return 200 "ok\\n"; }
        location /safari { keepalive_disable safari; return 200 "ok\\n"; }
        location /none { keepalive_disable none; return 200 "ok\\n"; }
        location /zero { keepalive_timeout 0; return 200 "ok\\n"; }
    }
}
"""

MSIE5 = "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)"
MSIE6_SV1 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
MSIE7 = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"
SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_3) AppleWebKit/534.55.3 Safari/7534.48.3"
CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_3) Chrome/20.0 Safari/536.11"

# (name, [(method, target, user agent), ...], pause before each later request)
CASES = [
    ("plain", [("GET", "/", None)] * 2, 0),
    ("no header", [("GET", "/nohdr", None)] * 2, 0),
    ("header off", [("GET", "/off", None)] * 2, 0),
    ("requests", [("GET", "/two", None)] * 3, 0),
    ("msie5 post", [("POST", "/", MSIE5), ("GET", "/", None)], 0),
    ("msie5 get", [("GET", "/", MSIE5)] * 2, 0),
    ("msie6 sv1 post", [("POST", "/", MSIE6_SV1)] * 2, 0),
    ("msie7 post", [("POST", "/", MSIE7)] * 2, 0),
    ("safari default", [("GET", "/", SAFARI)] * 2, 0),
    ("safari disabled", [("GET", "/safari", SAFARI)] * 2, 0),
    ("chrome not safari", [("GET", "/safari", CHROME)] * 2, 0),
    ("none", [("POST", "/none", MSIE5)] * 2, 0),
    ("zero", [("GET", "/zero", None)] * 2, 0),
    ("time", [("GET", "/time", None)] * 3, 1.1),
]


def conversation(port, reqs, pause):
    """What each answer said of the connection, and whether the
    connection carried the next request."""
    out = []
    with Client(port) as c:
        for i, (method, target, ua) in enumerate(reqs):
            if i and pause:
                time.sleep(pause)
            headers = [("User-Agent", ua)] if ua else []
            try:
                c.request(method, target, headers=headers, body=b"x" if method == "POST" else None)
                r = c.read_response(method)
            except Exception:  # the connection was closed after the answer before
                out.append("closed")
                break
            conn = r.header("connection")
            out.append((r.status, conn, r.header("keep-alive"),
                        (r.header("x-conn") or "").split(":")[0]))
            if conn != "keep-alive":
                break
    return out


def answers(start):
    port = free_port()
    start(CONF, GW=port)
    return {name: conversation(port, reqs, pause) for name, reqs, pause in CASES}


def test_keepalive_as_nginx(portvakt, nginx):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got = answers(portvakt)
    assert got == answers(nginx)
    ka, close = (200, "keep-alive", "timeout=9", "1"), (200, "close", None, "1")
    assert got["plain"] == [ka, (200, "keep-alive", "timeout=9", "2")]
    # a location's keepalive_timeout alone inherits the server's header value
    assert got["no header"][0] == ka
    assert got["header off"][0] == (200, "keep-alive", None, "1")
    assert [a[1] for a in got["requests"]] == ["keep-alive", "close"]
    assert got["msie5 post"] == [close]
    assert got["msie5 get"][0] == ka
    assert got["msie6 sv1 post"][0] == ka and got["msie7 post"][0] == ka
    assert got["safari default"][0] == ka
    assert got["safari disabled"] == [close]
    assert got["chrome not safari"][0] == ka
    assert got["none"][0] == ka
    assert got["zero"] == [(200, "close", None, "1")]
    # keepalive_time: the request after the connection's first second is its last
    assert [a[1] for a in got["time"]] == ["keep-alive", "close"]


def test_connection_time(gateway, port):
    gw = gateway(CONF, GW=port())
    with Client(gw.port) as c:
        c.request("GET", "/")
        first = c.read_response().header("x-conn")
        time.sleep(0.3)
        c.request("GET", "/")
        second = c.read_response().header("x-conn")
    n1, t1 = first.split(":")
    n2, t2 = second.split(":")
    assert (n1, n2) == ("1", "2")
    for t in (t1, t2):
        secs, ms = t.split(".")
        assert secs.isdigit() and len(ms) == 3 and ms.isdigit(), t
    assert float(t2) - float(t1) >= 0.299  # both cut to the millisecond
