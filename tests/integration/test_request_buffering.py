"""Request body buffering as NGINX does it: proxy_request_buffering,
client_body_buffer_size, client_body_temp_path, client_body_in_file_only,
$request_body and $request_body_file, each compared with NGINX."""

import os
import time

import pytest

from conftest import check_conf, NGINX, Client, wait_for

CONF = """
http {
    client_max_body_size 10m;
    client_body_temp_path @DIR@/body 1 2;
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://127.0.0.1:@UP@; }
        location /v11 {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /off {
            proxy_request_buffering off;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /vars {
            client_body_buffer_size 1k;
            proxy_set_header X-Body $request_body;
            proxy_set_header X-File $request_body_file;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /keep {
            client_body_in_file_only on;
            proxy_set_header X-File $request_body_file;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /clean {
            client_body_in_file_only clean;
            proxy_set_header X-File $request_body_file;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""

KINDS = ["portvakt", "nginx"]


@pytest.fixture(params=KINDS)
def gw(request, portvakt, nginx, upstream, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream()
    d = tmp_path / ("temp-" + request.param)
    d.mkdir()
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port, DIR=str(d))
    g.up, g.dir = up, d
    return g


def post(gw, target, body, chunked=False, parts=1, pause=0.3):
    """POST body in `parts` writes; the upstream's view of the request is
    checked between them by `between` (a list of head counts)."""
    seen = []
    with Client(gw.port) as c:
        head = b"POST %s HTTP/1.1\r\nHost: x\r\n" % target.encode()
        if chunked:
            head += b"Transfer-Encoding: chunked\r\n\r\n"
        else:
            head += b"Content-Length: %d\r\n\r\n" % len(body)
        step = (len(body) + parts - 1) // parts
        for i in range(parts):
            piece = body[i * step:(i + 1) * step]
            if chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
                if i == parts - 1:
                    piece += b"0\r\n\r\n"
            c.send((head if i == 0 else b"") + piece)
            if i < parts - 1:
                time.sleep(pause)
                seen.append(len(gw.up.heads))
        r = c.read_response()
    return r, seen


def test_whole_body_before_the_upstream_is_asked(gw):
    body = b"a" * 100000
    r, seen = post(gw, "/v11/up", body, parts=2)
    assert r.status == 200
    assert seen == [0]  # nothing reached the upstream while the client sent
    got = gw.up.last()
    assert got.body == body
    assert got.header("Content-Length") == "100000"


def test_chunked_body_sent_with_its_length(gw):
    """A chunked body reaches an HTTP/1.0 upstream (NGINX's default
    proxy_http_version) and an HTTP/1.1 one with a Content-Length."""
    body = b"xyz" * 5000
    for target in ("/c", "/v11/c"):
        r, _ = post(gw, target, body, chunked=True, parts=3, pause=0.05)
        assert r.status == 200
        got = gw.up.last()
        assert got.body == body
        assert got.header("Content-Length") == str(len(body))
        assert got.header("Transfer-Encoding") is None


def test_empty_chunked_body(gw):
    with Client(gw.port) as c:
        c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert c.read_response().status == 200
    assert gw.up.last().header("Content-Length") == "0"


def test_buffering_off_streams(gw):
    body = b"s" * 100000
    r, seen = post(gw, "/off/s", body, parts=2)
    assert r.status == 200
    assert seen == [1]  # the upstream had the head while the client sent
    assert gw.up.last().body == body


def test_request_body_variables(gw):
    r, _ = post(gw, "/vars/small", b"hello=1")
    assert r.status == 200
    got = gw.up.last()
    assert got.header("X-Body") == "hello=1"
    assert got.header("X-File") is None
    # past client_body_buffer_size: in a temp file, no $request_body
    big = b"b" * 5000
    r, _ = post(gw, "/vars/big", big)
    assert r.status == 200
    got = gw.up.last()
    assert got.body == big
    assert got.header("X-Body") is None
    f = got.header("X-File")
    assert f and f.startswith(str(gw.dir / "body") + "/")
    # levels 1 2: DIR/body/D/DD/NNNNNNNNNN, the levels from the name's end
    rel = f[len(str(gw.dir / "body")) + 1:].split("/")
    assert len(rel) == 3 and len(rel[0]) == 1 and len(rel[1]) == 2 and len(rel[2]) == 10
    assert rel[2].endswith(rel[1] + rel[0])
    # removed at the request's end, once the response is out
    wait_for(lambda: not os.path.exists(f), what="temp file removed")


def test_client_body_in_file_only(gw):
    body = b"keep me"
    r, _ = post(gw, "/keep/k", body)
    assert r.status == 200
    f = gw.up.last().header("X-File")
    with open(f, "rb") as fh:
        assert fh.read() == body  # kept after the request (on)
    r, _ = post(gw, "/clean/k", body)
    f = gw.up.last().header("X-File")
    assert f and gw.up.last().body == body
    wait_for(lambda: not os.path.exists(f), what="temp file removed (clean)")


def test_too_large_chunked_body_is_413(gw):
    with Client(gw.port) as c:
        c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (1 << 20, b"z" * (1 << 20))
        try:
            for _ in range(12):
                c.send(piece)
        except OSError:
            pass
        assert c.read_response().status == 413
    assert gw.up.requests == []


def check(tmp_path, body):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n%s\n}\n" % (tmp_path, body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("proxy_request_buffering x;", 'it must be "on" or "off"'),
    ("client_body_buffer_size x;", '"client_body_buffer_size" directive invalid value'),
    ("client_body_in_file_only x;", 'invalid value "x"'),
    ("client_body_in_single_buffer 1;", 'it must be "on" or "off"'),
    ("client_body_buffer_size 1k; client_body_buffer_size 2k;", '"client_body_buffer_size" directive is duplicate'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
