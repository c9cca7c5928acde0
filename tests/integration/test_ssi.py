"""SSI beside NGINX: includes of proxied and static parts put out in
document order while the first part is slow (the parts run in parallel),
include set= and wait=, echo with its encodings and defaults, set, if /
elif / else with a regex's groups, config errmsg, a failed command, a
stub for a missing part, and the head changes (no Content-Length, no
Last-Modified or ETag)."""

import os
import threading

import pytest

from conftest import NGINX, EchoUpstream, Reply, free_port, http, wait_for

CONF = """
http {
    types { text/html html; }
    server {
        listen 127.0.0.1:@GW@;
        root @ROOT@;
        location / { ssi on; }
        location /slow/ { proxy_pass http://@SLOW@/; }
        location /fast/ { proxy_pass http://@FAST@/; }
        location = /text { return 200 "T"; }
        location /nossi/ { }
    }
}
"""

PAGES = {
    # a slow proxied part, a fast one and a static file: in document order
    "order.html": 'A<!--#include virtual="/slow/x" -->B<!--#include virtual="/fast/y" -->'
                  'C<!--#include virtual="/part.html" -->D<!--#include virtual="/text" -->E',
    "part.html": "P",
    "set.html": '<!--#include virtual="/fast/z" set="v" -->[<!--#echo var="v" -->]'
                '<!--#include virtual="/part.html" wait="yes" -->.',
    "echo.html": '<!--#set var="a" value="<b>&$uri" -->'
                 '<!--#echo var="a" -->|<!--#echo var="a" encoding="url" -->|'
                 '<!--#echo var="a" encoding="none" -->|<!--#echo var="nothing" -->|'
                 '<!--#echo var="nothing" default="dflt" -->|<!--#echo var="arg_q" encoding="entity" -->',
    "if.html": '<!--#if expr="$arg_x = /^(a+)(?<rest>.*)/" -->1:$1<!--#echo var="1" -->:'
               '<!--#echo var="rest" --><!--#elif expr="$arg_x" -->2<!--#else -->3<!--#endif -->',
    "err.html": 'x<!--#config errmsg="[E]" --><!--#bogus a="b" -->y<!--#echo -->z'
                '<!--#include virtual="/x" file="/y" -->w',
    "stub.html": '<!--#block name="s" -->STUB<!--#endblock -->'
                 '(<!--#include virtual="/missing.html" stub="s" -->)',
    "missing404.html": '(<!--#include virtual="/missing.html" -->)',
}


def answers(start, tmp_path):
    root = tmp_path / "html"
    root.mkdir(exist_ok=True)
    for name, text in PAGES.items():
        (root / name).write_text(text)
    (root / "nossi").mkdir(exist_ok=True)
    (root / "nossi" / "plain.html").write_text("<!--#echo var=\"uri\" -->")
    seen = []
    gate = threading.Event()

    def slow(req):
        # answered once the fast part, later in the page, has been asked for
        seen.append(gate.wait(5.0))
        return Reply(200, body=b"SLOW")

    def fast(req):
        gate.set()
        return Reply(200, body=b"FAST")

    s_up = EchoUpstream(handler=slow)
    f_up = EchoUpstream(handler=fast)
    try:
        port = free_port()
        gw = start(CONF, GW=port, ROOT=str(root), SLOW=s_up.addr, FAST=f_up.addr)
        out = {}
        for target in ["/order.html", "/set.html", "/echo.html?q=%22a%22", "/if.html?x=aab",
                       "/if.html?x=b", "/if.html", "/err.html", "/stub.html", "/missing404.html",
                       "/nossi/plain.html"]:
            r = http(port, "GET", target)
            body = r.body.decode()
            body = body.replace("nginx/1.22.1", "SERVER").replace("portvakt/0.1.0", "SERVER")
            out[target] = (r.status, body, r.header("content-length") is not None,
                           r.header("last-modified") is not None, r.header("etag") is not None)
        # err.html's include with both virtual= and file=, in NGINX's words
        wait_for(lambda: 'inclusion may be either virtual="/x" or file="/y"' in gw.stderr(), 5,
                 what="the include's error logged")
        return out, seen[:1]
    finally:
        s_up.stop()
        f_up.stop()


def test_ssi(gateway, tmp_path):
    out, seen = answers(gateway, tmp_path)
    # the fast part was asked for while the slow one waited: they ran in parallel
    assert seen == [True]
    assert out["/order.html"] == (200, "ASLOWBFASTCPDTE", False, False, False)
    assert out["/set.html"][1] == "[FAST]P."
    assert out["/echo.html?q=%22a%22"][1] == \
        "&lt;b&gt;&amp;/echo.html|%3Cb%3E&/echo.html|<b>&/echo.html|(none)|dflt|%22a%22"
    assert out["/if.html?x=aab"][1] == "1:$1aa:b"
    assert out["/if.html?x=b"][1] == "2"
    assert out["/if.html"][1] == "3"
    assert out["/err.html"][1] == "x[E]y[E]z[E]w"
    assert out["/stub.html"][1] == "(STUB)"
    assert out["/missing404.html"][1].startswith("(<html>") and "404 Not Found" in out["/missing404.html"][1]
    # a location without ssi leaves the commands, and the file's length
    assert out["/nossi/plain.html"] == (200, '<!--#echo var="uri" -->', True, True, True)


def test_same_as_nginx(portvakt, nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got = answers(portvakt, tmp_path / "p")
    want = answers(nginx, tmp_path / "n")
    assert got == want


@pytest.fixture(autouse=True)
def _dirs(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "n").mkdir()


ADD_CONF = """
http {
    types { text/html html; }
    server {
        listen 127.0.0.1:@GW@;
        root @ROOT@;
        location /both/ { add_before_body /parts/before; add_after_body /parts/after; }
        location /after/ { add_after_body /parts/after; }
        location /plain/ { add_after_body /parts/after; addition_types text/plain; }
        location /err/ { add_after_body /parts/after; return 202 "body"; }
        location = /parts/before { return 200 "B:"; }
        location = /parts/after { return 200 ":A"; }
    }
}
"""


def add_answers(start, tmp_path):
    root = tmp_path / "add"
    for d in ("both", "after", "plain"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "p.html").write_text("page")
        (root / d / "p.txt").write_text("text")
    port = free_port()
    start(ADD_CONF, GW=port, ROOT=str(root))
    out = []
    for target in ["/both/p.html", "/after/p.html", "/after/p.txt", "/plain/p.txt", "/err/x.html"]:
        r = http(port, "GET", target)
        out.append((r.status, r.body.decode(), r.header("content-length") is not None))
    return out


def test_addition(gateway, tmp_path):
    assert add_answers(gateway, tmp_path) == [
        (200, "B:page:A", False), (200, "page:A", False), (200, "text", True),
        (200, "text:A", False), (202, "body", True)]


def test_addition_same_as_nginx(portvakt, nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    assert add_answers(portvakt, tmp_path / "p") == add_answers(nginx, tmp_path / "n")
