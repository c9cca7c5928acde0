"""$pipe: "p" for a request whose bytes were already read behind the one
before it on the connection (pipelined), "." otherwise; beside NGINX."""

import os

import pytest

from conftest import NGINX, Client

CONF = """
http {
    log_format p "$uri $pipe";
    access_log /dev/stdout p;
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "$pipe"; }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    return (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port())


def req(uri):
    return ("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % uri).encode()


def test_pipelined_requests_are_marked(gw):
    with Client(gw.port) as c:
        c.send(req("/1") + req("/2") + req("/3"))
        bodies = [c.read_response().body for _ in range(3)]
        assert bodies == [b".", b"p", b"p"]
        # the pipeline drained: the next request arrives alone
        c.request("GET", "/4")
        assert c.read_response().body == b"."
        c.send(req("/5") + req("/6"))
        assert [c.read_response().body for _ in range(2)] == [b".", b"p"]
    lines = gw.wait_access_log(6)
    assert sorted(lines) == ["/1 .", "/2 p", "/3 p", "/4 .", "/5 .", "/6 p"]
