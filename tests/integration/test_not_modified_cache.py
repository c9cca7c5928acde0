"""The not-modified filter on responses the cache may store, beside NGINX:
a proxy_cache or fastcgi_cache MISS meets the client's preconditions as
its head goes out (304 with the entry stored whole, 412 with nothing
stored), under if_modified_since exact and before; a response the cache
may not store (proxy_cache off, Cache-Control: no-store) is passed on as
the upstream answered it."""

import os

import pytest

from conftest import Client, EchoUpstream, Reply, free_port, http, wait_for
from test_fastcgi import STDOUT, Responder, stream

LM = "Mon, 01 Jan 2024 00:00:00 GMT"
LATER = "Tue, 02 Jan 2024 00:00:00 GMT"
BIG = bytes(range(256)) * 4096

CONF = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=one:1m;
    fastcgi_cache_path @FCACHE@ levels=1:2 keys_zone=fc:1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache_valid 200 1h;
        location / { proxy_cache one; proxy_pass http://127.0.0.1:@UP@; }
        location /before/ { proxy_cache one; if_modified_since before; proxy_pass http://127.0.0.1:@UP@; }
        location /off/ { proxy_pass http://127.0.0.1:@UP@; }
        location /f/ {
            fastcgi_pass 127.0.0.1:@FUP@;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_cache fc;
            fastcgi_cache_key $uri;
            fastcgi_cache_valid 200 1h;
        }
    }
}
"""


def upstream_reply(req):
    fields = [("Content-Type", "text/plain")]
    if "noetag" not in req.target:
        fields += [("ETag", '"v1"'), ("Last-Modified", LM)]
    if "nostore" in req.target:
        fields.append(("Cache-Control", "no-store"))
    if "big" in req.target:
        return Reply(headers=fields, body=BIG)
    return Reply(headers=fields, body=b"body of " + req.target.encode() + b"\n")


class FcgiResponder(Responder):
    def answer(self, name, p, body, rid, flags):
        head = 'Content-Type: text/plain\r\nETag: "v1"\r\nLast-Modified: %s\r\n\r\n' % LM
        return stream(STDOUT, head.encode() + b"fastcgi body\n", rid)


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, tmp_path):
    up = EchoUpstream(handler=upstream_reply)
    fup = FcgiResponder()
    port = free_port()
    request.getfixturevalue(request.param)(CONF, GW=port, UP=up.port, FUP=fup.port,
                                           CACHE=str(tmp_path / "c"), FCACHE=str(tmp_path / "f"))
    yield port, up, tmp_path
    fup.stop()


def stored(gw, target, n=1):
    """The answer once n entries are in place (the client's 304 may come
    before the upstream's body has been read whole and stored)."""
    port, _, tmp = gw

    def entries():
        return [f for _, _, fs in os.walk(str(tmp)) for f in fs
                if len(f) == 32 and all(c in "0123456789abcdef" for c in f)]
    wait_for(lambda: len(entries()) >= n, what="the entry stored")
    return get(port, target)


def get(port, target, *fields):
    r = http(port, "GET", target, headers=list(fields))
    return r.status, r.header("x-cache"), r.body


def test_miss_answers_304_and_stores_the_whole(gw):
    port, up, _ = gw
    r = http(port, "GET", "/a", headers=[("If-None-Match", '"v1"')])
    assert (r.status, r.header("x-cache"), r.body) == (304, "MISS", b"")
    assert r.header("etag") == '"v1"' and r.header("last-modified") == LM
    assert r.header("content-length") is None and r.header("content-type") is None
    assert stored(gw, "/a") == (200, "HIT", b"body of /a\n")
    assert get(port, "/a", ("If-None-Match", '"v2"')) == (200, "HIT", b"body of /a\n")
    assert len(up.requests) == 1


def test_large_body_stored_behind_a_304_on_a_kept_connection(gw):
    port, _, _ = gw
    with Client(port) as c:
        c.request("GET", "/big", headers=[("If-None-Match", '"v1"')])
        r = c.read_response()
        assert (r.status, r.header("x-cache"), r.body) == (304, "MISS", b"")
        c.request("GET", "/big")
        r = c.read_response()
        assert r.status == 200 and r.body == BIG
    assert stored(gw, "/big") == (200, "HIT", BIG)


def test_miss_answers_412_and_stores_nothing(gw):
    port, up, _ = gw
    assert get(port, "/b", ("If-Match", '"other"'))[:2] == (412, "MISS")
    assert get(port, "/b") == (200, "MISS", b"body of /b\n")
    # no ETag: If-Match fails; no Last-Modified: If-Unmodified-Since fails
    assert get(port, "/noetag", ("If-Match", '"v1"'))[0] == 412
    assert get(port, "/noetag2", ("If-Unmodified-Since", LATER))[0] == 412
    assert get(port, "/c", ("If-Unmodified-Since", LATER), ("If-Match", '"v1"')) == (200, "MISS", b"body of /c\n")


def test_if_modified_since_exact_and_before(gw):
    port, _, _ = gw
    assert get(port, "/d", ("If-Modified-Since", LATER)) == (200, "MISS", b"body of /d\n")
    assert get(port, "/e", ("If-Modified-Since", LM)) == (304, "MISS", b"")
    assert get(port, "/before/f", ("If-Modified-Since", LATER)) == (304, "MISS", b"")
    assert stored(gw, "/before/f", 3) == (200, "HIT", b"body of /before/f\n")


def test_not_cacheable_passed_on(gw):
    port, up, _ = gw
    assert get(port, "/off/g", ("If-None-Match", '"v1"')) == (200, None, b"body of /off/g\n")
    assert get(port, "/off/g", ("If-Match", '"other"')) == (200, None, b"body of /off/g\n")
    assert get(port, "/nostore", ("If-None-Match", '"v1"')) == (200, "MISS", b"body of /nostore\n")
    assert get(port, "/nostore", ("If-Match", '"x"'))[0] == 200


def test_fastcgi_cache(gw):
    port, _, _ = gw
    assert get(port, "/f/x", ("If-None-Match", '"v1"')) == (304, "MISS", b"")
    assert stored(gw, "/f/x") == (200, "HIT", b"fastcgi body\n")
    assert get(port, "/f/y", ("If-Match", '"no"'))[:2] == (412, "MISS")
    assert get(port, "/f/y") == (200, "MISS", b"fastcgi body\n")
