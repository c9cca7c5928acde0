"""fastcgi_cache: responses of a FastCGI responder stored and answered
from the cache, beside NGINX: hits and $upstream_cache_status,
fastcgi_cache_bypass and fastcgi_no_cache, the fields that keep a response
out (Cache-Control, Set-Cookie, X-Accel-Expires) and fastcgi_ignore_headers,
fastcgi_cache_min_uses, fastcgi_cache_methods, a HEAD's answer stored with
its body, NGINX's cache params (the client's preconditions not passed),
fastcgi_cache_revalidate, fastcgi_cache_use_stale and the zone's kind
checked by -t. Every test runs against portvakt and NGINX."""

import json
import os
import threading
import time

import pytest

from conftest import check_conf, free_port, http, wait_for
from test_fastcgi import STDOUT, Responder, stream


class CacheResponder(Responder):
    """Answers by the URI's last part, counting the requests for each:
    `count` a text body with the count; `cc`, `cookie`, `xae0` the same
    with Cache-Control: no-store, a Set-Cookie or X-Accel-Expires: 0;
    `short` and `bg` with X-Accel-Expires: 1; `slow` after a second; `etag` an entry with validators
    that answers 304 to them; `flaky` 503 while `broken` is set; `echo`
    the params as JSON."""

    def __init__(self):
        super().__init__()
        self.counts = {}
        self.broken = False
        self.params = []

    def answer(self, name, p, body, rid, flags):
        n = self.counts[name] = self.counts.get(name, 0) + 1
        d = dict(p)
        self.params.append(d)
        extra = {"cc": "Cache-Control: no-store\r\n", "cookie": "Set-Cookie: a=b\r\n",
                 "xae0": "X-Accel-Expires: 0\r\n", "short": "X-Accel-Expires: 1\r\n"}.get(name, "")
        if name == "etag":
            if d.get("HTTP_IF_NONE_MATCH") == '"v1"':
                return stream(STDOUT, b"Status: 304 Not Modified\r\nX-Accel-Expires: 60\r\n\r\n", rid)
            extra = ('ETag: "v1"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n'
                     "X-Accel-Expires: 1\r\n")
        if name == "flaky":
            if self.broken:
                return stream(STDOUT, b"Status: 503 Service Unavailable\r\n\r\ndown\n", rid)
            extra = "X-Accel-Expires: 1\r\n"
        if name == "slow":
            time.sleep(1)  # long enough for a second request to find the lock held
        if name == "bg":
            extra = "X-Accel-Expires: 1\r\n"
        if name == "echo":
            return stream(STDOUT, b"Content-Type: application/json\r\n\r\n" + json.dumps(d).encode(), rid)
        head = "Content-Type: text/plain\r\n" + extra + "\r\n"
        return stream(STDOUT, head.encode() + b"n=%d\n" % n, rid)


@pytest.fixture
def responder():
    r = CacheResponder()
    yield r
    r.stop()


CONF = """
http {
    fastcgi_cache_path @CACHE@ levels=1:2 keys_zone=fc:1m;
    fastcgi_param DOCUMENT_URI $document_uri;
    fastcgi_param REQUEST_METHOD $request_method;
    fastcgi_cache_key $uri;
    fastcgi_cache_valid 200 1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        location /c/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_cache fc;
            fastcgi_cache_bypass $arg_bypass;
            fastcgi_no_cache $arg_nostore;
            fastcgi_cache_methods POST;
            fastcgi_cache_revalidate on;
            fastcgi_cache_use_stale http_503;
        }
        location /ign/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_cache fc;
            fastcgi_ignore_headers Cache-Control Set-Cookie X-Accel-Expires;
        }
        location /min/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_cache fc;
            fastcgi_cache_min_uses 2;
        }
        location /lock/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_cache fc;
            fastcgi_cache_lock on;
        }
        location /bg/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_cache fc;
            fastcgi_cache_use_stale updating;
            fastcgi_cache_background_update on;
        }
        location /off/ {
            fastcgi_pass 127.0.0.1:@UP@;
        }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, tmp_path, responder):
    fix = request.getfixturevalue(request.param)
    port = free_port()
    fix(CONF, GW=port, UP=responder.port, CACHE=str(tmp_path / "fcache"))
    return port


def get(port, target, method="GET", **kw):
    r = http(port, method, target, **kw)
    return r.status, r.header("x-cache"), r.body


def test_hit_bypass_and_no_cache(gw, responder):
    assert get(gw, "/c/count") == (200, "MISS", b"n=1\n")
    assert get(gw, "/c/count") == (200, "HIT", b"n=1\n")
    # bypass: asked again, and the answer replaces the entry
    assert get(gw, "/c/count?bypass=1") == (200, "BYPASS", b"n=2\n")
    assert get(gw, "/c/count") == (200, "HIT", b"n=2\n")
    # no_cache: the answer is not stored
    assert get(gw, "/c/x/count?nostore=1") == (200, "MISS", b"n=3\n")
    assert get(gw, "/c/x/count") == (200, "MISS", b"n=4\n")
    assert get(gw, "/c/x/count") == (200, "HIT", b"n=4\n")
    assert responder.counts["count"] == 4


def test_fields_that_keep_a_response_out(gw, responder):
    for name in ("cc", "cookie", "xae0"):
        assert get(gw, "/c/" + name) == (200, "MISS", b"n=1\n")
        assert get(gw, "/c/" + name) == (200, "MISS", b"n=2\n")
        # fastcgi_ignore_headers: stored by fastcgi_cache_valid
        assert get(gw, "/ign/" + name) == (200, "MISS", b"n=3\n")
        assert get(gw, "/ign/" + name) == (200, "HIT", b"n=3\n")


def test_min_uses_and_methods(gw, responder):
    assert get(gw, "/min/count")[1:] == ("MISS", b"n=1\n")
    assert get(gw, "/min/count")[1:] == ("MISS", b"n=2\n")
    assert get(gw, "/min/count")[1:] == ("HIT", b"n=2\n")
    # POST is cached where fastcgi_cache_methods names it (the key is the URI's)
    assert get(gw, "/c/p/count", "POST", body=b"x")[1:] == ("MISS", b"n=3\n")
    assert get(gw, "/c/p/count", "POST", body=b"x")[1:] == ("HIT", b"n=3\n")
    assert get(gw, "/min/p/count", "POST", body=b"x")[1:] == (None, b"n=4\n")


def stored_entries(tmp_path):
    """The entry files in the cache directory (named by the key's MD5)."""
    return [f for _, _, fs in os.walk(str(tmp_path / "fcache")) for f in fs
            if len(f) == 32 and all(c in "0123456789abcdef" for c in f)]


def test_head_answer_stored_with_its_body(gw, responder, tmp_path):
    """NGINX's FastCGI cache asks with HEAD and stores the body the
    responder writes: a GET then has it. (The HEAD's answer may reach the
    client before the entry is in place: the GET waits for it.)"""
    r = http(gw, "HEAD", "/c/h/count")
    assert r.status == 200 and r.header("x-cache") == "MISS" and r.body == b""
    assert responder.params[-1]["REQUEST_METHOD"] == "HEAD"
    wait_for(lambda: stored_entries(tmp_path), what="the entry stored")
    assert get(gw, "/c/h/count") == (200, "HIT", b"n=1\n")


def test_preconditions_not_passed_with_a_cache(gw, responder):
    fields = [("If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT"), ("If-None-Match", '"a"'),
              ("If-Range", '"b"'), ("X-Other", "y")]
    for loc, passed in (("/c/", False), ("/off/", True)):
        assert http(gw, "GET", loc + "echo", headers=fields).status == 200
        d = responder.params[-1]
        assert d["HTTP_X_OTHER"] == "y"
        for n in ("HTTP_IF_MODIFIED_SINCE", "HTTP_IF_NONE_MATCH", "HTTP_IF_RANGE"):
            assert (n in d) == passed, (loc, n)


def test_revalidate(gw, responder):
    assert get(gw, "/c/etag") == (200, "MISS", b"n=1\n")
    time.sleep(2.1)  # X-Accel-Expires: 1
    assert get(gw, "/c/etag") == (200, "REVALIDATED", b"n=1\n")
    d = responder.params[-1]
    assert d["HTTP_IF_NONE_MATCH"] == '"v1"'
    assert d["HTTP_IF_MODIFIED_SINCE"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert get(gw, "/c/etag") == (200, "HIT", b"n=1\n")
    assert responder.counts["etag"] == 2


def test_use_stale(gw, responder):
    assert get(gw, "/c/flaky") == (200, "MISS", b"n=1\n")
    time.sleep(2.1)  # X-Accel-Expires: 1
    responder.broken = True
    assert get(gw, "/c/flaky") == (200, "STALE", b"n=1\n")
    responder.broken = False
    assert get(gw, "/c/flaky") == (200, "EXPIRED", b"n=3\n")


def test_lock(gw, responder):
    """Two requests for a missing entry: one asks the responder, the other
    waits for the entry and is a HIT."""
    out = []
    ts = [threading.Thread(target=lambda: out.append(get(gw, "/lock/slow"))) for _ in range(2)]
    for t in ts:
        t.start()
        time.sleep(0.2)
    for t in ts:
        t.join()
    assert sorted(out) == [(200, "HIT", b"n=1\n"), (200, "MISS", b"n=1\n")]
    assert responder.counts["slow"] == 1


def test_background_update(gw, responder):
    assert get(gw, "/bg/bg") == (200, "MISS", b"n=1\n")
    time.sleep(2.1)  # X-Accel-Expires: 1
    assert get(gw, "/bg/bg") == (200, "STALE", b"n=1\n")
    wait_for(lambda: get(gw, "/bg/bg") == (200, "HIT", b"n=2\n"), what="the entry updated")
    assert responder.counts["bg"] == 2


@pytest.mark.parametrize("conf,message", [
    ("fastcgi_cache_path %s keys_zone=z:1m; server { listen 127.0.0.1:%d; location / { proxy_pass http://127.0.0.1:1; proxy_cache z; } }",
     'the shared memory zone "z" is already declared for a different use'),
    ("proxy_cache_path %s keys_zone=z:1m; server { listen 127.0.0.1:%d; location / { fastcgi_pass 127.0.0.1:1; fastcgi_cache z; fastcgi_cache_key $uri; } }",
     'the shared memory zone "z" is already declared for a different use'),
    ("server { listen 127.0.0.1:%s; location / { fastcgi_pass 127.0.0.1:1; fastcgi_cache nozone; } }",
     '"fastcgi_cache" zone "nozone" is unknown'),
])
def test_zone_of_the_other_module_refused(tmp_path, conf, message):
    args = (str(tmp_path / "c"), free_port()) if conf.count("%") == 2 else (free_port(),)
    path = tmp_path / "t.conf"
    path.write_text("events {}\nhttp {\n" + conf % args + "\n}\n")
    for name, (rc, text) in check_conf(path, tmp_path).items():
        assert rc != 0, (name, text)
        assert message in text, (name, text)


# ---- fastcgi_cache_purge (NGINX Plus's; portvakt alone) ----------------------------

PURGE = """
http {
    fastcgi_cache_path @CACHE@ levels=1:2 keys_zone=fc:1m;
    fastcgi_param DOCUMENT_URI $document_uri;
    fastcgi_cache_key $uri;
    fastcgi_cache_valid 200 1m;
    map $request_method $purge { PURGE 1; default 0; }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        location / { fastcgi_pass 127.0.0.1:@UP@; fastcgi_cache fc; fastcgi_cache_purge $purge; }
        location /ro/ { deny all; fastcgi_pass 127.0.0.1:@UP@; fastcgi_cache fc; fastcgi_cache_purge $purge; }
    }
}
"""


def test_purge(portvakt, tmp_path, responder):
    port = free_port()
    cache = tmp_path / "fcache"
    portvakt(PURGE, GW=port, UP=responder.port, CACHE=str(cache))
    files = lambda: sorted(f for _, _, fs in os.walk(cache) for f in fs)  # noqa: E731
    for k in ("p", "a/q", "b/r"):
        assert get(port, "/" + k)[1] == "MISS"
    assert get(port, "/p") == (200, "HIT", b"n=1\n")
    assert len(files()) == 3
    # one entry: removed, the responder not asked; then 404
    assert http(port, "PURGE", "/p").status == 204
    assert len(files()) == 2
    assert http(port, "PURGE", "/p").status == 404
    assert get(port, "/p") == (200, "MISS", b"n=2\n")
    # the access rules apply to a purge as to any request
    assert http(port, "PURGE", "/ro/x").status == 403
    # a wildcard: every entry whose key starts so
    assert http(port, "PURGE", "/a*").status == 204
    assert get(port, "/a/q") == (200, "MISS", b"n=2\n")
    assert get(port, "/b/r") == (200, "HIT", b"n=1\n")
    assert sum(responder.counts.values()) == 5
