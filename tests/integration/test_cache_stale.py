"""Stale cache entries that the upstream's own Cache-Control allows
(stale-while-revalidate, stale-if-error), the time an entry keeps when
it is revalidated, and a background update started in an SSI include,
which holds neither the page nor (but for its end) the client. Each
$upstream_cache_status sequence, body and upstream request count is
compared with NGINX's on the same config."""

import os
import subprocess
import threading
import time

import pytest

from conftest import NGINX, Client, EchoUpstream, Reply, http

CT = [("Content-Type", "text/plain")]

CONF = """
http {
    proxy_cache_path @CACHE@ keys_zone=one:1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache one;
        proxy_cache_key $uri;
        location /bg/ { proxy_cache_background_update on; proxy_pass http://127.0.0.1:@UP@; }
        location /fg/ { proxy_pass http://127.0.0.1:@UP@; }
        location /valid/ {
            proxy_cache_valid 200 1s;
            proxy_cache_background_update on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /reval/ {
            proxy_cache_revalidate on;
            proxy_cache_background_update on;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /err/ {
            proxy_cache_use_stale http_500;
            proxy_intercept_errors on;
            error_page 500 /errpage;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location = /errpage { internal; return 200 "the error page\n"; }
        location /ignore/ {
            proxy_ignore_headers Cache-Control;
            proxy_cache_valid 200 1s;
            proxy_cache_background_update on;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def need_nginx():
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")


def both(portvakt, nginx, port, tmp_path, handler_for, scenario):
    """Run scenario(gw, up) against each server with a fresh upstream
    (handler_for(up) makes its handler); both must give the same."""
    need_nginx()
    runs = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        up = EchoUpstream()
        up.handler = handler_for(up)
        try:
            gw = factory(CONF, GW=port(), UP=up.port, CACHE=str(tmp_path / name))
            runs[name] = (scenario(gw, up), len(up.requests))
        finally:
            up.stop()
    assert runs["portvakt"] == runs["nginx"], runs
    return runs["portvakt"]


def numbered(cc, state=None):
    """Answers 200 "body N" with Cache-Control cc; state["fail"] makes it
    reset the connection (an error) or answer that status."""
    def make(up):
        def h(req):
            fail = state and state.get("fail")
            if fail == "reset":
                return Reply(reset=True)
            if fail:
                return Reply(status=fail, headers=CT, body=b"failed\n")
            return Reply(headers=CT + [("Cache-Control", cc)], body=b"body %d\n" % len(up.requests))
        return h
    return make


def get(gw, target):
    r = http(gw.port, "GET", target)
    return r.status, r.header("X-Cache"), r.body


def get_on(c, target):
    c.request("GET", target)
    r = c.read_response("GET")
    return r.status, r.header("X-Cache"), r.body


def test_stale_while_revalidate(portvakt, nginx, port, tmp_path):
    def scenario(gw, up):
        seen = [get(gw, "/bg/a"), get(gw, "/fg/b"), get(gw, "/valid/c"), get(gw, "/ignore/d")]
        time.sleep(2.2)
        # the entry is expired within its stale-while-revalidate time:
        # with a background update it answers (STALE) and is updated; the
        # update ends before the next request on the connection
        for loc in ("/bg/a", "/valid/c", "/ignore/d"):
            with Client(gw.port) as c:
                seen += [get_on(c, loc), get_on(c, loc)]
        # without one, the request updates it itself
        seen.append(get(gw, "/fg/b"))
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, numbered("max-age=1, stale-while-revalidate=30"),
                       scenario)
    assert [s[1] for s in seen] == ["MISS", "MISS", "MISS", "MISS", "STALE", "HIT", "STALE", "HIT",
                                    "EXPIRED", "HIT", "EXPIRED"]
    assert seen[4][2] == seen[0][2] and seen[5][2] != seen[0][2]
    assert asked == 8


def test_stale_while_revalidate_ends(portvakt, nginx, port, tmp_path):
    def scenario(gw, up):
        seen = [get(gw, "/bg/a")]
        time.sleep(3.2)
        seen += [get(gw, "/bg/a"), get(gw, "/bg/a")]
        return seen
    seen, _ = both(portvakt, nginx, port, tmp_path, numbered("max-age=1, stale-while-revalidate=1"), scenario)
    assert [s[1] for s in seen] == ["MISS", "EXPIRED", "HIT"]


def test_updating_within_stale_while_revalidate(portvakt, nginx, port, tmp_path):
    # a request that comes while another updates the entry gets it
    # (UPDATING) without proxy_cache_use_stale updating
    def make(up):
        plain = numbered("max-age=1, stale-while-revalidate=30")(up)

        def h(req):
            if len(up.requests) == 2:
                return Reply(headers=CT + [("Cache-Control", "max-age=100")], body=b"new\n", delay=1.5)
            return plain(req)
        return h

    def scenario(gw, up):
        seen = [get(gw, "/fg/a")]
        time.sleep(2.2)
        first = []
        t = threading.Thread(target=lambda: first.append(get(gw, "/fg/a")))
        t.start()
        time.sleep(0.5)
        seen.append(get(gw, "/fg/a"))
        t.join()
        seen += first + [get(gw, "/fg/a")]
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert [s[1] for s in seen] == ["MISS", "UPDATING", "EXPIRED", "HIT"]
    assert seen[1][2] == seen[0][2] and seen[3][2] == b"new\n"
    assert asked == 2


def test_stale_if_error(portvakt, nginx, port, tmp_path):
    state = {}

    def scenario(gw, up):
        state.clear()
        seen = [get(gw, "/fg/a")]
        time.sleep(2.2)
        state["fail"] = "reset"
        seen.append(get(gw, "/fg/a"))       # an error: the stale entry answers
        state["fail"] = 500
        seen.append(get(gw, "/fg/a"))       # the upstream's 500 is not covered
        state["fail"] = None
        seen.append(get(gw, "/fg/a"))
        return seen
    seen, _ = both(portvakt, nginx, port, tmp_path, numbered("max-age=1, stale-if-error=60", state), scenario)
    assert [(s[0], s[1]) for s in seen] == [(200, "MISS"), (200, "STALE"), (500, "EXPIRED"), (200, "EXPIRED")]
    assert seen[1][2] == seen[0][2]


def test_stale_on_status_before_error_page(portvakt, nginx, port, tmp_path):
    # proxy_cache_use_stale http_500 and an error_page for 500 with
    # proxy_intercept_errors: the stale entry answers the 500, as NGINX's
    # upstream tests the cache before intercepting errors
    state = {}

    def scenario(gw, up):
        state.clear()
        seen = [get(gw, "/err/a")]
        time.sleep(2.2)
        state["fail"] = 500
        seen.append(get(gw, "/err/a"))      # the stale entry
        seen.append(get(gw, "/err/b"))      # nothing stored: the error page
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, numbered("max-age=1", state), scenario)
    assert [(s[0], s[1]) for s in seen] == [(200, "MISS"), (200, "STALE"), (500, "MISS")]
    assert seen[1][2] == seen[0][2] and seen[2][2] == b"the error page\n"
    assert asked == 3


def test_no_stale_after_stale_if_error(portvakt, nginx, port, tmp_path):
    state = {}

    def scenario(gw, up):
        state.clear()
        seen = [get(gw, "/fg/a")]
        time.sleep(3.2)
        state["fail"] = "reset"
        seen.append(get(gw, "/fg/a")[:2])
        return seen
    seen, _ = both(portvakt, nginx, port, tmp_path, numbered("max-age=1, stale-if-error=1", state), scenario)
    assert [(s[0], s[1]) for s in seen] == [(200, "MISS"), (502, "EXPIRED")]


def test_revalidated_entry_keeps_its_time(portvakt, nginx, port, tmp_path):
    # a 304 with no time of its own: the stored response's Cache-Control
    # times the entry again, stale-while-revalidate included
    def make(up):
        def h(req):
            if req.header("If-None-Match") == '"e"':
                return Reply(status=304, headers=[("ETag", '"e"')], body=b"")
            return Reply(headers=CT + [("ETag", '"e"'), ("Cache-Control", "max-age=2, stale-while-revalidate=60")],
                         body=b"body\n")
        return h

    def scenario(gw, up):
        seen = [get(gw, "/reval/a")]
        time.sleep(3.2)
        with Client(gw.port) as c:
            seen += [get_on(c, "/reval/a"), get_on(c, "/reval/a")]
        time.sleep(3.2)
        seen.append(get(gw, "/reval/a"))
        up.wait_requests(3)
        return seen
    seen, asked = both(portvakt, nginx, port, tmp_path, make, scenario)
    assert [s[1] for s in seen] == ["MISS", "STALE", "HIT", "STALE"]
    assert asked == 3


SSI_CONF = """
http {
    types { text/html html; }
    proxy_cache_path @CACHE@ keys_zone=one:1m;
    server {
        listen 127.0.0.1:@GW@;
        root @ROOT@;
        location / { ssi on; }
        location = /mid.html { set $v "m:$uri"; ssi on; }
        location /inc/ {
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_background_update on;
            proxy_set_header X-V $v;
            add_header X-Cache $upstream_cache_status;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_background_update_in_include(portvakt, nginx, port, tmp_path):
    # an include answered STALE: the page is whole at once, while the
    # update's upstream still holds its answer; the update still fills
    # the entry, and the next request on the connection waits for it
    # (NGINX's background subrequest: a HIT with the new body). The
    # nested include's update takes $v as its page set it.
    need_nginx()
    root = tmp_path / "html"
    root.mkdir()
    (root / "page.html").write_text('A<!--#include virtual="/inc/p" -->B')
    (root / "outer.html").write_text('X<!--#include virtual="/mid.html" -->Y')
    (root / "mid.html").write_text('m<!--#include virtual="/inc/q" -->n')
    runs = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        gate = threading.Event()

        def make(up, gate=gate):
            def h(req):
                if len(up.requests) > 2:  # an update: held until released
                    gate.wait(10.0)
                    return Reply(headers=CT + [("Cache-Control", "max-age=100")],
                                 body=b"new %s" % req.target.encode())
                return Reply(headers=CT + [("Cache-Control", "max-age=1, stale-while-revalidate=60")],
                             body=b"old %s" % req.target.encode())
            return h
        up = EchoUpstream()
        up.handler = make(up)
        try:
            gw = factory(SSI_CONF, GW=port(), UP=up.port, ROOT=str(root), CACHE=str(tmp_path / name))
            seen = [get(gw, "/inc/p"), get(gw, "/inc/q")]
            time.sleep(2.2)
            for n, (page, inc) in enumerate((("/page.html", "/inc/p"), ("/outer.html", "/inc/q"))):
                with Client(gw.port) as c:
                    gate.clear()
                    c.request("GET", page)
                    r = c.read_response("GET")  # whole while the update is held
                    seen.append((r.status, r.body))
                    up.wait_requests(3 + n)
                    c.request("GET", inc)
                    gate.set()
                    seen.append(get_on(c, inc))
            seen += [get(gw, "/inc/p"), get(gw, "/inc/q")]
            runs[name] = (seen, [(q.target, q.header("X-V")) for q in up.requests])
        finally:
            gate.set()
            up.stop()
    assert runs["portvakt"] == runs["nginx"], runs
    seen, asked = runs["portvakt"]
    assert seen == [(200, "MISS", b"old /inc/p"), (200, "MISS", b"old /inc/q"),
                    (200, b"Aold /inc/pB"), (200, "HIT", b"new /inc/p"),
                    (200, b"Xmold /inc/qnY"), (200, "HIT", b"new /inc/q"),
                    (200, "HIT", b"new /inc/p"), (200, "HIT", b"new /inc/q")]
    assert asked == [("/inc/p", None), ("/inc/q", None), ("/inc/p", None), ("/inc/q", "m:/mid.html")]


def test_background_update_in_include_outlives_client(portvakt, port, tmp_path):
    # the client closes while an include's update is held (the page
    # whole, the request's end waiting for the update): the next page is
    # whole; a stop (worker_shutdown_timeout) while an update is held
    # ends the request and aborts its update
    root = tmp_path / "html"
    root.mkdir()
    (root / "page.html").write_text('A<!--#include virtual="/inc/p" -->B')
    gate, last = threading.Event(), threading.Event()

    def make(up):
        def h(req):
            if len(up.requests) == 2:
                gate.wait(10.0)
            if len(up.requests) == 3:
                last.wait(10.0)
            return Reply(headers=CT + [("Cache-Control", "max-age=1, stale-while-revalidate=60")],
                         body=b"body %d" % len(up.requests))
        return h
    up = EchoUpstream()
    up.handler = make(up)
    try:
        gw = portvakt("error_log stderr info;\nworker_shutdown_timeout 1s;\n" + SSI_CONF,
                      GW=port(), UP=up.port, ROOT=str(root), CACHE=str(tmp_path / "c"))
        assert get(gw, "/inc/p") == (200, "MISS", b"body 1")
        time.sleep(2.2)
        with Client(gw.port) as c:
            c.request("GET", "/page.html")
            assert c.read_response("GET").body == b"Abody 1B"
            up.wait_requests(2)
        gate.set()
        r = http(gw.port, "GET", "/page.html")
        assert r.status == 200 and r.body.startswith(b"Abody ") and r.body.endswith(b"B"), r.body
        time.sleep(2.2)
        with Client(gw.port) as c:
            c.request("GET", "/page.html")
            assert c.read_response("GET").body == b"Abody 2B"
            up.wait_requests(3)
            assert gw.stop() == 0
        assert 'background subrequest "/inc/p" aborted: the request ended' in gw.stderr()
    finally:
        last.set()
        gate.set()
        up.stop()


def test_background_update_in_include_h2(portvakt, nginx, port, tmp_path):
    # over HTTP/2 (h2c) too: the page is whole while the include's update
    # holds its upstream
    need_nginx()
    root = tmp_path / "html"
    root.mkdir()
    (root / "page.html").write_text('A<!--#include virtual="/inc/p" -->B')
    out = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        gate = threading.Event()

        def make(up, gate=gate):
            def h(req):
                if len(up.requests) == 2:
                    gate.wait(10.0)
                return Reply(headers=CT + [("Cache-Control", "max-age=1, stale-while-revalidate=60")],
                             body=b"body %d" % len(up.requests))
            return h
        up = EchoUpstream()
        up.handler = make(up)
        try:
            gw = factory(SSI_CONF.replace("listen 127.0.0.1:@GW@;", "listen 127.0.0.1:@GW@ http2;"),
                         GW=port(), UP=up.port, ROOT=str(root), CACHE=str(tmp_path / name))
            curl = ["curl", "-s", "-m", "5", "--http2-prior-knowledge", "http://127.0.0.1:%d" % gw.port]
            first = subprocess.run(curl[:-1] + [curl[-1] + "/inc/p"], capture_output=True).stdout
            time.sleep(2.2)
            page = subprocess.run(curl[:-1] + [curl[-1] + "/page.html"], capture_output=True).stdout
            out[name] = (first, page, len(up.wait_requests(2)))
        finally:
            gate.set()
            up.stop()
    assert out["portvakt"] == out["nginx"] == (b"body 1", b"Abody 1B", 2), out
