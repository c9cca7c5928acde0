"""error_page (codes, `=`, `=CODE`, URIs, named locations, redirect URLs),
recursive_error_pages, proxy_intercept_errors, named and nested locations,
as NGINX runs them; test_same_answers_as_nginx compares every answer and
what the upstream received with NGINX's.
"""

import os
import subprocess
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import NGINX, PORTVAKT, EchoUpstream, Reply, free_port, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        error_page 404 /404.html;
        location = /404.html { internal; return 200 "custom 404 for $uri\\n"; }
        location /missing { return 404; }
        location /eq { error_page 404 = /found; return 404; }
        location = /found { return 200 "found $request_method $uri $args\\n"; }
        location /eqcode { error_page 404 =201 /found?from=eqcode; return 404; }
        location /eq301 { error_page 404 =301 http://example.test/moved; return 404; }
        location /url { error_page 403 http://example.test/login; return 403; }
        location /named { error_page 418 = @fallback; return 418; }
        location @fallback { proxy_pass http://127.0.0.1:@UP@; }
        location /proxied {
            proxy_intercept_errors on;
            error_page 500 502 503 /oops;
            error_page 401 = @fallback;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location = /oops { return 200 "oops $uri\\n"; }
        location /nointercept { error_page 500 /oops; proxy_pass http://127.0.0.1:@UP@; }
        location /loop { error_page 404 /loop2; return 404; }
        location /loop2 { error_page 404 /loop; return 404; }
        location /rec { recursive_error_pages on; error_page 404 /rec2; return 404; }
        location /rec2 { recursive_error_pages on; error_page 404 /rec; return 404; }
        location /dead { error_page 502 @dead; proxy_pass http://127.0.0.1:@DEAD@; }
        location @dead { return 200 "upstream down\\n"; }
        location /post { error_page 405 = /found; return 405; }
        location /redir302 { error_page 302 /text200; return 302 "text"; }
        location /redir301 { error_page 301 =200 /text200; return 301 /elsewhere; }
        location = /text200 { return 200 "text $status"; }
        location /nonamed { error_page 404 @nosuch; return 404; }
        location /tointernal { error_page 404 = /internal-only; return 404; }
        location /internal-only { internal; return 200 "internal\\n"; }
        location /nested/ {
            location /nested/deep/ { return 200 "deep\\n"; }
            location ~ \\.json$ { return 200 "json in nested\\n"; }
            return 200 "nested\\n";
        }
        location ~ ^/nested/deep/x { return 200 "outer regex\\n"; }
        location /prefix/ {
            location ~ ^/prefix/(\\w+)$ { return 200 "nested regex $1\\n"; }
            location = /prefix/exact { return 200 "nested exact\\n"; }
        }
        location ^~ /stop/ {
            location ~ x { return 200 "nested x\\n"; }
            return 200 "stop\\n";
        }
        location ~ ^/xx { return 200 "outer x\\n"; }
        location /inh/ {
            add_header X-Outer outer;
            location /inh/in/ { return 200 "inherits\\n"; }
        }
    }
}
"""


def answer(req):
    q = dict(parse_qsl(urlsplit(req.target).query))
    headers = [("WWW-Authenticate", "Basic realm=up")] if q.get("s") == "401" else []
    return Reply(status=int(q.get("s", "200")), headers=headers,
                 body=("up %s %s\n" % (req.method, req.target)).encode())


REQUESTS = [
    ("GET", "/missing"), ("GET", "/nowhere?a=1"), ("GET", "/eq"), ("GET", "/eqcode"),
    ("GET", "/eq301"), ("GET", "/url"), ("GET", "/named?x=1"), ("GET", "/proxied?s=502"),
    ("GET", "/proxied?s=404"), ("GET", "/proxied?s=200"), ("GET", "/proxied?s=401"),
    ("GET", "/nointercept?s=500"), ("GET", "/loop"), ("GET", "/rec"), ("GET", "/dead"),
    ("POST", "/post"), ("HEAD", "/missing"), ("GET", "/nonamed"), ("GET", "/tointernal"),
    ("GET", "/internal-only"), ("GET", "/404.html"), ("GET", "/redir302"), ("GET", "/redir301"),
    ("GET", "/nested/a"), ("GET", "/nested/deep/a"), ("GET", "/nested/deep/x"), ("GET", "/nested/a.json"),
    ("GET", "/prefix/word"), ("GET", "/prefix/exact"), ("GET", "/prefix/a/b"),
    ("GET", "/stop/x"), ("GET", "/stop/y"), ("GET", "/xx"), ("GET", "/inh/in/"),
]


def start(factory, port):
    up = EchoUpstream(handler=answer)
    gw = factory(CONF, GW=port(), UP=up.port, DEAD=free_port())
    return gw, up


def observe(gw, up, method, target):
    n = len(up.requests)
    body = b"data" if method == "POST" else None
    r = http(gw.port, method, target, body=body, host="ep.test")
    loc = (r.header("Location") or "").replace(":%d" % gw.port, ":GW")
    seen = {"status": r.status, "location": loc, "x-outer": r.header("X-Outer"),
            "www-authenticate": r.header("WWW-Authenticate")}
    text = r.body.decode(errors="replace")
    for token in ("nginx/1.22.1", "portvakt/0.1.0"):
        text = text.replace(token, "SERVER")
    seen["body"] = text
    if len(up.requests) > n:
        got = up.last()
        seen["upstream"] = (got.method, got.target, got.body)
    return seen


@pytest.fixture
def ep(portvakt, port):
    gw, up = start(portvakt, port)
    yield gw, up
    up.stop()


def get(ep, target, method="GET"):
    return observe(*ep, method, target)


def test_error_page_uri_keeps_the_code(ep):
    got = get(ep, "/missing")
    assert (got["status"], got["body"]) == (404, "custom 404 for /404.html\n")
    assert get(ep, "/nowhere?a=1")["status"] == 404


@pytest.mark.parametrize("target,status,body", [
    ("/eq", 200, "found GET /found \n"),
    ("/eqcode", 201, "found GET /found from=eqcode\n"),
])
def test_error_page_response_codes(ep, target, status, body):
    got = get(ep, target)
    assert (got["status"], got["body"]) == (status, body)


@pytest.mark.parametrize("target,status,location", [
    ("/eq301", 301, "http://example.test/moved"),
    ("/url", 302, "http://example.test/login"),
])
def test_error_page_redirect_urls(ep, target, status, location):
    got = get(ep, target)
    assert (got["status"], got["location"]) == (status, location)


def test_named_location(ep):
    got = get(ep, "/named?x=1")
    assert got["status"] == 200 and got["upstream"][:2] == ("GET", "/named?x=1")


def test_intercept_errors(ep):
    got = get(ep, "/proxied?s=502")
    assert (got["status"], got["body"]) == (502, "oops /oops\n")
    assert get(ep, "/proxied?s=404")["body"].startswith("up GET")   # no error_page for 404
    got = get(ep, "/nointercept?s=500")
    assert (got["status"], got["body"]) == (500, "up GET /nointercept?s=500\n")


def test_intercepted_401_keeps_www_authenticate(ep):
    got = get(ep, "/proxied?s=401")
    assert got["www-authenticate"] == "Basic realm=up"


def test_not_recursive_and_cycles(ep):
    got = get(ep, "/loop")
    assert got["status"] == 404 and "<h1>404 Not Found</h1>" in got["body"]
    assert get(ep, "/rec")["status"] == 500


def test_upstream_failure_to_named(ep):
    got = get(ep, "/dead")
    assert (got["status"], got["body"]) == (502, "upstream down\n")


@pytest.mark.parametrize("target,status,location,body", [
    ("/redir302", 302, "text", "text 302"),
    ("/redir301", 200, "http://ep.test:GW/elsewhere", "text 200"),
])
def test_redirect_keeps_its_location(ep, target, status, location, body):
    """rewrite.t's "error 302 return 200 text": the page answers with the
    code, and the redirect's Location stays."""
    got = get(ep, target)
    assert (got["status"], got["location"], got["body"]) == (status, location, body)


def test_post_becomes_get(ep):
    assert get(ep, "/post", "POST")["body"] == "found GET /found \n"


def test_unknown_named_location_is_500(ep):
    assert get(ep, "/nonamed")["status"] == 500


def test_internal_locations(ep):
    assert get(ep, "/tointernal")["body"] == "internal\n"
    assert get(ep, "/internal-only")["status"] == 404


@pytest.mark.parametrize("target,body", [
    ("/nested/a", "nested\n"), ("/nested/deep/a", "deep\n"), ("/nested/deep/x", "outer regex\n"),
    ("/nested/a.json", "json in nested\n"), ("/prefix/word", "nested regex word\n"),
    ("/prefix/exact", "nested exact\n"), ("/stop/x", "nested x\n"), ("/stop/y", "stop\n"),
    ("/xx", "outer x\n"), ("/inh/in/", "inherits\n"),
])
def test_nested_locations(ep, target, body):
    assert get(ep, target)["body"] == body


def test_nested_location_inherits(ep):
    assert get(ep, "/inh/in/")["x-outer"] == "outer"


def test_same_answers_as_nginx(portvakt, nginx, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, theirs = start(portvakt, port), start(nginx, port)
    diffs = []
    try:
        for method, target in REQUESTS:
            a, b = observe(*ours, method, target), observe(*theirs, method, target)
            if a != b:
                diffs.append((method + " " + target, a, b))
    finally:
        ours[1].stop(), theirs[1].stop()
    assert not diffs, "\n".join("%s\n  portvakt %r\n  nginx    %r" % d for d in diffs)


# ---- -t errors, with NGINX's wording ----

def check(tmp_path, body):
    path = tmp_path / "gw.conf"
    path.write_text("http {\n    server {\n        listen 127.0.0.1:1;\n%s\n    }\n}\n" % body)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode()


@pytest.mark.parametrize("body,words", [
    ("        error_page 200 /x;", ['value "200" must be between 300 and 599']),
    ("        error_page 499 /x;", ['invalid value "499"']),
    ("        error_page 404 =abc /x;", ['invalid value "=abc"']),
    ("        error_page =404 /x;", ['invalid value "=404"']),
    ("        error_page /x;", ['invalid number of arguments in "error_page"']),
    ("        recursive_error_pages maybe;", ['it must be "on" or "off"']),
    ("        location = /e { location /e/x { } }", ['cannot be inside the exact location "/e"']),
    ("        location @n { location /x { } }", ['cannot be inside the named location "@n"']),
    ("        location /a { location @n { } }", ['named location "@n" can be on the server level only']),
    ("        location /a { location /b { } }", ['location "/b" is outside location "/a"']),
    ("        location @n { } location @n { }", ['duplicate location "@n"']),
    ("        location @n { proxy_pass http://127.0.0.1:2/x; }", ['cannot have URI part']),
])
def test_config_errors(tmp_path, body, words):
    rc, out = check(tmp_path, body)
    assert rc != 0
    for w in words:
        assert w in out, out
