"""proxy_request_buffering off as NGINX does it: what the client sent
already is read first, without waiting; a body whole by then (within the
body buffer) is kept as a buffered one ($request_body, sent with its
length, never in a file), anything else streams at once. A chunked body
goes upstream one chunk per read; Expect: 100-continue is answered as
the body is first read. Each test runs against NGINX too."""

import os
import socket
import time

import pytest

from conftest import NGINX, Client

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        client_header_buffer_size 1k;
        proxy_request_buffering off;
        proxy_http_version 1.1;
        client_body_buffer_size 2k;
        client_body_temp_path @DIR@/body;
        location / {
            client_body_in_file_only on;
            proxy_set_header X-Body $request_body;
            proxy_set_header X-File $request_body_file;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /raw/ { proxy_pass http://127.0.0.1:@RAW@/; }
    }
}
"""


class RawUpstream:
    """One listening socket: the test accepts and reads by hand."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def read_until(s, buf, pred):
    """Read from s until pred(buf) holds (5 s at most)."""
    s.settimeout(5)
    while not pred(buf):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up, rawup = upstream(), RawUpstream()
    request.addfinalizer(rawup.close)
    d = tmp_path / ("temp-" + request.param)
    d.mkdir()
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port, RAW=rawup.port,
                                                             DIR=str(d))
    g.up, g.raw, g.dir = up, rawup, d
    return g


def send(gw, head, body):
    with Client(gw.port) as c:
        c.send(head + body)
        return c.read_response()


def cl_head(n):
    return b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n


CHUNKED = b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_body_whole_on_arrival_is_buffered(gw):
    """Sent with its head, a body that fits is $request_body, goes on with
    its Content-Length (a chunked one too) and is never in a file, whatever
    client_body_in_file_only says."""
    for head, body, sent in ((cl_head(1500), b"q" * 1500, b"q" * 1500),
                             (CHUNKED, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world")):
        assert send(gw, head, body).status == 200
        got = gw.up.last()
        assert got.body == sent
        assert got.header("X-Body") == sent.decode()
        assert got.header("X-File") is None
        assert got.header("Content-Length") == str(len(sent))
        assert not got.chunked
    assert not os.path.exists(gw.dir / "body") or not os.listdir(gw.dir / "body")


@pytest.mark.parametrize("n,whole", [(3500, True), (4000, False), (40000, False)])
def test_body_past_the_buffers_streams(gw, n, whole):
    """What the head buffer's rest (1k less the head) and one body buffer
    (client_body_buffer_size, a quarter more for a Content-Length body)
    hold is kept whole; a larger body streams with the client's framing.
    (NGINX's $request_body then has the part it read first; portvakt's
    is not found.)"""
    big = b"z" * n
    assert send(gw, cl_head(n), big).status == 200
    got = gw.up.last()
    assert got.body == big and got.header("Content-Length") == str(n)
    assert (got.header("X-Body") == big.decode()) == whole
    assert send(gw, CHUNKED, b"%x\r\n%s\r\n0\r\n\r\n" % (n, big)).status == 200
    got = gw.up.last()
    assert got.body == big and got.header("X-Body") != big.decode()
    assert got.chunked and got.header("Content-Length") is None


def test_small_body_not_yet_sent_does_not_hold_the_upstream_back(gw):
    """A 10-byte body still to come: the upstream gets the head at once,
    then the body as it comes."""
    with Client(gw.port) as c:
        c.send(b"POST /raw/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n")
        u, _ = gw.raw.sock.accept()
        with u:
            buf = read_until(u, b"", lambda b: b"\r\n\r\n" in b)
            assert buf.endswith(b"\r\n\r\n") and b"Content-Length: 10\r\n" in buf
            c.send(b"0123456789")
            assert read_until(u, b"", lambda b: len(b) >= 10) == b"0123456789"
            u.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        assert c.read_response().status == 200


def test_chunked_body_goes_one_chunk_per_read(gw):
    """Two chunks that came at once go upstream as one chunk, as NGINX
    frames what it sends at once; the rest follows with the last chunk."""
    with Client(gw.port) as c:
        c.send(b"POST /raw/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n4\r\nmany\r\n")
        u, _ = gw.raw.sock.accept()
        with u:
            buf = read_until(u, b"", lambda b: b.endswith(b"many\r\n"))
            assert b"Transfer-Encoding: chunked\r\n" in buf
            assert buf.split(b"\r\n\r\n", 1)[1] == b"9\r\n01234many\r\n"
            c.send(b"5\r\n56789\r\n0\r\n\r\n")
            assert read_until(u, b"", lambda b: b.endswith(b"0\r\n\r\n")) == b"5\r\n56789\r\n0\r\n\r\n"
            u.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        assert c.read_response().status == 200


@pytest.mark.parametrize("body", [b"", b"hello"])
def test_expectation_answered_as_the_body_is_read(gw, body):
    """Expect: 100-continue gets its 100 when the proxy starts on the
    body, whatever has arrived of it (an empty one too), as NGINX's."""
    with Client(gw.port) as c:
        c.send(b"POST /b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        out = b""
        while True:
            d = c.sock.recv(65536)
            if not d:
                break
            out += d
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "), out[:80]
    assert gw.up.last().body == body
