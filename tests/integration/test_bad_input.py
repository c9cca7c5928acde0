"""Malformed and ambiguous messages, table-driven: requests from clients
(bad_input_cases.py: RFC 9112 framing, RFC 9110 field syntax, request
lines, and the http-desync-guardian corpus) and responses from upstreams.

For each request case: the status, whether the connection closes, and what
the upstream received -- nothing for a rejected request; for an accepted
one exactly one canonical request and, on the same client connection, a
follow-up request answered as itself (the connection is still in step).
Every request the upstream sees, in every case, must be unambiguous (see
assert_unambiguous). test_framing.py has the plain status checks for some
of the same inputs; these add the desync checks.

One gateway serves the whole request table (starting one per case would
take most of the run); each case checks it is still alive.
"""

import json
import re
import time

import pytest

from bad_input_cases import CASES, FORWARD, NORMALISE, REJECT, corpus_cases
from conftest import (TARGET, BadResponse, Client, Closed, EchoUpstream, Reply, free_port,
                      http, start_server, wait_for)

# max_fails=0: an upstream error in one case must not take the only
# server out of rotation for the cases after it.
CONF = """
worker_processes 1;
http {
    client_max_body_size 8m;
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
    client_header_timeout 3s;
    client_body_timeout 3s;
    upstream up { server 127.0.0.1:@UP@ max_fails=0; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_read_timeout 3s;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
FRAMING = ("content-length", "transfer-encoding")


def fold(name):
    """How a careless upstream might see a name (CGI/WSGI fold '_' and '-')."""
    return name.lower().replace("_", "-")


def assert_unambiguous(q):
    """What any request forwarded upstream must satisfy, whatever arrived."""
    assert "smuggled" not in q.target, "a hidden request was forwarded: %r" % q
    for name, value in q.headers:
        assert TOKEN.match(name), "field name %r is not a token" % name
        assert not any(ord(ch) < 0x20 and ch != "\t" or ord(ch) == 0x7f for ch in value), \
            "control character forwarded in %s: %r" % (name, value)
        if fold(name) in FRAMING:
            assert name.lower() in FRAMING, "look-alike framing field forwarded: %r" % name
    cls = q.header_all("content-length")
    tes = q.header_all("transfer-encoding")
    assert len(cls) <= 1 and len(tes) <= 1, "repeated framing fields: %r" % q.headers
    assert not (cls and tes), "Content-Length beside Transfer-Encoding: %r" % q.headers
    if tes:
        assert tes[0].lower() == "chunked" and q.chunked, q.headers
    if cls:
        assert int(cls[0]) == q.body_len, q.headers


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    up = EchoUpstream()
    g = start_server(TARGET, CONF, tmp_path_factory.mktemp("bad_input"), UP=up.port, GW=free_port())
    g.up = up
    yield g
    try:
        g.stop()
    finally:
        up.stop()


def _params(cases):
    out = []
    for c in cases:
        marks = []
        if c.only:
            marks.append(pytest.mark.portvakt_only(c.only))
        if c.defect and TARGET != "nginx":
            marks.append(pytest.mark.xfail(reason="defect: " + c.defect, strict=True))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def _corpus_params():
    cases = corpus_cases()
    if cases is None:
        return [pytest.param(None, id="corpus-missing", marks=pytest.mark.skip(
            reason="http-desync-guardian corpus not found (set PV_DESYNC_CORPUS)"))]
    return _params(cases)


def run_case(gw, case):
    up = gw.up
    assert gw.alive(), "gateway died before this case"
    up.clear()
    del up.errors[:]
    e = case.expect(TARGET)
    method = case.request_method(e.data)
    with Client(gw.port, timeout=4) as c:
        c.send(e.data)
        if case.http09:
            check_http09_answer(c, e)
        else:
            check_answer(c, e, method)
    check_upstream(gw, e)
    assert gw.alive(), "gateway died on this case"


def check_http09_answer(c, e):
    """An HTTP/0.9 answer: no head, the body, then the close."""
    data = c.read_to_close()
    assert not data.startswith(b"HTTP/"), "a head was sent: %r" % data[:200]
    if e.action == REJECT:
        assert b"<title>%d " % e.status in data, data[:200]
    else:
        assert json.loads(data)["target"] == e.up.target, data[:200]


def check_answer(c, e, method):
    """Status, connection handling and, on a kept connection, that the next
    request is answered as itself."""
    try:
        r = c.read_response(method)
    except (Closed, BadResponse) as err:
        raise AssertionError("wanted %d, got %s" % (e.status, err))
    assert r.status == e.status, "wanted %d, got %r" % (e.status, r)
    if e.close:
        assert (r.header("Connection") or "").lower() == "close", r.headers
        # NGINX's lingering close may hold the socket up to 5 s
        assert c.closed(6.0), "connection left open after %d" % r.status
    else:
        assert (r.header("Connection") or "").lower() == "keep-alive", r.headers
        # the connection is still in step: the next request is answered as itself
        c.request("GET", "/next")
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.json()["target"] == "/next", nxt


def check_upstream(gw, e):
    """Nothing reached the upstream for a rejected case; exactly the
    expected request (and the follow-up) for an accepted one."""
    up = gw.up
    if e.action == REJECT:
        # a request on a new connection is the sync point: anything the
        # rejected one made the gateway send upstream has arrived before it
        assert http(gw.port, "GET", "/sentinel").status == 200
        time.sleep(0.01)
        assert [q.target for q in up.heads] == ["/sentinel"], up.heads
    else:
        want = 1 if e.close else 2
        got = up.wait_requests(want)
        time.sleep(0.01)
        assert len(up.requests) == want, up.requests
        q = got[0]
        u = e.up
        assert (q.method, q.target) == (u.method, u.target), q
        assert q.body_len == len(u.body), (q.body_len, len(u.body))
        if len(u.body) <= up.body_keep:
            assert q.body == u.body
        for name in u.absent:
            assert not q.has(name), "%s forwarded: %r" % (name, q.headers)
        for name, value in u.present:
            assert q.header_all(name) == [value], q.headers
    for q in up.heads + up.requests:
        assert_unambiguous(q)
    assert up.errors == [], "the upstream could not parse what it got: %r" % up.errors


@pytest.mark.parametrize("case", _params(CASES))
def test_request(gw, case):
    run_case(gw, case)


@pytest.mark.parametrize("case", _corpus_params())
def test_desync_corpus(gw, case):
    run_case(gw, case)


def test_table_shape():
    """Ids are unique and every accepted case says what the upstream gets."""
    cases = CASES + (corpus_cases() or [])
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
    for c in cases:
        assert c.action in (REJECT, NORMALISE, FORWARD), c
        assert (c.action == REJECT) == (c.status >= 400), c
        assert c.action == REJECT or c.up is not None, c
        if c.nginx:
            assert c.nginx.get("why"), c


# ---------------------------------------------------------------- responses
#
# An upstream answer that cannot be framed or parsed: the client gets 502,
# the gateway closes that upstream connection (the upstream sees the close)
# and never reuses it: the next request arrives on a new one.

# max_fails=0: these tests look at one exchange and the next; a failure
# must not take the only server out of rotation for them.
RESP_CONF = """
worker_processes 1;
http {
    upstream up { server 127.0.0.1:@UP@ max_fails=0; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        proxy_read_timeout 2s;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


def head(fields, body=b"hello", status=b"HTTP/1.1 200 OK"):
    return status + b"\r\n" + fields + b"\r\n" + body


CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"
NG_CL = "NGINX 1.22 does not validate an upstream Content-Length: it keeps one of two, or reads to close"
NG_TE = "NGINX 1.22 takes any Transfer-Encoding containing 'chunked' as chunked and keeps the connection"
NG_09 = "NGINX relays a response without a valid status line as HTTP/0.9"

BAD_RESPONSES = [
    # (id, bytes, portvakt_only reason or None, defect or None)
    ("cl-and-te", head(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO),
     "NGINX 1.22 lets Transfer-Encoding override Content-Length (RFC 9112 6.3 allows it) "
     "and keeps the connection",
     None),
    ("cl-differ", head(b"Content-Length: 5\r\nContent-Length: 6\r\n"), NG_CL, None),
    ("cl-repeated-same", head(b"Content-Length: 5\r\nContent-Length: 5\r\n"),
     "NGINX 1.22 accepts identical repeated Content-Length fields", None),
    ("cl-list", head(b"Content-Length: 5, 5\r\n"), NG_CL, None),
    ("cl-plus", head(b"Content-Length: +5\r\n"), NG_CL, None),
    ("cl-negative", head(b"Content-Length: -5\r\n"), NG_CL, None),
    ("cl-hex", head(b"Content-Length: 0x5\r\n"), NG_CL, None),
    ("cl-huge", head(b"Content-Length: 18446744073709551621\r\n"), NG_CL, None),
    ("cl-empty", head(b"Content-Length: \r\n"), NG_CL, None),
    # the gateway must frame by the chunked coding only when it is the one
    # final coding, applied once
    ("te-xchunked", head(b"Transfer-Encoding: xchunked\r\n", CHUNKED_HELLO), NG_TE, None),
    ("te-chunked-twice", head(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_HELLO), NG_TE, None),
    ("te-two-fields", head(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_HELLO),
     NG_TE, None),
    ("status-garbage", b"garbage\r\n\r\n", NG_09, None),
    ("status-four-digits", head(b"Content-Length: 5\r\n", status=b"HTTP/1.1 2000 OK"), NG_09, None),
    ("status-two-digits", head(b"Content-Length: 5\r\n", status=b"HTTP/1.1 20 OK"), NG_09, None),
    ("status-lowercase", head(b"Content-Length: 5\r\n", status=b"http/1.1 200 OK"), NG_09, None),
    ("status-no-space", head(b"Content-Length: 5\r\n", status=b"HTTP/1.1 200OK"), NG_09, None),
    ("status-icy", head(b"Content-Length: 5\r\n", status=b"ICY 200 OK"), NG_09, None),
    ("status-101-unasked", head(b"Upgrade: x\r\nConnection: upgrade\r\n", b"",
                                status=b"HTTP/1.1 101 Switching Protocols"),
     "NGINX 1.22 waits for the body of an unasked 101", None),
    ("field-space-before-colon", head(b"Content-Length : 5\r\n"), None, None),
    ("field-obs-fold", head(b"X-A: a\r\n b\r\nContent-Length: 5\r\n"), None, None),
    ("field-nul", head(b"X-A: a\x00b\r\nContent-Length: 5\r\n"), None, None),
    ("field-empty-name", head(b": a\r\nContent-Length: 5\r\n"), None, None),
    ("field-ctl", head(b"X-A: a\x01b\r\nContent-Length: 5\r\n"),
     "NGINX passes control characters other than NUL, CR and LF", None),
    ("field-no-colon", head(b"X-A\r\nContent-Length: 5\r\n"),
     "NGINX takes a line without a colon as a field with an empty value", None),
    # bare CR and obs-fold stay invalid in a head with bare LF line ends
    ("lf-bare-cr", b"HTTP/1.1 200 OK\nX-A: a\rb\nContent-Length: 5\n\nhello", None, None),
    ("lf-obs-fold", b"HTTP/1.1 200 OK\nX-A: a\n b\nContent-Length: 5\n\nhello", None, None),
    # the head ends at a bare CR: "X" is swallowed and "hello" becomes the body
    # a bare CR after the last field would end the head early and shift the body
    ("bare-cr-ends-head", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\rXhello", None, None),
    # a head over the 16 KiB response buffer (NGINX's proxy_buffer_size is smaller still)
    ("head-too-big", head(b"X-Big: " + b"a" * 20000 + b"\r\nContent-Length: 5\r\n"), None, None),
    ("head-too-big-many", head(b"".join(b"X-%04d: %s\r\n" % (i, b"b" * 100) for i in range(200))
                               + b"Content-Length: 5\r\n"), None, None),
]


def _resp_params():
    out = []
    for rid, data, only, defect in BAD_RESPONSES:
        marks = []
        if only:
            marks.append(pytest.mark.portvakt_only(only))
        if defect and TARGET != "nginx":
            marks.append(pytest.mark.xfail(reason="defect: " + defect, strict=True))
        out.append(pytest.param(data, id=rid, marks=marks))
    return out


@pytest.fixture
def rgw(gateway, upstream, port):
    up = upstream()
    g = gateway(RESP_CONF, UP=up.port, GW=port())
    g.up = up
    return g


def served_by_new_connection(gw, c, first_conn):
    """The next request, on the same client connection when it was kept,
    gets a clean answer over a new upstream connection."""
    gw.up.reply = None
    if c is None:
        r = http(gw.port, "GET", "/after")
    else:
        c.request("GET", "/after")
        r = c.read_response()
    assert r.status == 200 and r.json()["target"] == "/after", r
    q = gw.up.last()
    assert q.target == "/after"
    assert q.conn_id != first_conn, "the connection that sent a bad response was reused"


@pytest.mark.parametrize("data", _resp_params())
def test_invalid_upstream_response_is_502(rgw, data):
    up = rgw.up
    # close=False: the upstream would keep the connection; only the gateway may end it
    up.reply = Reply(raw=data, close=False)
    with Client(rgw.port, timeout=5) as c:
        c.request("GET", "/bad")
        r = c.read_response()
        assert r.status == 502, r
        first = up.wait_requests(1)[0].conn_id
        # the gateway closed the upstream connection (the upstream saw EOF or,
        # with unread bytes left in the gateway's socket, a reset)
        wait_for(lambda: up.open_connections == 0, 3, what="the gateway to close the upstream connection")
        kept = (r.header("Connection") or "").lower() == "keep-alive"
        served_by_new_connection(rgw, c if kept else None, first)


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",              # chunk size garbage
    b"5\r\nhelloXX\r\n0\r\n\r\n",             # data longer than its size
    b"10000000000000005\r\nhello\r\n0\r\n\r\n",  # size beyond 2^64 (wraps to 5)
], ids=["size-garbage", "data-overrun", "size-wraps"])
def test_invalid_chunked_response_body_never_looks_complete(rgw, body):
    # The head is valid, the body framing is not, and both arrive in one
    # read. The head waits in the client queue for the first body bytes
    # (in portvakt and in NGINX alike), so the broken body is found before
    # anything is sent: the client sees the connection close with no
    # response, never something that looks complete.
    up = rgw.up
    up.reply = Reply(raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body, close=False)
    with Client(rgw.port, timeout=5) as c:
        c.request("GET", "/bad-chunks")
        data = c.read_to_close()
    assert data == b"", "a broken chunked body was relayed: %r" % data[:300]
    first = up.wait_requests(1)[0].conn_id
    wait_for(lambda: up.open_connections == 0, 3, what="the gateway to close the upstream connection")
    served_by_new_connection(rgw, None, first)


# A response head with bare LF line ends is taken as its CRLF form, as
# NGINX takes it (ngx_http_parse_status_line and _header_line take LF
# alone): the client gets the fields and the body as sent, bare LFs in the
# body unchanged, and the upstream connection is kept for the next request.
@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\nX-A: b\nContent-Length: 7\n\na\nb\r\n\n\n",
    b"HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 7\r\n\na\nb\r\n\n\n",
    b"HTTP/1.1 200 OK\nX-A: b\r\nContent-Length: 7\n\r\na\nb\r\n\n\n",
    pytest.param(b"HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nX-A: b\nContent-Length: 7\n\na\nb\r\n\n\n",
                 marks=pytest.mark.portvakt_only("NGINX 1.22 does not skip an interim 1xx response")),
    b"HTTP/1.1 200 OK\nX-A: b\nTransfer-Encoding: chunked\n\n7\r\na\nb\r\n\n\n\r\n0\r\n\r\n",
], ids=["all-lf", "fields-lf", "mixed", "interim-lf", "chunked"])
def test_upstream_bare_lf_head_is_taken(rgw, data):
    up = rgw.up
    up.reply = Reply(raw=data, close=False)
    with Client(rgw.port, timeout=5) as c:
        c.request("GET", "/lf")
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("X-A") == "b"
        assert r.body == b"a\nb\r\n\n\n"
        first = up.wait_requests(1)[0].conn_id
        up.reply = None
        c.request("GET", "/after")
        r = c.read_response()
        assert r.status == 200 and r.json()["target"] == "/after", r
        assert up.last().conn_id == first, "the upstream connection was not kept"
