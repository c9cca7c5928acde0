"""proxy_cookie_domain, proxy_cookie_path and proxy_cookie_flags: the
Set-Cookie fields of proxied responses rewritten (text, variables, ~ and
~* regexes, leading dots, flags set, reset and removed, `off`, the first
matching line winning), each case compared with NGINX; and the `-t`
errors."""

import os

import pytest

from conftest import NGINX, Reply, check_conf, free_port, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        server_name localhost;
        location / {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_cookie_domain www.example.org .example.com;
            proxy_cookie_domain .$server_name.com en.$server_name.org;
            proxy_cookie_domain ~^(.+)\\.net$ $1.org;
            proxy_cookie_path /path/ /new/;
            proxy_cookie_path /$server_name/ /new/$server_name/;
            proxy_cookie_path ~^/regex/(.+)$ /$1;
            proxy_cookie_path ~*^/caseless/(.+)$ /$1;
            proxy_cookie_flags a secure httponly samesite=none;
            proxy_cookie_flags d nosecure nohttponly nosamesite;
            proxy_cookie_flags ~^re secure samesite=strict;
            proxy_cookie_flags $arg_n $arg_f;
            location /off/ {
                proxy_pass http://127.0.0.1:@UP@;
                proxy_cookie_domain off;
                proxy_cookie_flags off;
            }
        }
    }
}
"""

CASES = [
    ("/", "v=1; Domain=www.Example.org", "v=1; Domain=example.com"),
    ("/", "v=1; Domain=.LocalHost.com", "v=1; Domain=.en.localhost.org"),
    ("/", "v=1; Domain=www.example.NET", "v=1; Domain=www.example.org"),
    ("/", "v=1;Domain=other.org", "v=1;Domain=other.org"),
    ("/", "v=1; Path=/path/x", "v=1; Path=/new/x"),
    ("/", "v=1; Path=/localhost/x", "v=1; Path=/new/localhost/x"),
    ("/", "v=1; Path=/Path/x", "v=1; Path=/Path/x"),
    ("/", "v=1; Path=/regex/x", "v=1; Path=/x"),
    ("/", "v=1; Path=/CASEless/x", "v=1; Path=/x"),
    ("/", "v=1 ;  path = /path/x ;Max-Age=5", "v=1; path=/new/x; Max-Age=5"),
    ("/", "noequals; Path=/path/x", "noequals; Path=/path/x"),
    ("/", "a=1", "a=1; Secure; HttpOnly; SameSite=None"),
    ("/", "A=1;secure;SameSite=Lax", "A=1; secure; SameSite=None; HttpOnly"),
    ("/", "a=1; SameSite=none", "a=1; SameSite=none; Secure; HttpOnly"),
    ("/", "d=1;secure;httponly;samesite=lax;x", "d=1; x"),
    ("/", "rex=1; Path=/path/", "rex=1; Path=/new/; Secure; SameSite=Strict"),
    ("/?n=v&f=httponly", "v=1", "v=1; HttpOnly"),
    ("/?n=v&f=bogus", "v=1;x", "v=1;x"),
    ("/off/", "a=1; Domain=www.example.org; Path=/path/x", "a=1; Domain=www.example.org; Path=/new/x"),
]


def handler(req):
    return Reply(headers=[("Set-Cookie", req.header("X-Cookie"))], body=b"ok")


def set_cookie(gw, target, value):
    r = http(gw.port, "GET", target, headers=[("X-Cookie", value)])
    assert r.status == 200
    return r.header("Set-Cookie")


@pytest.fixture
def servers(portvakt, nginx, upstream):
    up = upstream(handler=handler)
    ours = portvakt(CONF, GW=free_port(), UP=up.port)
    theirs = nginx(CONF, GW=free_port(), UP=up.port) if os.access(NGINX, os.X_OK) else None
    return ours, theirs


@pytest.mark.parametrize("target,value,want", CASES)
def test_rewritten_as_nginx(servers, target, value, want):
    ours, theirs = servers
    assert set_cookie(ours, target, value) == want
    if theirs:
        assert set_cookie(theirs, target, value) == want


def check(tmp_path, body):
    path = tmp_path / "gw.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n  listen 127.0.0.1:%d;\n%s\n }\n}\n"
                    % (tmp_path, free_port(), body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("proxy_cookie_domain x;", 'invalid parameter "x"'),
    ("proxy_cookie_path off; proxy_cookie_path /a /b;", '"proxy_cookie_path" directive is duplicate'),
    ("proxy_cookie_path /a /b; proxy_cookie_path off;", '"proxy_cookie_path" directive is duplicate'),
    ("proxy_cookie_flags off; proxy_cookie_flags off;", '"proxy_cookie_flags" directive is duplicate'),
    ("proxy_cookie_flags a;", 'invalid parameter "a"'),
    ("proxy_cookie_flags a b c d e;", 'invalid number of arguments in "proxy_cookie_flags" directive'),
    ("proxy_cookie_domain a b c;", 'invalid number of arguments in "proxy_cookie_domain" directive'),
    ("proxy_cookie_path ~( x;", "pcre2_compile() failed"),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
