"""Byte ranges of a proxied response in a proxy_cache location, beside
NGINX: a MISS the cache may store whose upstream sent Accept-Ranges (any
value) answers one range from the body as it streams with 206 while the
whole response is stored; several ranges give the whole response (a hit
then answers them as multipart/byteranges); If-Range (against the
validators add_header replaced, too), 416 (nothing
stored), HEAD, max_ranges 0, compression, a chunked body, a status
other than 200 and the responses the cache may not store leave the
response whole, each with NGINX's Accept-Ranges."""

import os

import pytest

from conftest import NGINX, Reply, gen_bytes, http

CONF = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=one:1m;
    upstream u { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache one;
        proxy_cache_valid 200 1h;
        location / { proxy_pass http://u; }
        location /any/ { proxy_cache_valid any 1h; proxy_pass http://u; }
        location /novalid/ { proxy_cache_valid 404 1h; proxy_pass http://u; }
        location /unbuf/ { proxy_buffering off; proxy_pass http://u; }
        location /nomax/ { max_ranges 0; proxy_pass http://u; }
        location /gz/ { gzip on; gzip_types text/plain; gzip_min_length 1; proxy_pass http://u; }
        location /force/ { proxy_force_ranges on; proxy_pass http://u; }
        location /addv/ {
            add_header Last-Modified "Thu, 02 Jan 2020 00:00:00 GMT";
            add_header ETag '"new"';
            add_header X-Cache $upstream_cache_status always;
            proxy_pass http://u;
        }
    }
}
"""

BODY = b"0123456789abcdef"
BIG = gen_bytes(300000)
LM = "Wed, 01 Jan 2020 00:00:00 GMT"


def answer(req):
    path = req.target
    fields = [("Content-Type", "text/plain"), ("ETag", '"e1"'), ("Last-Modified", LM)]
    if "/noar" not in path:
        fields.append(("Accept-Ranges", "none" if "/none" in path else "bytes"))
    if "/cookie" in path:
        fields.append(("Set-Cookie", "a=b"))
    if "/nostore" in path:
        fields.append(("Cache-Control", "no-store"))
    if "/chunked" in path:
        return Reply(200, headers=fields, body=BODY, chunked=True)
    if "/missing" in path:
        return Reply(404, headers=fields, body=b"no")
    if "/big" in path:
        return Reply(200, headers=fields, body=BIG)
    return Reply(200, headers=fields, body=BODY)


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream(handler=answer)
    start = portvakt if request.param == "portvakt" else nginx
    g = start(CONF, GW=port(), UP=up.port, CACHE=str(tmp_path / ("cache-" + request.param)))
    g.up = up
    return g


R25 = [("Range", "bytes=2-5")]

# target, request fields, status, body, Content-Range, Accept-Ranges, and
# what a plain GET after it finds: its $upstream_cache_status
CASES = [
    ("/a", R25, 206, b"2345", "bytes 2-5/16", None, "HIT"),
    ("/a2", [("Range", "bytes=-3")], 206, b"def", "bytes 13-15/16", None, "HIT"),
    ("/a3", [("Range", "bytes=10-100")], 206, b"abcdef", "bytes 10-15/16", None, "HIT"),
    ("/none", R25, 206, b"2345", "bytes 2-5/16", None, "HIT"),
    ("/b", [], 200, BODY, None, "bytes", "HIT"),
    ("/c", [("Range", "bytes=0-1,4-5")], 200, BODY, None, "bytes", "HIT"),
    ("/d", [("Range", "items=0-1")], 200, BODY, None, "bytes", "HIT"),
    ("/e", R25 + [("If-Range", '"e1"')], 206, b"2345", "bytes 2-5/16", None, "HIT"),
    ("/f", R25 + [("If-Range", '"e2"')], 200, BODY, None, "bytes", "HIT"),
    ("/g", R25 + [("If-Range", LM)], 206, b"2345", "bytes 2-5/16", None, "HIT"),
    ("/h", R25 + [("If-Range", "Thu, 02 Jan 2020 00:00:00 GMT")], 200, BODY, None, "bytes", "HIT"),
    ("/noar", R25, 200, BODY, None, None, "HIT"),
    ("/cookie", R25, 200, BODY, None, "bytes", "MISS"),
    ("/nostore", R25, 200, BODY, None, "bytes", "MISS"),
    ("/chunked", R25, 200, BODY, None, None, "HIT"),
    ("/any/missing", R25, 404, b"no", None, None, "HIT"),
    ("/novalid/a", R25, 206, b"2345", "bytes 2-5/16", None, "MISS"),
    ("/nomax/a", R25, 200, BODY, None, None, "HIT"),
    ("/force/noar", R25, 206, b"2345", "bytes 2-5/16", None, "HIT"),
    # If-Range sees the validators add_header replaced (NGINX's headers
    # filter comes before its range filter)
    ("/addv/a", R25 + [("If-Range", "Thu, 02 Jan 2020 00:00:00 GMT")], 206, b"2345", "bytes 2-5/16", None, "HIT"),
    ("/addv/b", R25 + [("If-Range", LM)], 200, BODY, None, "bytes", "HIT"),
    ("/addv/c", R25 + [("If-Range", '"new"')], 206, b"2345", "bytes 2-5/16", None, "HIT"),
    ("/addv/d", R25 + [("If-Range", '"e1"')], 200, BODY, None, "bytes", "HIT"),
]


@pytest.mark.parametrize("target,headers,status,body,crange,accept,after", CASES)
def test_miss_as_nginx(gw, target, headers, status, body, crange, accept, after):
    r = http(gw.port, "GET", target, headers=headers)
    assert (r.status, r.header("X-Cache")) == (status, "MISS")
    assert r.body == body
    assert r.header("Content-Range") == crange
    assert r.header_all("Accept-Ranges") == ([accept] if accept else [])
    if status == 206:
        assert r.header("Content-Length") == str(len(body))
    r = http(gw.port, "GET", target)
    assert r.header("X-Cache") == after
    assert r.body == (BODY if status != 404 else b"no")  # stored whole


def test_upstream_asked_without_range(gw):
    http(gw.port, "GET", "/q", headers=R25 + [("If-Range", '"e1"')])
    names = [k.lower() for k, _ in gw.up.last().headers]
    assert "range" not in names and "if-range" not in names


def test_not_satisfiable_is_not_stored(gw):
    r = http(gw.port, "GET", "/n", headers=[("Range", "bytes=20-30")])
    assert r.status == 416
    assert r.header("Content-Range") == "bytes */16"
    r = http(gw.port, "GET", "/n", headers=[("Range", "bytes=0-0")])
    assert (r.status, r.body, r.header("X-Cache")) == (206, b"0", "MISS")
    assert http(gw.port, "GET", "/n").header("X-Cache") == "HIT"


def test_head(gw):
    r = http(gw.port, "HEAD", "/hd", headers=R25)
    assert (r.status, r.body, r.header("X-Cache")) == (206, b"", "MISS")
    assert r.header("Content-Range") == "bytes 2-5/16"
    assert r.header("Content-Length") == "4"
    assert http(gw.port, "GET", "/hd").body == BODY


def test_compressed_answer_is_whole(gw):
    r = http(gw.port, "GET", "/gz/a", headers=R25 + [("Accept-Encoding", "gzip")])
    assert r.status == 200 and r.header("Content-Encoding") == "gzip"
    assert r.header("Content-Range") is None and r.header_all("Accept-Ranges") == []


@pytest.mark.parametrize("prefix", ["/", "/unbuf/"])
def test_range_of_a_large_body(gw, prefix):
    r = http(gw.port, "GET", prefix + "big", headers=[("Range", "bytes=100000-199999")], timeout=30)
    assert (r.status, r.header("X-Cache")) == (206, "MISS")
    assert r.header("Content-Range") == "bytes 100000-199999/300000"
    assert r.body == BIG[100000:200000]
    if prefix == "/":  # (NGINX stores nothing proxied with proxy_buffering off)
        r = http(gw.port, "GET", prefix + "big", timeout=30)
        assert (r.header("X-Cache"), r.body) == ("HIT", BIG)


@pytest.mark.parametrize("target", ["/m", "/none/m", "/force/noar/m"])
def test_several_ranges_on_a_hit(gw, target):
    """A miss answers several ranges whole; the hit answers them as
    multipart, with proxy_force_ranges or a stored Accept-Ranges."""
    two = [("Range", "bytes=0-1,4-5")]
    r = http(gw.port, "GET", target, headers=two)
    assert (r.status, r.body) == (200, BODY)
    r = http(gw.port, "GET", target, headers=two)
    assert (r.status, r.header("X-Cache")) == (206, "HIT")
    assert r.header("Content-Type").startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-1/16\r\n\r\n01\r\n" in r.body
    assert b"Content-Range: bytes 4-5/16\r\n\r\n45\r\n" in r.body
    r = http(gw.port, "GET", target)
    assert r.header_all("Accept-Ranges") == ["bytes"]
