"""`return 444` and the body a local answer skips, as NGINX's: 444 closes
the connection without a response (logged with status 444); a chunked
body whose framing is broken makes the answer a 400. Both run against
NGINX too."""

import os

import pytest

from conftest import NGINX, Client, wait_for

CONF = """
http {
    log_format s "$uri $status";
    access_log /dev/stdout s;
    server {
        listen 127.0.0.1:@GW@;
        location /close { return 444; }
        location /text { return 200 "TEST\\n"; }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    return (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port())


def everything(gw, data):
    with Client(gw.port) as c:
        c.send(data)
        out = b""
        while True:
            d = c.sock.recv(65536)
            if not d:
                return out
            out += d


@pytest.mark.parametrize("body", [b"", b"Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n"])
def test_return_444_closes_without_a_response(gw, body):
    head = b"GET /close HTTP/1.1\r\nHost: x\r\n"
    assert everything(gw, head + (body or b"") + b"\r\n") == b""
    wait_for(lambda: "/close 444" in gw.access_log_lines(), what="the log line")


def test_broken_chunked_body_skipped_is_400(gw):
    r = everything(gw, b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n4\r\nSEE-THIS\r\n0\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 400 "), r
    good = everything(gw, b"GET /text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n4\r\nSEE-\r\n0\r\n\r\n")
    assert good.startswith(b"HTTP/1.1 200 ") and good.endswith(b"TEST\n"), good
