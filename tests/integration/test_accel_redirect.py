"""X-Accel-Redirect from the upstream beside NGINX: a URI (a GET, the
arguments split off), a named location (the method kept), the fields that
go on with the request (Set-Cookie, Cache-Control, ...) and those that do
not, X-Accel-Limit-Rate taken along, `proxy_ignore_headers
X-Accel-Redirect`, unsafe URIs (404), an unknown named location (500) and
a redirect loop cut at ten (500)."""

import os

import pytest

from conftest import NGINX, Client, Reply, http, wait_for

CONF = """
http {
    log_format x "$request_method $uri $status $limit_rate";
    access_log /dev/stdout x;
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { proxy_pass http://up; }
        location /ign/ { proxy_ignore_headers X-Accel-Redirect; proxy_pass http://up; }
        location /protected/ { internal; root @DIR@; }
        location /ret/ { internal; return 200 "ret $uri $args $request_method\\n"; }
        location @named { return 200 "named $uri $args $request_method\\n"; }
        location /back/ { internal; proxy_pass http://up; }
        location /xv/ { internal; return 200 "xv $upstream_http_x_accel_redirect $uri $args\n"; }
    }
}
"""

TARGETS = {
    "/go/ret": "/ret/x?a=1&b=2",
    "/go/plain": "/ret/y",
    "/go/named": "@named",
    "/go/nowhere": "@nowhere",
    "/go/file": "/protected/f.txt",
    "/go/up": "/back/z?q=1",
    "/go/dotdot": "/ret/../protected/f.txt",
    "/go/esc": "/ret/%2e%2e/protected/f.txt",
    "/go/trail": "/ret/..",
    "/go/rate": "/ret/rate",
    "/go/missing": "/protected/none.txt",
    "/go/empty": "/ret/e",
    "/go/xv": "/xv/a%20b?z=%20",
    "/go/untyped": "/protected/f.txt",
    "/ign/x": "/ret/ignored",
}


def answer(req):
    path = req.target.split("?")[0]
    if path.startswith("/loop"):
        return Reply(200, headers=[("X-Accel-Redirect", "/loop%d" % (len(path) + 1))],
                     body=b"loop")
    if path.startswith("/back/"):
        return Reply(200, headers=[("X-Back", "1")], body=b"back " + req.target.encode())
    to = TARGETS.get(path)
    if to is None:
        return Reply(200, body=b"upstream " + req.target.encode())
    headers = [("X-Accel-Redirect", to), ("Set-Cookie", "s=1"), ("Cache-Control", "no-store"),
               ("Content-Disposition", "inline"), ("X-Other", "gone"), ("Content-Type", "x/y")]
    if path == "/go/empty":
        return Reply(200, headers=[("X-Accel-Redirect", to)], body=b"")
    if path == "/go/untyped":
        return Reply(200, headers=[("X-Accel-Redirect", to)], body=b"")
    if path == "/go/rate":
        headers.append(("X-Accel-Limit-Rate", "4321"))
    return Reply(200, headers=headers, body=b"dropped body")


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    (tmp_path / "protected").mkdir()
    (tmp_path / "protected" / "f.txt").write_bytes(b"secret file\n")
    up = upstream(handler=answer)
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port, DIR=tmp_path)
    g.up = up
    return g


def logged(gw, uri):
    return wait_for(lambda: [l for l in gw.access_log_lines() if l.split()[1] == uri],
                    what="the log line of " + uri)[-1].split()


def test_uri_with_arguments_as_get(gw):
    r = http(gw.port, "POST", "/go/ret", body=b"data")
    assert r.status == 200
    assert r.body == b"ret /ret/x a=1&b=2 GET\n"
    assert r.header_all("Set-Cookie") == ["s=1"]
    assert r.header("Cache-Control") == "no-store"
    assert r.header("Content-Disposition") == "inline"
    assert not r.has("X-Other") and not r.has("X-Accel-Redirect")
    assert r.header("Content-Type") == "x/y"  # the upstream's type stays the response's


def test_uri_decoded_and_upstream_fields_kept(gw):
    """The URI's escapes are decoded (its arguments are not), and the
    redirecting response's fields stay $upstream_http_NAME."""
    r = http(gw.port, "GET", "/go/xv")
    assert r.status == 200
    assert r.body == b"xv /xv/a%20b?z=%20 /xv/a b z=%20\n"


def test_head_stays_head(gw):
    r = http(gw.port, "HEAD", "/go/plain")
    assert r.status == 200 and r.body == b""
    assert logged(gw, "/ret/y")[0] == "HEAD"


def test_named_location_keeps_method(gw):
    r = http(gw.port, "POST", "/go/named?k=v", body=b"data")
    assert r.status == 200
    assert r.body == b"named /go/named k=v POST\n"
    assert r.header_all("Set-Cookie") == ["s=1"]


def test_unknown_named_location_is_500(gw):
    assert http(gw.port, "GET", "/go/nowhere").status == 500
    wait_for(lambda: 'could not find named location "@nowhere"' in gw.stderr(), what="the error line")


def test_internal_static_file(gw):
    r = http(gw.port, "GET", "/go/file")
    assert r.status == 200 and r.body == b"secret file\n"
    assert r.header("Content-Type") == "x/y"
    assert r.header_all("Set-Cookie") == ["s=1"]
    # the internal location is not reachable from outside
    assert http(gw.port, "GET", "/protected/f.txt").status == 404


def test_file_type_without_upstream_type(gw):
    r = http(gw.port, "GET", "/go/untyped")
    assert r.status == 200 and r.header("Content-Type") == "text/plain"
    assert not r.has("Set-Cookie")


def test_redirect_to_another_upstream_request(gw):
    r = http(gw.port, "GET", "/go/up")
    assert r.status == 200 and r.body == b"back /back/z?q=1"
    assert r.header("X-Back") == "1"
    assert [q.target for q in gw.up.requests] == ["/go/up", "/back/z?q=1"]


@pytest.mark.parametrize("target", ["/go/dotdot", "/go/esc", "/go/trail"])
def test_unsafe_uri_is_404(gw, target):
    assert http(gw.port, "GET", target).status == 404
    wait_for(lambda: "unsafe URI" in gw.stderr(), what="the error line")


def test_missing_target_is_404(gw):
    assert http(gw.port, "GET", "/go/missing").status == 404


def test_limit_rate_goes_along(gw):
    assert http(gw.port, "GET", "/go/rate").status == 200
    assert logged(gw, "/ret/rate") == ["GET", "/ret/rate", "200", "4321"]


def test_ignored(gw):
    r = http(gw.port, "GET", "/ign/x")
    assert r.status == 200 and r.body == b"dropped body"
    assert not r.has("X-Accel-Redirect")
    assert r.header("X-Other") == "gone"


def test_loop_stops_at_ten(gw):
    r = http(gw.port, "GET", "/loop")
    assert r.status == 500
    assert len(gw.up.requests) == 11
    wait_for(lambda: "rewrite or internal redirection cycle" in gw.stderr(), what="the error line")


def test_keepalive_after_redirect(gw):
    with Client(gw.port) as c:
        for _ in range(3):
            c.request("GET", "/go/empty")
            assert c.read_response().body == b"ret /ret/e  GET\n"
    assert len(gw.up.conn_ids()) == 1
