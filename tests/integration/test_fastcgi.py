"""fastcgi_pass: requests to a FastCGI responder (a small one written
here, FastCGI 1.0) beside NGINX: the params (fastcgi_param, its
inheritance and if_not_empty, HTTP_* from the request's fields,
$fastcgi_script_name with fastcgi_split_path_info and fastcgi_index),
the body as STDIN, the CGI head (Status:, Location:, hidden fields),
STDERR in the error log, fastcgi_keep_conn, the failures (responder down,
an invalid head, read timeout) and a slow client reading a large body.
Every test runs against portvakt and NGINX."""

import hashlib
import json
import os
import socket
import struct
import threading
import time

import pytest

from conftest import free_port, http, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARAMS_FILE = os.path.join(ROOT, "conf", "fastcgi_params")

BEGIN, END, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7


def record(rtype, content, rid=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), pad, 0) + content + b"\0" * pad


def stream(rtype, data, rid=1):
    out = b""
    for i in range(0, len(data), 32768):
        out += record(rtype, data[i:i + 32768], rid)
    return out + record(rtype, b"", rid)


def decode_params(b):
    out, i = [], 0
    while i < len(b):
        lens = []
        for _ in range(2):
            if b[i] & 0x80:
                lens.append(struct.unpack(">I", b[i:i + 4])[0] & 0x7FFFFFFF)
                i += 4
            else:
                lens.append(b[i])
                i += 1
        out.append((b[i:i + lens[0]].decode("latin-1"), b[i + lens[0]:i + lens[0] + lens[1]].decode("latin-1")))
        i += lens[0] + lens[1]
    return out


class Responder:
    """A FastCGI responder on 127.0.0.1. It answers by DOCUMENT_URI (or
    the last path part of SCRIPT_NAME): /echo sends back as JSON the
    params, the request id, the keep flag and the body's length and
    digest; /status a 404 with its reason; /redirect a Location alone;
    /stderr a STDERR record first; /big 2 MiB; /bad an invalid head;
    /hang nothing. Connections opened are counted in `conns`."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped = True
        self.sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read(c, n):
        b = b""
        while len(b) < n:
            d = c.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b

    def _serve(self, c):
        try:
            while True:
                keep = self._one(c)
                if not keep:
                    break
        except (EOFError, OSError):
            pass
        c.close()

    def _one(self, c):
        params, body, rid, flags, done = b"", b"", 1, 0, False
        while not done:
            h = self._read(c, 8)
            _, t, rid, clen, pad, _ = struct.unpack(">BBHHBB", h)
            content = self._read(c, clen + pad)[:clen]
            if t == BEGIN:
                flags = content[2]
            elif t == PARAMS:
                params += content
            elif t == STDIN:
                body += content
                done = clen == 0
        p = decode_params(params)
        d = dict(p)
        uri = d.get("DOCUMENT_URI") or d.get("SCRIPT_NAME", "/")
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        if name == "hang":
            time.sleep(3)
            return False
        c.sendall(self.answer(name, p, body, rid, flags) + record(END, b"\0" * 8, rid))
        return bool(flags & 1)

    def answer(self, name, p, body, rid, flags):
        """The STDOUT records for the request (name: the URI's last part)."""
        if name == "status":
            out = stream(STDOUT, b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnot here\n", rid)
        elif name == "redirect":
            out = stream(STDOUT, b"Location: http://example.com/there\r\n\r\n", rid)
        elif name == "stderr":
            out = record(STDERR, b"something broke\n", rid)
            out += stream(STDOUT, b"Content-Type: text/plain\r\nX-Hidden: 1\r\nX-Accel-Expires: 5\r\n\r\nok\n", rid)
        elif name == "big":
            data = bytes(range(256)) * 8192
            out = stream(STDOUT, b"Content-Type: application/octet-stream\n\n" + data, rid)
        elif name == "bad":
            out = stream(STDOUT, b"this is not a header line\r\n\r\n", rid)
        else:
            doc = {"params": p, "rid": rid, "keep": flags & 1, "len": len(body),
                   "md5": hashlib.md5(body).hexdigest()}
            out = stream(STDOUT, b"Content-Type: application/json\r\n\r\n" + json.dumps(doc).encode(), rid)
        return out


@pytest.fixture
def responder():
    r = Responder()
    yield r
    r.stop()


CONF = """
http {
    fastcgi_param HTTP_LEVEL http;
    upstream kept { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        fastcgi_read_timeout 1s;
        fastcgi_hide_header X-Hidden;
        location / {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param EMPTY $arg_none if_not_empty;
            fastcgi_param HTTP_X_SET fromconf;
            fastcgi_index index.php;
        }
        location /inherit/ {
            fastcgi_pass 127.0.0.1:@UP@;
        }
        location ~ ^/split/.+\\.php {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_split_path_info ^(.+\\.php)(.*)$;
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
        }
        location /kept/ {
            fastcgi_pass kept;
            fastcgi_keep_conn on;
            fastcgi_param DOCUMENT_URI $document_uri;
        }
        location /nobody/ {
            fastcgi_pass 127.0.0.1:@UP@;
            fastcgi_pass_request_body off;
            fastcgi_pass_request_headers off;
            fastcgi_param DOCUMENT_URI $document_uri;
        }
        location /params/ {
            fastcgi_pass 127.0.0.1:@UP@;
            include @PARAMS@;
            fastcgi_param DOCUMENT_URI $document_uri;
        }
        location /down/ {
            fastcgi_pass 127.0.0.1:@DOWN@;
        }
    }
}
"""


@pytest.fixture(params=["portvakt", "nginx"])
def start(request, tmp_path, responder):
    fix = request.getfixturevalue(request.param)

    def go():
        port = free_port()
        go.server = fix(CONF, GW=port, UP=responder.port, DOWN=free_port(), PARAMS=PARAMS_FILE)
        return port
    return go


def params_of(resp):
    return json.loads(resp.body)


def test_params_headers_and_inheritance(start):
    port = start()
    r = http(port, "GET", "/dir/?a=1", headers=[("X-Custom-Thing", "v"), ("X-Set", "client")])
    assert r.status == 200
    doc = params_of(r)
    p = doc["params"]
    d = dict(p)
    assert d["SCRIPT_NAME"] == "/dir/index.php"  # fastcgi_index
    assert d["QUERY_STRING"] == "a=1"
    assert d["REQUEST_METHOD"] == "GET"
    assert d["CONTENT_LENGTH"] == ""
    assert "EMPTY" not in d  # if_not_empty
    assert "HTTP_LEVEL" not in d  # the location's own list replaces http's
    assert d["HTTP_X_CUSTOM_THING"] == "v"
    assert d["HTTP_HOST"] == "localhost"
    # a fastcgi_param of the same name keeps the client's field out
    assert [v for k, v in p if k == "HTTP_X_SET"] == ["fromconf"]
    assert doc["rid"] == 1 and doc["keep"] == 0
    r = http(port, "GET", "/inherit/x")
    assert dict(params_of(r)["params"])["HTTP_LEVEL"] == "http"


def test_split_path_info(start):
    port = start()
    d = dict(params_of(http(port, "GET", "/split/app.php/some/path"))["params"])
    assert d["SCRIPT_NAME"] == "/split/app.php"
    assert d["PATH_INFO"] == "/some/path"


def test_body_as_stdin(start):
    port = start()
    body = bytes(range(256)) * 1000  # several STDIN records
    r = http(port, "POST", "/post", body=body)
    doc = params_of(r)
    assert doc["len"] == len(body)
    assert doc["md5"] == hashlib.md5(body).hexdigest()
    assert dict(doc["params"])["CONTENT_LENGTH"] == str(len(body))
    doc = params_of(http(port, "POST", "/nobody/x", body=b"abc"))
    assert doc["len"] == 0
    assert not [k for k, _ in doc["params"] if k.startswith("HTTP_")]


def test_status_location_and_hidden_fields(start):
    port = start()
    r = http(port, "GET", "/status")
    assert r.status == 404 and r.reason == "Not Found"
    assert r.body == b"not here\n"
    assert r.header("status") is None
    r = http(port, "GET", "/redirect")
    assert r.status == 302
    assert r.header("location") == "http://example.com/there"
    r = http(port, "GET", "/stderr")
    assert r.status == 200 and r.body == b"ok\n"
    assert r.header("x-hidden") is None and r.header("x-accel-expires") is None


def test_stderr_logged(start):
    port = start()
    assert http(port, "GET", "/stderr").status == 200
    wait_for(lambda: 'FastCGI sent in stderr: "something broke"' in start.server.stderr(), what="stderr line")


def test_failures(start):
    port = start()
    assert http(port, "GET", "/down/x").status == 502
    assert http(port, "GET", "/bad").status == 502
    assert http(port, "GET", "/hang", timeout=10).status == 504


def test_keep_conn_reuses_connection(start, responder):
    port = start()
    before = responder.conns
    for _ in range(4):
        doc = params_of(http(port, "GET", "/kept/x"))
        assert doc["keep"] == 1
    assert responder.conns - before == 1


def test_slow_client_gets_whole_body(start):
    port = start()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    s.settimeout(10)
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
        if len(data) < 200000:
            time.sleep(0.001)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    assert b"chunked" in head.lower()
    # de-chunk
    out, rest = b"", body
    while True:
        line, _, rest = rest.partition(b"\r\n")
        n = int(line, 16)
        if n == 0:
            break
        out += rest[:n]
        rest = rest[n + 2:]
    assert out == bytes(range(256)) * 8192


def test_fastcgi_params_file_same_as_nginx(portvakt, nginx, responder):
    """Debian's fastcgi_params included: portvakt sends NGINX's params, in
    NGINX's order, with NGINX's values (the ports aside)."""
    seen = []
    for fix in (portvakt, nginx):
        port = free_port()
        fix(CONF, GW=port, UP=responder.port, DOWN=free_port(), PARAMS=PARAMS_FILE)
        r = http(port, "POST", "/params/x.php?q=1", headers=[("Content-Type", "text/plain"), ("X-A", "b")],
                 body=b"12345")
        p = [(k, v) for k, v in params_of(r)["params"] if k not in ("REMOTE_PORT", "SERVER_PORT", "HTTP_HOST", "DOCUMENT_ROOT")]
        seen.append(p)
    assert dict(seen[0])["SCRIPT_NAME"] == "/params/x.php"
    assert dict(seen[0])["CONTENT_TYPE"] == "text/plain"
    assert seen[0] == seen[1]
