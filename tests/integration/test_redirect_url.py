"""How a redirect's Location is written (NGINX's header filter):
absolute_redirect, port_in_redirect and server_name_in_redirect, for
`return`, the static module's directory redirect, a location's auto
redirect and a Location rewritten by proxy_redirect; each case compared
with NGINX."""

import os

import pytest

from conftest import NGINX, Reply, free_port, raw
from tls_pki import Pki, https_get

CONF = """
http {
    upstream up { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        server_name Example.COM www.example.com;
        root @ROOT@;
        location = /ret { return 302 /target?a=1; }
        location = /off { absolute_redirect off; return 301 /target; }
        location = /noport { port_in_redirect off; return 301 /target; }
        location = /named { server_name_in_redirect on; return 301 /target; }
        location = /named-noport {
            server_name_in_redirect on;
            port_in_redirect off;
            return 301 /target;
        }
        location = /full { absolute_redirect off; return 301 http://other.test/x; }
        location /dir/ { }
        location /reldir/ { absolute_redirect off; alias @ROOT@/dir/; }
        location /api/ { proxy_pass http://up; }
        location /rw/ {
            port_in_redirect off;
            proxy_redirect http://127.0.0.1:@UP@/ /;
            proxy_pass http://up;
        }
    }
    server {
        listen 127.0.0.1:@GW2@;
        absolute_redirect off;
        location = /ret { return 301 /target; }
        location = /on { absolute_redirect on; return 301 /target; }
    }
}
"""

KINDS = ["portvakt", "nginx"]


@pytest.fixture(params=KINDS)
def gw(request, portvakt, nginx, upstream, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    root = tmp_path / ("root-" + request.param)
    (root / "dir" / "sub").mkdir(parents=True)
    up = upstream()
    p1, p2 = port(), port()
    up.reply = Reply(302, headers=[("Location", "http://127.0.0.1:%d/rw/next" % up.port)])
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=p1, GW2=p2, UP=up.port,
                                                              ROOT=str(root))
    g.port2 = p2
    return g


def location(port, target, host="Www.Example.com"):
    head = b"GET %s HTTP/1.1\r\n" % target.encode()
    if host is not None:
        head += b"Host: %s\r\n" % host.encode()
    r, _ = raw(port, head + b"Connection: close\r\n\r\n")
    return r.status, r.header("location")


def test_return_made_absolute_with_host_and_port(gw):
    assert location(gw.port, "/ret") == (302, "http://www.example.com:%d/target?a=1" % gw.port)


def test_absolute_redirect_off_keeps_it_relative(gw):
    assert location(gw.port, "/off") == (301, "/target")
    assert location(gw.port2, "/ret") == (301, "/target")
    assert location(gw.port2, "/on") == (301, "http://www.example.com:%d/target" % gw.port2)


def test_port_in_redirect_off(gw):
    assert location(gw.port, "/noport") == (301, "http://www.example.com/target")


def test_server_name_in_redirect(gw):
    assert location(gw.port, "/named") == (301, "http://example.com:%d/target" % gw.port)
    assert location(gw.port, "/named-noport") == (301, "http://example.com/target")


def test_absolute_url_is_left_alone(gw):
    assert location(gw.port, "/full") == (301, "http://other.test/x")


def test_without_host_the_local_address(gw):
    head = b"GET /ret HTTP/1.0\r\n\r\n"
    r, _ = raw(gw.port, head)
    assert (r.status, r.header("location")) == (302, "http://127.0.0.1:%d/target?a=1" % gw.port)


def test_directory_redirect(gw):
    assert location(gw.port, "/dir/sub?q=1") == (301, "http://www.example.com:%d/dir/sub/?q=1" % gw.port)
    assert location(gw.port, "/reldir/sub") == (301, "/reldir/sub/")


def test_location_auto_redirect(gw):
    assert location(gw.port, "/api?x=y") == (301, "http://www.example.com:%d/api/?x=y" % gw.port)


def test_proxy_redirect_result_made_absolute(gw):
    assert location(gw.port, "/rw/a") == (302, "http://www.example.com/rw/next")


TLS = """
http {
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name a.test;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location = /ret { return 301 /target; }
        location = /noport { port_in_redirect off; return 301 /target; }
    }
}
"""


def test_https_scheme_over_tls(gateway, tmp_path):
    """Over TLS the Location says https (the port is kept unless it is
    443, which a test cannot listen on)."""
    pki = Pki(tmp_path / "pki")
    crt, key = pki.issue("a", "a.test", "ec", sans=["a.test"])
    g = gateway(TLS, GW=free_port(), CRT=crt, KEY=key)
    status, headers, _ = https_get(g.port, "a.test", "/ret", pki=pki)
    assert (status, headers.get("location")) == (301, "https://a.test:%d/target" % g.port)
    status, headers, _ = https_get(g.port, "a.test", "/noport", pki=pki)
    assert (status, headers.get("location")) == (301, "https://a.test/target")
