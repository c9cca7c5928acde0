"""fastcgi_buffering and its settings beside NGINX: a slow client's
response held in fastcgi_buffers and a temp file under fastcgi_temp_path
(the responder's connection done while the client has read nothing),
fastcgi_max_temp_file_size 0, fastcgi_buffering off and the responder's
X-Accel-Buffering; fastcgi_limit_rate; fastcgi_bind (the responder sees
the address), fastcgi_socket_keepalive (SO_KEEPALIVE on the connection
to the responder); and the -t checks of the buffer sizes. Every test
runs against portvakt and NGINX."""

import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import check_conf, free_port, http, wait_for
from test_fastcgi import BEGIN, END, PARAMS, STDIN, STDOUT, decode_params, record, stream

BIG = bytes(range(256)) * 65536  # 16 MiB: more than loopback socket buffers can hide


class Responder:
    """A FastCGI responder on 127.0.0.1 answering by DOCUMENT_URI's last
    part: big (16 MiB), big-nobuf and big-buf (the same with
    X-Accel-Buffering: no / yes), peer (the connection's peer address as
    JSON), hold (answers after a second). `done` holds the names whose
    response was written whole."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.done = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped = True
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c, peer), daemon=True).start()

    @staticmethod
    def _read(c, n):
        b = b""
        while len(b) < n:
            d = c.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b

    def _serve(self, c, peer):
        try:
            params, rid, done = b"", 1, False
            while not done:
                _, t, rid, clen, pad, _ = struct.unpack(">BBHHBB", self._read(c, 8))
                content = self._read(c, clen + pad)[:clen]
                if t == PARAMS:
                    params += content
                elif t == STDIN:
                    done = clen == 0
            name = dict(decode_params(params)).get("DOCUMENT_URI", "/").rsplit("/", 1)[-1]
            head = b"Content-Type: application/octet-stream\r\n"
            body = BIG
            if name == "big-nobuf":
                head += b"X-Accel-Buffering: no\r\n"
            elif name == "big-buf":
                head += b"X-Accel-Buffering: yes\r\n"
            elif name == "peer":
                body = json.dumps({"addr": peer[0]}).encode()
            elif name == "hold":
                time.sleep(1)
                body = b"ok\n"
            c.sendall(stream(STDOUT, head + b"\r\n" + body, rid) + record(END, b"\0" * 8, rid))
            self.done.append(name)
        except (EOFError, OSError):
            pass
        c.close()


@pytest.fixture
def responder():
    r = Responder()
    yield r
    r.stop()


CONF = """
error_log stderr warn;
http {
    fastcgi_param DOCUMENT_URI $document_uri;
    server {
        listen 127.0.0.1:@GW@;
        location /on/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_buffers 4 8k;
            fastcgi_busy_buffers_size 16k;
            fastcgi_temp_file_write_size 16k;
            fastcgi_temp_path @DIR@/fcgi-temp 1;
        }
        location /nofile/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_max_temp_file_size 0;
        }
        location /tiny/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_buffers 2 4k;
            fastcgi_busy_buffers_size 4k;
            fastcgi_max_temp_file_size 0;
        }
        location /off/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_buffering off;
        }
        location /xab/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_buffering off;
        }
        location /rate/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_limit_rate 4m;
        }
        location /bound/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_bind 127.0.0.2;
            location /bound/off/ {
                fastcgi_pass 127.0.0.1:@UP@;
                fastcgi_bind off;
            }
        }
        location /ka/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_socket_keepalive on;
        }
        location /noka/ {
            fastcgi_pass 127.0.0.1:@UP@;
        }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, tmp_path, responder):
    fix = request.getfixturevalue(request.param)
    port = free_port()
    server = fix(CONF, GW=port, UP=responder.port, DIR=str(tmp_path))
    server.port = port
    server.kind = request.param
    server.up = responder
    server.tmp = tmp_path
    return server


def slow_request(port, uri):
    """A client that sends its request and reads nothing yet."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET " + uri.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return s


def read_all(s):
    data = b""
    s.settimeout(20)
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    out = b""
    if b"chunked" in head.lower():
        while True:
            line, _, body = body.partition(b"\r\n")
            n = int(line, 16)
            if n == 0:
                break
            out += body[:n]
            body = body[n + 2:]
    else:
        out = body
    return head, out


def warnings(gw):
    return [l for l in gw.stderr().splitlines() if "an upstream response is buffered to a temporary file" in l]


@pytest.mark.parametrize("uri", ["/on/big", "/on/big-buf"])
def test_buffering_holds_response_for_slow_client(gw, uri):
    """The responder writes the whole 16 MiB while the client has read
    nothing: the part beyond fastcgi_buffers goes to a temp file under
    fastcgi_temp_path; the client then gets every byte."""
    s = slow_request(gw.port, uri)
    name = uri.rsplit("/", 1)[-1]
    wait_for(lambda: name in gw.up.done, timeout=10, what="the responder's whole write")
    wait_for(lambda: warnings(gw), what="the temp file warning")
    assert str(gw.tmp / "fcgi-temp") + "/" in warnings(gw)[0]
    head, body = read_all(s)
    assert b" 200 " in head.split(b"\r\n")[0]
    assert body == BIG
    assert b"x-accel-buffering" not in head.lower()


@pytest.mark.parametrize("uri", ["/nofile/big", "/tiny/big", "/off/big", "/on/big-nobuf"])
def test_no_temp_file(gw, uri):
    """fastcgi_max_temp_file_size 0 (with buffers smaller than one read
    too), fastcgi_buffering off, or the
    responder's X-Accel-Buffering: no: nothing goes to a temp file (the
    responder waits for the client), and the body arrives whole."""
    s = slow_request(gw.port, uri)
    head, body = read_all(s)
    assert body == BIG
    assert uri.rsplit("/", 1)[-1] in gw.up.done
    assert not warnings(gw), gw.stderr()


def test_x_accel_buffering_yes_turns_buffering_on(gw):
    """fastcgi_buffering off, but the responder asks for it: held."""
    s = slow_request(gw.port, "/xab/big-buf")
    wait_for(lambda: "big-buf" in gw.up.done, timeout=10, what="the responder's whole write")
    head, body = read_all(s)
    assert body == BIG


def test_limit_rate_response_whole(gw):
    r = http(gw.port, "GET", "/rate/big", timeout=30)
    assert r.status == 200 and r.body == BIG


def test_bind(gw):
    r = http(gw.port, "GET", "/bound/peer")
    assert json.loads(r.body) == {"addr": "127.0.0.2"}
    r = http(gw.port, "GET", "/bound/off/peer")
    assert json.loads(r.body) == {"addr": "127.0.0.1"}


def keepalive_timers(up_port):
    out = subprocess.run(["ss", "-tnoH", "state", "established", "dst", "127.0.0.1:%d" % up_port],
                         capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.strip()]


@pytest.mark.parametrize("where,want", [("/ka/hold", True), ("/noka/hold", False)])
def test_socket_keepalive(gw, where, want):
    """SO_KEEPALIVE on the gateway's connection to the responder: ss shows
    its keepalive timer while the responder holds the request."""
    t = threading.Thread(target=http, args=(gw.port, "GET", where), daemon=True)
    t.start()
    wait_for(lambda: keepalive_timers(gw.up.port), what="the connection to the responder")
    lines = keepalive_timers(gw.up.port)
    assert any("keepalive" in l for l in lines) == want, lines
    t.join(10)


def check(tmp_path, body):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n listen 127.0.0.1:%d;\n location / {\n%s\n }\n }\n}\n"
                    % (tmp_path, 1024 + os.getpid() % 30000, body))
    return check_conf(path, tmp_path)


SIZES = 'the maximum of the value of "fastcgi_buffer_size" and one of the "fastcgi_buffers"'


@pytest.mark.parametrize("body,words", [
    ("fastcgi_buffering x;", 'it must be "on" or "off"'),
    ("fastcgi_buffers 1 4k;", 'there must be at least 2 "fastcgi_buffers"'),
    ("fastcgi_buffers 0 4k;", '"fastcgi_buffers" directive invalid value'),
    ("fastcgi_buffers 8 4k; fastcgi_buffers 8 4k;", '"fastcgi_buffers" directive is duplicate'),
    ("fastcgi_busy_buffers_size 2k;", '"fastcgi_busy_buffers_size" must be equal to or greater than ' + SIZES),
    ("fastcgi_busy_buffers_size 64k;",
     '"fastcgi_busy_buffers_size" must be less than the size of all "fastcgi_buffers" minus one buffer'),
    ("fastcgi_temp_file_write_size 1k;", '"fastcgi_temp_file_write_size" must be equal to or greater than ' + SIZES),
    ("fastcgi_max_temp_file_size 1k;",
     '"fastcgi_max_temp_file_size" must be equal to zero to disable temporary files usage or must be '
     'equal to or greater than ' + SIZES),
    ("fastcgi_limit_rate 1q;", '"fastcgi_limit_rate" directive invalid value'),
    ("fastcgi_limit_rate 1k; fastcgi_limit_rate 1k;", '"fastcgi_limit_rate" directive is duplicate'),
    ("fastcgi_bind 1.2.3;", 'invalid address "1.2.3"'),
    ("fastcgi_bind 127.0.0.1 wide;", 'invalid parameter "wide"'),
    ("fastcgi_bind off; fastcgi_bind off;", '"fastcgi_bind" directive is duplicate'),
    ("fastcgi_socket_keepalive yes;", 'it must be "on" or "off"'),
    ("fastcgi_temp_path /tmp/a 1 2 3 4;", 'invalid number of arguments in "fastcgi_temp_path" directive'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


@pytest.mark.parametrize("body", [
    "fastcgi_buffers 16 16k; fastcgi_buffer_size 32k;",
    "fastcgi_max_temp_file_size 0; fastcgi_buffering off; fastcgi_temp_file_write_size 64k;",
    "fastcgi_limit_rate 512k; fastcgi_socket_keepalive on;",
    "fastcgi_bind 127.0.0.1; fastcgi_busy_buffers_size 16k;",
    "fastcgi_bind $arg_a transparent;",
])
def test_check_accepts_as_nginx(tmp_path, body):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 0, (name, text)
