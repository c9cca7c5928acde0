"""Virtual server and location selection, `return` and `internal`, as NGINX
does them. Each location answers with its own name through `return`, so the
tests see which one was chosen without any upstream.
"""

import pytest

from conftest import http, raw

LOCATIONS = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "prefix /\\n"; }
        location = / { return 200 "exact /\\n"; }
        location /docs/ { return 200 "prefix /docs/\\n"; }
        location /docs/api/ { return 200 "prefix /docs/api/\\n"; }
        location = /docs/api/index { return 200 "exact /docs/api/index\\n"; }
        location ^~ /static/ { return 200 "stop /static/\\n"; }
        location ~ \\.php$ { return 200 "regex php\\n"; }
        location ~* \\.(png|jpe?g)$ { return 200 "regex images\\n"; }
        location ~ ^/docs/api/v\\d+ { return 200 "regex api version\\n"; }
        location ~ ^/docs/ { return 200 "regex docs\\n"; }
        location /hidden/ { internal; return 200 "should not be seen\\n"; }
        location /uri/ { return 200 "uri=$uri args=$args request_uri=$request_uri\\n"; }
    }
}
"""


@pytest.fixture
def loc(gateway, port):
    return gateway(LOCATIONS, GW=port())


@pytest.mark.parametrize("target,want", [
    ("/", "exact /"),
    ("/index.html", "prefix /"),
    ("/docs", "prefix /"),                     # no trailing slash: /docs/ doesn't match
    ("/docs/api/index", "exact /docs/api/index"),
    ("/docs/api/index?x=1", "exact /docs/api/index"),
    ("/docs/api/v2/users", "regex api version"),  # regex beats longest prefix
    ("/docs/api/other", "regex docs"),         # first matching regex in order
    ("/docs/guide", "regex docs"),
    ("/static/app.php", "stop /static/"),      # ^~ suppresses regexes
    ("/static/logo.PNG", "stop /static/"),
    ("/img/logo.PNG", "regex images"),         # ~* is case-insensitive
    ("/img/logo.jpeg", "regex images"),
    ("/index.PHP", "prefix /"),                # ~ is case-sensitive
    ("/a/b.php", "regex php"),
    ("/x.php?y=z.png", "regex php"),           # regexes see the path only
])
def test_location_precedence(loc, target, want):
    r = http(loc.port, "GET", target)
    assert r.status == 200, (target, r)
    assert r.body.decode() == want + "\n", target


@pytest.mark.parametrize("target,want", [
    ("/%64ocs/api/index", "exact /docs/api/index"),  # percent-decoded before matching
    ("/docs/../docs/api/index", "exact /docs/api/index"),  # dot segments removed
    ("/docs/./api//index", "exact /docs/api/index"),       # and merged slashes
])
def test_uri_is_normalised_before_matching(loc, target, want):
    r = http(loc.port, "GET", target)
    assert r.status == 200
    assert r.body.decode() == want + "\n"


def test_dot_segments_above_root_are_400(loc):
    r, closed = raw(loc.port, b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 400
    assert closed


def test_uri_variables(loc):
    r = http(loc.port, "GET", "/uri/a%20b/../c?q=1&r=%41")
    assert r.body == b"uri=/uri/c args=q=1&r=%41 request_uri=/uri/a%20b/../c?q=1&r=%41\n"


def test_internal_location_is_404_from_outside(loc):
    r = http(loc.port, "GET", "/hidden/thing")
    assert r.status == 404
    assert b"should not be seen" not in r.body


RETURNS = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location = /204 { return 204; }
        location = /403 { return 403; }
        location = /text { return 200 "hello $host\\n"; }
        location = /plain { return "https://example.com/moved"; }
        location = /abs { return 302 http://example.com/x; }
        location = /rel { return 301 /new/place; }
        location = /empty418 { return 418; }
        location = /json { return 200 '{"ok":true}'; }
    }
}
"""


@pytest.fixture
def ret(gateway, port):
    return gateway(RETURNS, GW=port())


def test_return_204(ret):
    r = http(ret.port, "GET", "/204")
    assert r.status == 204 and r.body == b""


def test_return_error_code_has_html_body(ret):
    r = http(ret.port, "GET", "/403")
    assert r.status == 403
    assert r.header("Content-Type") == "text/html"
    assert b"<title>403 Forbidden</title>" in r.body


def test_return_text_with_variables(ret):
    r = http(ret.port, "GET", "/text", host="Example.ORG")
    assert r.status == 200
    assert r.body == b"hello example.org\n"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Content-Length") == str(len(r.body))


def test_return_url_only_is_302(ret):
    r = http(ret.port, "GET", "/plain")
    assert r.status == 302
    assert r.header("Location") == "https://example.com/moved"


def test_return_absolute_redirect(ret):
    r = http(ret.port, "GET", "/abs")
    assert r.status == 302
    assert r.header("Location") == "http://example.com/x"
    assert b"302 Found" in r.body


def test_return_relative_redirect_made_absolute(ret):
    r = http(ret.port, "GET", "/rel", host="gw.test")
    assert r.status == 301
    assert r.header("Location") == "http://gw.test:%d/new/place" % ret.port


def test_return_unknown_code_without_text(ret):
    r = http(ret.port, "GET", "/empty418")
    assert r.status == 418
    assert r.body == b""


def test_return_head_has_no_body(ret):
    r = http(ret.port, "HEAD", "/text")
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Length") == str(len(b"hello localhost\n"))


SERVERS = """
http {
    server {
        listen 127.0.0.1:@GW@;
        server_name first.test;
        return 200 "first\\n";
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name example.com www.example.com;
        return 200 "exact\\n";
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name *.example.com;
        return 200 "wild head\\n";
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name *.api.example.com;
        return 200 "longer wild head\\n";
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name www.example.*;
        return 200 "wild tail\\n";
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name ~^api\\d+\\.example\\.net$;
        return 200 "regex\\n";
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name .dot.test;
        return 200 "dot\\n";
    }
    server {
        listen 127.0.0.1:@GW@ default_server;
        server_name default.test;
        return 200 "default\\n";
    }
    server {
        listen 127.0.0.1:@GW2@;
        server_name other-port.test;
        return 200 "second port\\n";
    }
}
"""


@pytest.fixture
def vhosts(gateway, port):
    return gateway(SERVERS, GW=port(), GW2=port())


@pytest.mark.parametrize("host,want", [
    ("first.test", "first"),
    ("FIRST.test", "first"),
    ("first.test.", "first"),              # trailing dot ignored
    ("first.test:1234", "first"),          # port ignored
    ("example.com", "exact"),
    ("www.example.com", "exact"),          # exact beats both wildcards
    ("a.example.com", "wild head"),
    ("a.b.example.com", "wild head"),
    ("x.api.example.com", "longer wild head"),
    ("www.example.org", "wild tail"),
    ("api7.example.net", "regex"),
    ("apix.example.net", "default"),
    ("dot.test", "dot"),                   # .dot.test matches itself
    ("a.dot.test", "dot"),                 # and its subdomains
    ("unknown.test", "default"),
])
def test_server_name(vhosts, host, want):
    r = http(vhosts.port, "GET", "/", host=host)
    assert r.status == 200
    assert r.body.decode() == want + "\n", host


def test_http10_without_host_goes_to_default_server(vhosts):
    r, _ = raw(vhosts.port, b"GET / HTTP/1.0\r\n\r\n")
    assert r.body == b"default\n"


def test_servers_are_per_listen_address(vhosts):
    # Only one server listens on the second port: it is that port's default.
    port2 = vhosts.ports[1]
    assert http(port2, "GET", "/", host="first.test").body == b"second port\n"
    assert http(port2, "GET", "/", host="other-port.test").body == b"second port\n"


FIRST_IS_DEFAULT = """
http {
    server { listen 127.0.0.1:@GW@; server_name a.test; return 200 "a\\n"; }
    server { listen 127.0.0.1:@GW@; server_name b.test; return 200 "b\\n"; }
}
"""


def test_first_server_is_default_without_default_server(gateway, port):
    g = gateway(FIRST_IS_DEFAULT, GW=port())
    assert http(g.port, "GET", "/", host="b.test").body == b"b\n"
    assert http(g.port, "GET", "/", host="zzz.test").body == b"a\n"
