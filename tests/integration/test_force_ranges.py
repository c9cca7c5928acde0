"""proxy_force_ranges beside NGINX: byte ranges of a proxied 200 of known
length whatever its Accept-Ranges (one part at most: several give the
whole response), If-Range against the upstream's ETag and Last-Modified,
416, the responses it leaves alone, and its `-t` errors."""

import os

import pytest

from conftest import NGINX, Reply, check_conf, free_port, gen_bytes, http

CONF = """
http {
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location / { proxy_force_ranges on; proxy_pass http://up; }
        location /off/ { proxy_pass http://up; }
        location /nomax/ { proxy_force_ranges on; max_ranges 0; proxy_pass http://up; }
        location /unbuf/ { proxy_force_ranges on; proxy_buffering off; proxy_pass http://up; }
    }
}
"""

BODY = b"0123456789abcdef"
BIG = gen_bytes(300000)
LM = "Wed, 01 Jan 2020 00:00:00 GMT"


def answer(req):
    path = req.target
    headers = [("Accept-Ranges", "none"), ("ETag", '"e1"'), ("Last-Modified", LM)]
    if "chunked" in path:
        return Reply(200, headers=headers, body=BODY, chunked=True)
    if "missing" in path:
        return Reply(404, headers=headers, body=b"no")
    if "big" in path:
        return Reply(200, headers=headers, body=BIG)
    return Reply(200, headers=headers, body=BODY)


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream(handler=answer)
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port)
    g.up = up
    return g


@pytest.mark.parametrize("target,headers,status,body,crange,accept", [
    ("/a", [], 200, BODY, None, "bytes"),
    ("/a", [("Range", "bytes=2-5")], 206, b"2345", "bytes 2-5/16", None),
    ("/a", [("Range", "bytes=-3")], 206, b"def", "bytes 13-15/16", None),
    ("/a", [("Range", "bytes=10-")], 206, b"abcdef", "bytes 10-15/16", None),
    ("/a", [("Range", "bytes=14-100")], 206, b"ef", "bytes 14-15/16", None),
    ("/a", [("Range", "bytes=0-1,4-5")], 200, BODY, None, "bytes"),
    ("/a", [("Range", "items=0-1")], 200, BODY, None, "bytes"),
    ("/a", [("Range", "bytes=2-5"), ("If-Range", '"e1"')], 206, b"2345", "bytes 2-5/16", None),
    ("/a", [("Range", "bytes=2-5"), ("If-Range", '"e2"')], 200, BODY, None, "bytes"),
    ("/a", [("Range", "bytes=2-5"), ("If-Range", LM)], 206, b"2345", "bytes 2-5/16", None),
    ("/a", [("Range", "bytes=2-5"), ("If-Range", "Thu, 02 Jan 2020 00:00:00 GMT")], 200, BODY, None, "bytes"),
    ("/chunked", [("Range", "bytes=2-5")], 200, BODY, None, None),
    ("/missing", [("Range", "bytes=0-0")], 404, b"no", None, None),
    ("/off/a", [("Range", "bytes=2-5")], 200, BODY, None, "none"),
    ("/nomax/a", [("Range", "bytes=2-5")], 200, BODY, None, None),
])
def test_ranges_as_nginx(gw, target, headers, status, body, crange, accept):
    r = http(gw.port, "GET", target, headers=headers)
    assert r.status == status
    assert r.body == body
    assert r.header("Content-Range") == crange
    assert r.header_all("Accept-Ranges") == ([accept] if accept else [])
    if status == 206:
        assert r.header("Content-Length") == str(len(body))


def test_not_satisfiable(gw):
    r = http(gw.port, "GET", "/a", headers=[("Range", "bytes=20-30")])
    assert r.status == 416
    assert r.header("Content-Range") == "bytes */16"
    # the connection to the upstream was dropped, the next request works
    assert http(gw.port, "GET", "/a", headers=[("Range", "bytes=0-0")]).body == b"0"


def test_head(gw):
    r = http(gw.port, "HEAD", "/a", headers=[("Range", "bytes=2-5")])
    assert r.status == 206 and r.body == b""
    assert r.header("Content-Range") == "bytes 2-5/16"
    assert r.header("Content-Length") == "4"


@pytest.mark.parametrize("prefix", ["/", "/unbuf/"])
def test_range_of_a_large_body(gw, prefix):
    r = http(gw.port, "GET", prefix + "big", headers=[("Range", "bytes=100000-199999")], timeout=30)
    assert r.status == 206
    assert r.body == BIG[100000:200000]
    assert r.header("Content-Range") == "bytes 100000-199999/300000"
    r = http(gw.port, "GET", prefix + "big", headers=[("Range", "bytes=-5")], timeout=30)
    assert r.body == BIG[-5:]


def check(tmp_path, body):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n listen 127.0.0.1:%d;\n location / {\n%s\n }\n }\n}\n"
                    % (tmp_path, free_port(), body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("proxy_force_ranges yes;", 'invalid value "yes" in "proxy_force_ranges" directive, it must be "on" or "off"'),
    ("proxy_force_ranges on; proxy_force_ranges off;", '"proxy_force_ranges" directive is duplicate'),
    ("proxy_force_ranges;", 'invalid number of arguments in "proxy_force_ranges" directive'),
    ("if ($arg_a) { proxy_force_ranges on; }", '"proxy_force_ranges" directive is not allowed here'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
