"""Requests refused while their head is read, as NGINX refuses them:
max_headers (1000 by default, the limit of the server Host names; more
fields are 400 with NGINX's "Request Header Or Cookie Too Large" page,
its code 494 for error_page; fields dropped as invalid not counted), TRACE (405), and error_page for such refusals (the
server a valid Host named before the refused field, else the address's
default server; $status is the code refused). test_same_as_nginx sends
every request to both and compares the answers.
"""

import os

import pytest

from conftest import NGINX, raw

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        server_name def;
        error_page 400 405 /err;
        location / { return 200 "root $request_method $uri\\n"; }
        location /err { return 200 "err $request_method $uri host=$host status=$status\\n"; }
        location /return301 { return 301 /redirect; }
        location /echo { return 200 "echo $request_method $request_uri $http_content_length\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name other;
        error_page 400 405 /err2;
        location / { return 200 "other\\n"; }
        location /err2 { return 200 "err2 $request_method $uri status=$status\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name few;
        max_headers 3;
        location / { return 200 "few\\n"; }
    }
    server {
        listen 127.0.0.1:@GW3@;
        error_page 400 /err;
        location /err { proxy_pass http://127.0.0.1:@GW@/echo; }
    }
    server {
        listen 127.0.0.1:@GW2@;
        max_headers 3;
        error_page 400 494 /return301;
        location /return301 { return 301 /redirect; }
    }
}
"""


def fields(n):
    return "".join("X-%d: a\r\n" % i for i in range(n))


# (name, request bytes, status, body or None for a built-in page)
CASES = [
    ("invalid host", "GET /x HTTP/1.0\r\nHost: .\r\n\r\n", 400, "err GET /err host=def status=400\n"),
    ("no host", "GET /x HTTP/1.1\r\n\r\n", 400, "err GET /err host=def status=400\n"),
    ("nul in target", "GET /x%00 HTTP/1.0\r\n\r\n", 400, "err GET /err host=def status=400\n"),
    ("duplicate host", "GET /x HTTP/1.0\r\nHost: other\r\nHost: other\r\n\r\n", 400, "err2 GET /err2 status=400\n"),
    ("trace", "TRACE /x HTTP/1.1\r\nHost: other\r\n\r\n", 405, "err2 GET /err2 status=405\n"),
    ("trace default", "TRACE /x HTTP/1.1\r\nHost: def\r\n\r\n", 405, "err GET /err host=def status=405\n"),
    # refused while the head is parsed: the page of the server a whole,
    # valid Host named before, else of the default server
    ("bad target", "GET x HTTP/1.0\r\nHost: other\r\n\r\n", 400, "err GET /err host=def status=400\n"),
    ("no request line", "BAD\r\n\r\n", 400, "err GET /err host=def status=400\n"),
    ("duplicate length", "POST /x HTTP/1.1\r\nHost: other\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     400, "err2 GET /err2 status=400\n"),
    ("control in name", "GET /x HTTP/1.1\r\nHost: other\r\nX\x01: a\r\n\r\n", 400, "err2 GET /err2 status=400\n"),
    ("control before host", "GET /x HTTP/1.1\r\nX\x01: a\r\nHost: other\r\n\r\n", 400,
     "err GET /err host=def status=400\n"),
    ("head invalid host", "HEAD /x HTTP/1.0\r\nHost: .\r\n\r\n", 400, ""),
    ("max_headers", "GET / HTTP/1.0\r\nHost: few\r\n" + fields(2) + "\r\n", 200, "few\n"),
    ("max_headers over", "GET / HTTP/1.0\r\nHost: few\r\n" + fields(3) + "\r\n", 400, None),
    ("max_headers invalid not counted", "GET / HTTP/1.0\r\nHost: few\r\nX.y: 1\r\n" + fields(2) + "\r\n", 200, "few\n"),
    ("default max_headers", "GET / HTTP/1.0\r\nHost: other\r\n" + fields(999) + "\r\n", 200, "other\n"),
    # NGINX's code for it is 494, which an error_page 400 does not take
    ("default max_headers over", "GET / HTTP/1.0\r\nHost: other\r\n" + fields(1000) + "\r\n", 400, None),
    # each field is held to the limit of the server known before it
    ("max_headers before host", "GET / HTTP/1.0\r\n" + fields(3) + "Host: few\r\n\r\n", 200, "few\n"),
    ("max_headers after host", "GET / HTTP/1.0\r\nX-a: 1\r\nHost: few\r\n" + fields(2) + "\r\n", 400, None),
]


def ask(port, data):
    r, closed = raw(port, data.encode("latin-1"), method="HEAD" if data.startswith("HEAD") else "GET")
    body = r.body.decode("latin-1")
    if "<html>" in body:
        body = None
    return r.status, body, closed


@pytest.fixture
def gw(gateway, port):
    p = port()
    return gateway(CONF, GW=p, GW2=port(), GW3=port()), p


@pytest.mark.parametrize("name,data,status,body", CASES, ids=[c[0] for c in CASES])
def test_head_refusals(gw, name, data, status, body):
    st, got, closed = ask(gw[1], data)
    assert (st, got) == (status, body)
    if status >= 400:
        assert closed  # as NGINX: an error found with the head closes


@pytest.mark.parametrize("head", [
    b"GET /x HTTP/1.0\r\nHost: .\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: h\r\n" + fields(3).encode() + b"\r\n",
], ids=["invalid host", "max_headers"])
def test_error_page_redirect_names_the_local_address(gateway, port, head):
    """http_absolute_redirect.t's "invalid host - using local sockaddr":
    the page is a redirect, and without a valid Host its Location names
    the address the request came to."""
    p = port()
    gateway(CONF, GW=port(), GW2=p, GW3=port())
    r, closed = raw(p, head)
    assert r.status == 301 and r.header("Location") in ("http://127.0.0.1:%d/redirect" % p,
                                                        "http://h:%d/redirect" % p)
    assert closed


@pytest.mark.parametrize("head", [
    b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: .\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
    b"POST /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 5\r\n\r\nabcde",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX\x01: 1\r\n\r\n5\r\nabcde\r\n0\r\n\r\n",
], ids=["bad target", "invalid host with body", "two lengths", "two hosts with body", "bad field chunked"])
def test_error_page_proxied(gateway, port, head):
    """The page of a refused head is a GET of its URI, without the body."""
    p = port()
    gateway(CONF, GW=port(), GW2=port(), GW3=p)
    r, closed = raw(p, head)
    assert r.status == 400 and r.body.startswith(b"echo GET /echo ")
    assert closed


def test_same_as_nginx(portvakt, nginx, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    p1, p2 = port(), port()
    portvakt(CONF, GW=p1, GW2=port(), GW3=port())
    nginx(CONF, GW=p2, GW2=port(), GW3=port())
    diffs = []
    for name, data, _, _ in CASES:
        a, b = ask(p1, data), ask(p2, data)
        if a != b:
            diffs.append((name, a, b))
    assert not diffs, "\n".join("%s\n  portvakt %r\n  nginx    %r" % d for d in diffs)


H2CONF = """
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        max_headers 3;
        location / { return 200 "ok\\n"; }
    }
}
"""


@pytest.mark.parametrize("fields,status", [
    ([("x-a", "1"), ("x-b", "2")], 200),
    ([("x-a", "1"), ("x-b", "2"), ("x-c", "3")], 200),
    ([("x-a", "1"), ("x-b", "2"), ("x-c", "3"), ("x-d", "4")], 400),
    ([("x-a", "1"), ("cookie", "a=1"), ("cookie", "b=2"), ("x-c", "3")], 200),
], ids=["two", "three", "four", "cookies not counted"])
def test_max_headers_over_http2(gateway, port, fields, status):
    """HTTP/2 fields are held to the connection's server's max_headers;
    Cookie fields count as none (NGINX joins them)."""
    from test_h2 import H2Client
    p = port()
    gateway(H2CONF, GW=p)
    c = H2Client(p)
    try:
        st, _, _, _ = c.get("/", headers=fields)
    finally:
        c.close()
    assert st == status
