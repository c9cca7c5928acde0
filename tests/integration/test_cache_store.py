"""What the response cache stores, and under which key: a response's
variants (Vary with its spaces normalized, a Vary that changes, a
variant revalidated), an error status that proxy_intercept_errors
answered or a connection failure's 502 that proxy_cache_valid names, the validators kept for a 200 alone, and concurrent misses
without proxy_cache_lock. Each $upstream_cache_status sequence, body and
upstream request count is compared with NGINX's on the same config."""

import os
import threading
import time

import pytest

from conftest import NGINX, EchoUpstream, Reply, http

CT = [("Content-Type", "text/plain")]

CONF = """
http {
    proxy_cache_path @CACHE@ keys_zone=one:1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache one;
        proxy_cache_key $uri;
        proxy_cache_lock off;
        location / { proxy_pass http://127.0.0.1:@UP@; }
        location /reval/ { proxy_cache_revalidate on; proxy_pass http://127.0.0.1:@UP@; }
        location /err/ {
            proxy_cache_bypass $arg_bypass;
            proxy_cache_valid 200 404 1m;
            proxy_intercept_errors on;
            error_page 404 401 = @fallback;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location @fallback { return 403; }
        location /down/ { proxy_cache_valid 502 504 1m; proxy_pass http://127.0.0.1:@DOWN@; }
        location /down-novalid/ { proxy_pass http://127.0.0.1:@DOWN@; }
        location /unbuf/ { proxy_buffering off; proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


def both(portvakt, nginx, port, tmp_path, handler_for, scenario):
    """scenario(gw, up) against each server with a fresh upstream
    (handler_for(up) makes its handler); both must give the same."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    runs = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        up = EchoUpstream()
        up.handler = handler_for(up)
        try:
            gw = factory(CONF, GW=port(), UP=up.port, DOWN=port(), CACHE=str(tmp_path / name))
            runs[name] = (scenario(gw, up), len(up.requests))
        finally:
            up.stop()
    assert runs["portvakt"] == runs["nginx"], runs
    return runs["portvakt"]


def get(gw, target, headers=None):
    r = http(gw.port, "GET", target, headers=headers)
    return r.status, r.header("X-Cache"), r.body


def varying(extra=lambda req: []):
    """200 "body N" with Vary from ?vary= (default Accept-Encoding) and
    the fields extra(req) gives, fresh for a minute."""
    def make(up):
        def h(req):
            vary = req.target.partition("vary=")[2] or "Accept-Encoding"
            fields = CT + [("Vary", vary), ("Cache-Control", "max-age=60")] + extra(req)
            return Reply(headers=fields, body=b"body %d\n" % len(up.requests))
        return h
    return make


def ae(value):
    return [("Accept-Encoding", value)]


def test_vary_spaces_normalized(portvakt, nginx, port, tmp_path):
    def scenario(gw, up):
        return [get(gw, "/n", ae(v))[1] for v in ("foo, bar", "foo,bar", "foo,,  ,bar , ", "foobar", "bar,foo")]
    seen, asked = both(portvakt, nginx, port, tmp_path, varying(), scenario)
    assert seen == ["MISS", "HIT", "HIT", "MISS", "MISS"]
    assert asked == 3


def test_vary_that_changes(portvakt, nginx, port, tmp_path):
    # a variant whose Vary differs from the one stored under the main key
    # replaces that one; a later variant of the new Vary has a key of its own
    def scenario(gw, up):
        seen = [get(gw, "/c?vary=z", [("z", "1")])]
        for h in ([("x", "1")], [("x", "1")], [("x", "2")], [("x", "2")], [("x", "1")], [("z", "1")]):
            seen.append(get(gw, "/c?vary=x,y", h))
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, varying(), scenario)
    assert [s[1] for s in seen] == ["MISS", "MISS", "HIT", "MISS", "HIT", "HIT", "MISS"]
    assert seen[2][2] == b"body 2\n" and seen[4][2] == b"body 3\n" and seen[5][2] == b"body 2\n"
    assert asked == 4


def test_variants_revalidated(portvakt, nginx, port, tmp_path):
    def make(up):
        plain = varying(lambda req: [("ETag", '"%s"' % req.header("Accept-Encoding"))])(up)

        def h(req):
            if req.header("If-None-Match") == '"%s"' % req.header("Accept-Encoding"):
                return Reply(status=304, headers=[("Cache-Control", "max-age=60")], body=b"")
            r = plain(req)
            r.headers = [f for f in r.headers if f[0] != "Cache-Control"] + [("Cache-Control", "max-age=1")]
            return r
        return h

    def scenario(gw, up):
        seen = [get(gw, "/reval/v", ae("gzip")), get(gw, "/reval/v", ae("deflate"))]
        time.sleep(2.2)
        for value in ("gzip", "deflate", "gzip", "deflate"):
            seen.append(get(gw, "/reval/v", ae(value)))
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert [s[1] for s in seen] == ["MISS", "MISS", "REVALIDATED", "REVALIDATED", "HIT", "HIT"]
    assert seen[2][2] == seen[4][2] == b"body 1\n" and seen[3][2] == seen[5][2] == b"body 2\n"
    assert asked == 4


def test_several_vary_lines(portvakt, port, tmp_path):
    # every Vary line counts (NGINX 1.22 takes the last one alone; later
    # NGINX takes them all)
    up = EchoUpstream(handler=lambda req: Reply(
        headers=CT + [("Vary", "Accept-Encoding"), ("Vary", "Foo"), ("Cache-Control", "max-age=60")],
        body=b"body\n"))
    try:
        gw = portvakt(CONF, GW=port(), UP=up.port, DOWN=port(), CACHE=str(tmp_path / "c"))
        seen = [get(gw, "/m", ae(v))[1] for v in ("foo", "foo", "bar")]
        assert seen == ["MISS", "HIT", "MISS"]
    finally:
        up.stop()


def test_intercepted_error_stored(portvakt, nginx, port, tmp_path):
    state = {"status": 404}

    def make(up):
        def h(req):
            if "/nc" in req.target:
                return Reply(status=401, headers=CT + [("Cache-Control", "no-cache")], body=b"no\n")
            if state["status"] == 404:
                return Reply(status=404, headers=CT + [("Cache-Control", "max-age=60")], body=b"none\n")
            return Reply(headers=CT, body=b"found\n")
        return h

    def scenario(gw, up):
        state["status"] = 404
        seen = [get(gw, "/err/a")[:2]]
        state["status"] = 200
        # the 404 answers (by its error_page) until its time is over
        seen += [get(gw, "/err/a")[:2], get(gw, "/err/a?bypass=1"), get(gw, "/err/a")]
        # a response that may not be stored leaves nothing
        seen += [get(gw, "/err/nc")[:2], get(gw, "/err/nc")[:2]]
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert seen == [(403, "MISS"), (403, "HIT"), (200, "BYPASS", b"found\n"), (200, "HIT", b"found\n"),
                    (403, "MISS"), (403, "MISS")]
    assert asked == 4


def test_connection_failure_stored(portvakt, nginx, port, tmp_path):
    # nothing listens on the /down/ port: its 502 is stored when
    # proxy_cache_valid gives 502 a time, and answers until then
    def scenario(gw, up):
        return [get(gw, "/down/a")[:2], get(gw, "/down/a")[:2], get(gw, "/down-novalid/b")[:2],
                get(gw, "/down-novalid/b")[:2]]
    seen, _ = both(portvakt, nginx, port, tmp_path, lambda up: None, scenario)
    assert seen == [(502, "MISS"), (502, "HIT"), (502, "MISS"), (502, "MISS")]


def test_validators_of_a_200_alone(portvakt, nginx, port, tmp_path):
    def make(up):
        def h(req):
            fields = CT + [("Last-Modified", "Mon, 02 Mar 2015 17:20:58 GMT"), ("ETag", '"t"'),
                           ("Cache-Control", "max-age=1"),
                           ("X-Conditional", "yes" if req.header("If-None-Match") else "no")]
            return Reply(status=201 if "/created" in req.target else 200, headers=fields, body=b"x\n")
        return h

    def scenario(gw, up):
        seen = [get(gw, "/reval/created"), get(gw, "/reval/ok")]
        time.sleep(2.2)
        seen += [get(gw, "/reval/created"), get(gw, "/reval/ok")]
        return seen + [[r.header("If-None-Match") for r in up.requests]]
    seen, _ = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert [s[1] for s in seen[:4]] == ["MISS", "MISS", "EXPIRED", "EXPIRED"]
    assert seen[4] == [None, None, None, '"t"']


def test_misses_without_lock_all_stored(portvakt, nginx, port, tmp_path):
    # concurrent misses each store their response; the last one stays
    def make(up):
        def h(req):
            n = len(up.requests)
            return Reply(headers=CT + [("Cache-Control", "max-age=60")], body=b"request %d\n" % n,
                         delay=0.4 * n if n <= 3 else 0)
        return h

    def scenario(gw, up):
        got = {}
        threads = []
        for i in range(3):
            t = threading.Thread(target=lambda i=i: got.__setitem__(i, get(gw, "/nolock")))
            t.start()
            threads.append(t)
            time.sleep(0.1)
        for t in threads:
            t.join()
        return sorted(got.values()) + [get(gw, "/nolock")]
    seen, asked = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert seen[-1] == (200, "HIT", b"request 3\n")
    assert asked == 3


def test_unbuffered_not_stored(portvakt, nginx, port, tmp_path):
    """A response sent unbuffered (proxy_buffering off, or the upstream's
    X-Accel-Buffering: no) is not stored, as NGINX frees the cache's part
    of the request then; X-Accel-Buffering: yes stores it."""
    def make(up):
        def h(req):
            accel = req.target.partition("accel=")[2]
            fields = CT + [("Cache-Control", "max-age=60")] + ([("X-Accel-Buffering", accel)] if accel else [])
            return Reply(headers=fields, body=b"body %d\n" % len(up.requests))
        return h

    def scenario(gw, up):
        return [get(gw, t) for t in ("/unbuf/a", "/unbuf/a", "/b?accel=no", "/b?accel=no",
                                     "/unbuf/c?accel=yes", "/unbuf/c?accel=yes")]
    seen, n = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert [s[1] for s in seen] == ["MISS", "MISS", "MISS", "MISS", "MISS", "HIT"]
    assert n == 5
