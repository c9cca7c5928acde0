"""What the gateway sends upstream and back: proxy_set_header (variables,
empty values, inheritance), proxy_pass URI rules, hop-by-hop fields.

NGINX keeps fields named in a Connection header (RFC 9110 7.6.1 says an
intermediary must drop them); portvakt drops them in both directions. Those
tests are portvakt_only; everything else matches NGINX 1.22.
"""

import pytest

from conftest import Reply, http

CONF = """
http {
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-From-Server yes;

        location /vars/ {
            proxy_pass http://up/;
            proxy_set_header Connection "";
            proxy_set_header X-Req "$request_method $request_uri";
            proxy_set_header X-Uri $uri;
            proxy_set_header X-Args $args;
            proxy_set_header X-Arg-A $arg_a;
            proxy_set_header X-Host $host;
            proxy_set_header X-Http-Host $http_host;
            proxy_set_header X-Scheme $scheme;
            proxy_set_header X-Server-Port $server_port;
            proxy_set_header X-Proto $server_protocol;
            proxy_set_header X-UA "ua=${http_user_agent}!";
            proxy_set_header X-Proxy-Host $proxy_host;
            proxy_set_header X-Missing $http_x_not_sent;
            proxy_set_header User-Agent "";
            proxy_set_header Accept-Encoding "";
        }
        location /inherit/ {
            proxy_pass http://up/;
        }
        location /host/ {
            proxy_pass http://up/;
            proxy_set_header Host $host;
        }
        location /httphost/ {
            proxy_pass http://up/;
            proxy_set_header Host $http_host;
        }
        location /raw/ { proxy_pass http://up; }
        location /strip/ { proxy_pass http://up/; }
        location /repl/ { proxy_pass http://up/new/; }
        location /noslash { proxy_pass http://up/x; }
        location /implicit/ { proxy_pass http://127.0.0.1:@UP@/; }
    }
    server {
        listen 127.0.0.1:@GW2@;
        location / { proxy_pass http://up; }
    }
}
"""


@pytest.fixture
def gw(gateway, upstream, port):
    up = upstream()
    g = gateway(CONF, UP=up.port, GW=port(), GW2=port())
    g.up = up
    return g


def test_variables_in_set_headers(gw):
    http(gw.port, "GET", "/vars/p%20q?a=1&b=2", host="Api.Test:8443",
         headers=[("User-Agent", "curl/8"), ("Accept-Encoding", "gzip")])
    got = gw.up.last()
    assert got.header("X-Req") == "GET /vars/p%20q?a=1&b=2"
    assert got.header("X-Uri") == "/vars/p q"
    assert got.header("X-Args") == "a=1&b=2"
    assert got.header("X-Arg-A") == "1"
    assert got.header("X-Host") == "api.test"
    assert got.header("X-Http-Host") == "Api.Test:8443"
    assert got.header("X-Scheme") == "http"
    assert got.header("X-Server-Port") == str(gw.port)
    assert got.header("X-Proto") == "HTTP/1.1"
    assert got.header("X-UA") == "ua=curl/8!"
    assert got.header("X-Proxy-Host") == "up"


def test_empty_value_removes_header(gw):
    http(gw.port, "GET", "/vars/x", headers=[("User-Agent", "curl/8"),
                                            ("Accept-Encoding", "gzip")])
    got = gw.up.last()
    assert not got.has("User-Agent")
    assert not got.has("Accept-Encoding")
    # A value that evaluates to "" is not sent either.
    assert not got.has("X-Missing")


def test_set_headers_replace_client_fields(gw):
    http(gw.port, "GET", "/vars/x", headers=[("X-Host", "spoofed"), ("X-Args", "spoofed")])
    got = gw.up.last()
    assert got.header_all("X-Host") == ["localhost"]
    assert not got.has("X-Args")  # empty $args: the field is not sent
    assert "spoofed" not in repr(got.headers)


def test_set_headers_inherit_only_when_level_has_none(gw):
    http(gw.port, "GET", "/inherit/x")
    assert gw.up.last().header("X-From-Server") == "yes"
    # /vars/ has its own proxy_set_header list: the server's is not merged in.
    http(gw.port, "GET", "/vars/x")
    assert not gw.up.last().has("X-From-Server")


def test_default_host_is_proxy_host(gw):
    http(gw.port, "GET", "/inherit/x", host="client.test")
    assert gw.up.last().header_all("Host") == ["up"]
    http(gw.port, "GET", "/implicit/x", host="client.test")
    assert gw.up.last().header_all("Host") == ["127.0.0.1:%d" % gw.up.port]


def test_host_overrides(gw):
    http(gw.port, "GET", "/host/x", host="Client.Test:99")
    assert gw.up.last().header_all("Host") == ["client.test"]
    http(gw.port, "GET", "/httphost/x", host="Client.Test:99")
    assert gw.up.last().header_all("Host") == ["Client.Test:99"]


def test_nginx_defaults_without_proxy_settings(gw):
    # No proxy_http_version / proxy_set_header anywhere: HTTP/1.0, close.
    http(gw.ports[1], "GET", "/d?x=1", headers=[("Connection", "keep-alive")])
    got = gw.up.last()
    assert got.version == "HTTP/1.0"
    assert got.header_all("Connection") == ["close"]
    assert got.header_all("Host") == ["up"]
    assert got.target == "/d?x=1"


@pytest.mark.parametrize("target,upstream_target", [
    # proxy_pass without a URI: the request URI exactly as the client sent it
    ("/raw/a%20b/../c?x=%41", "/raw/a%20b/../c?x=%41"),
    ("/raw/a//b", "/raw/a//b"),
    # with a URI: the normalised URI, location prefix replaced, re-escaped
    ("/strip/a%20b/../c?x=1", "/c?x=1"),
    ("/strip/a%2Fb", "/a/b"),
    ("/strip/a+b%3F?q", "/a+b%3F?q"),
    ("/strip/%7E%41", "/~A"),
    ("/repl/a/b", "/new/a/b"),
    ("/noslash/y", "/x/y"),
    ("/noslashz", "/xz"),
])
def test_proxy_pass_uri_rules(gw, target, upstream_target):
    r = http(gw.port, "GET", target)
    assert r.status == 200
    assert gw.up.last().target == upstream_target


def test_hop_by_hop_request_fields_removed(gw):
    http(gw.port, "GET", "/inherit/x", headers=[
        ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Upgrade", "h2c"), ("X-Kept", "1")])
    got = gw.up.last()
    for name in ("connection", "keep-alive", "te", "upgrade"):
        assert name not in got.names(), got.headers
    assert got.header("X-Kept") == "1"


@pytest.mark.portvakt_only("NGINX forwards fields named in Connection")
def test_fields_named_in_connection_removed_from_request(gw):
    http(gw.port, "GET", "/inherit/x", headers=[
        ("Connection", "keep-alive, X-Hop, x-other"), ("X-Hop", "1"),
        ("X-Other", "2"), ("X-Kept", "3")])
    got = gw.up.last()
    assert not got.has("X-Hop") and not got.has("X-Other"), got.headers
    assert got.header("X-Kept") == "3"


def test_connection_naming_a_set_header_keeps_the_gateway_value(gw):
    http(gw.port, "GET", "/vars/x", headers=[("Connection", "X-Host"), ("X-Host", "evil")])
    assert gw.up.last().header_all("X-Host") == ["localhost"]


def test_response_hop_by_hop_and_server_fields(gw):
    gw.up.reply = Reply(200, headers=[
        ("Keep-Alive", "timeout=5"), ("X-Kept", "yes"),
        ("Server", "upstream-server/1"), ("Date", "Mon, 01 Jan 2001 00:00:00 GMT")],
        body=b"ok")
    r = http(gw.port, "GET", "/inherit/resp")
    assert r.status == 200 and r.body == b"ok"
    assert not r.has("Keep-Alive")
    assert r.header("X-Kept") == "yes"
    assert r.header_all("Server") != ["upstream-server/1"]
    assert len(r.header_all("Server")) == 1
    assert r.header_all("Date") != ["Mon, 01 Jan 2001 00:00:00 GMT"]
    assert len(r.header_all("Date")) == 1
    assert r.header("Connection") == "keep-alive"


@pytest.mark.portvakt_only("NGINX forwards fields named in Connection")
def test_fields_named_in_connection_removed_from_response(gw):
    gw.up.reply = Reply(200, headers=[("Connection", "X-Up-Secret"), ("X-Up-Secret", "1"),
                                      ("X-Kept", "yes")], body=b"ok")
    r = http(gw.port, "GET", "/inherit/resp")
    assert r.status == 200
    assert not r.has("X-Up-Secret")
    assert r.header("X-Kept") == "yes"
