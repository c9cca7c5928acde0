"""$cookie_NAME from the request's Cookie fields, and $upstream_cookie_NAME
and $upstream_http_NAME from a proxied response's fields (in add_header
and the access log), each case compared with NGINX."""

import os

import pytest

from conftest import NGINX, EchoUpstream, Reply, free_port, raw

CONF = """
http {
    log_format u "$upstream_http_x_thing $upstream_cookie_sid";
    upstream up { server @UP@; }
    server {
        listen 127.0.0.1:@GW@;
        location = /c { return 200 "[$cookie_a][$cookie_bb][$cookie_c][$cookie_e][$cookie_f][$cookie_g][$cookie_d][$cookie_zz]"; }
        location = /u {
            proxy_pass http://up;
            add_header X-C "[$upstream_cookie_sid][$upstream_cookie_lang][$upstream_cookie_tc][$upstream_cookie_path]";
            add_header X-H "[$upstream_http_x_thing][$upstream_http_nosuch]";
            access_log @D@/u.log u;
        }
    }
}
"""

COOKIES = [("Cookie", "a=1; bb = 2 ,c=3;d"), ("Cookie", "E=5, f=x,y; g=")]
SET_COOKIES = [("Set-Cookie", "sid=abc; Path=/; HttpOnly"), ("Set-Cookie", "Lang = en"),
               ("Set-Cookie", "x=1; tc=2"), ("X-Thing", "t1")]


def answers(start, d):
    os.makedirs(d)
    up = EchoUpstream(reply=Reply(200, headers=SET_COOKIES, body=b"ok"))
    try:
        port = free_port()
        s = start(CONF, GW=port, UP=up.addr, D=d)
        head = b"GET /c HTTP/1.1\r\nHost: x\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                                          for k, v in COOKIES) + b"Connection: close\r\n\r\n"
        r, _ = raw(port, head)
        c = r.body.decode()
        r, _ = raw(port, b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.stop()
        with open(os.path.join(d, "u.log")) as f:
            return c, r.header("x-c"), r.header("x-h"), f.read()
    finally:
        up.stop()


def test_cookie_variables_as_nginx(portvakt, nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got = answers(portvakt, str(tmp_path / "pv"))
    assert got == answers(nginx, str(tmp_path / "ng"))
    assert got[0] == "[1][2 ,c=3][3][5, f=x,y][x,y][][][]"
    assert got[1] == "[abc][en][][]"
    assert got[2] == "[t1][]"
    assert got[3] == "t1 abc\n"


EMPTY_CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / {
            return 200 "[$http_][$cookie_][$arg_][$sent_http_][$upstream_http_][$upstream_cookie_]";
        }
    }
}
"""


def test_prefix_alone_names_the_empty_field(portvakt, nginx):
    """A prefix with no name ($arg_, $cookie_, ...) is taken, as NGINX takes
    it: the field named "" (a cookie written "=v" has that name)."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    head = b"GET /?=x&a=1 HTTP/1.1\r\nHost: x\r\nCookie: =v; a=b\r\nConnection: close\r\n\r\n"
    bodies = []
    for start in (portvakt, nginx):
        port = free_port()
        start(EMPTY_CONF, GW=port)
        r, _ = raw(port, head)
        bodies.append(r.body)
    assert bodies[0] == bodies[1] == b"[][v][][][][]"
