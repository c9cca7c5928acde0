"""$upstream_bytes_sent, $upstream_bytes_received and
$upstream_response_length as NGINX's: per try, in NGINX's list format;
the bytes written to the upstream and read from it, and of those the
response body as it came (chunked framing included). Each is checked
against what the upstream saw and sent, under portvakt and NGINX."""

import os

import pytest

from conftest import NGINX, Reply, http, wait_for

CONF = """
http {
    log_format b "$uri $upstream_bytes_sent $upstream_bytes_received $upstream_response_length $status";
    access_log /dev/stdout b;
    upstream two { server 127.0.0.1:@DEAD@; server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://127.0.0.1:@UP@; }
        location /two { proxy_next_upstream error; proxy_pass http://two; }
        location /none { return 200 "x"; }
    }
}
"""

PLAIN = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


def answer(req):
    return Reply(raw=CHUNKED if "chunked" in req.target else PLAIN, close=True)


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream(handler=answer)
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port, DEAD=port())
    g.up = up
    return g


def logged(gw, uri):
    line = wait_for(lambda: [l for l in gw.access_log_lines() if l.split()[0] == uri],
                    what="the log line of " + uri)[-1]
    return line.split(" ", 1)[1].rsplit(" ", 1)[0]


@pytest.mark.parametrize("uri,raw,head", [
    ("/plain", PLAIN, PLAIN.index(b"\r\n\r\n") + 4),
    ("/chunked", CHUNKED, CHUNKED.index(b"\r\n\r\n") + 4),
])
def test_bytes_of_one_try(gw, uri, raw, head):
    assert http(gw.port, "POST", uri, body=b"abc").status == 200
    got = gw.up.last()
    sent = len(got.raw_head) + 3
    assert logged(gw, uri) == "%d %d %d" % (sent, len(raw), len(raw) - head)


def test_a_failed_try_is_listed(gw):
    """The first server refuses the connection: nothing sent or read."""
    assert http(gw.port, "GET", "/two").status == 200
    sent = len(gw.up.last().raw_head)
    assert logged(gw, "/two") == "0, %d 0, %d 0, %d" % (sent, len(PLAIN), 10)


def test_no_upstream_no_value(gw):
    assert http(gw.port, "GET", "/none").status == 200
    assert logged(gw, "/none") == "- - -"
