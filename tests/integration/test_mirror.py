"""mirror beside NGINX: the mirrors get the request's method, URI args,
header fields and body (mirror_request_body on), or no body (off); a
mirror's own response is dropped; a mirror that hangs does not delay the
client's answer, one that fails does not change it; `mirror off` and a
level's own list replace what is inherited. Each exchange is HTTP/1.0
and read to the connection's close, which (in both servers) comes only
once every mirror of the request has ended, so what the mirrors received
is complete when it returns."""

import os
import socket
import threading

import pytest

from conftest import NGINX, EchoUpstream, Reply, check_conf, free_port, wait_for

CONF = """
http {
    mirror /m;
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://@MAIN@; }
        location /two/ { mirror /m; mirror /m2; proxy_pass http://@MAIN@; }
        location /nobody/ { mirror /m/nobody; mirror_request_body off; proxy_pass http://@MAIN@; }
        location /off/ { mirror off; proxy_pass http://@MAIN@; }
        location /own/ { mirror /m2; proxy_pass http://@MAIN@; }
        location /failing/ { mirror /m/dead; mirror /m/none; mirror /m/500; proxy_pass http://@MAIN@; }
        location /static/ { return 200 "static"; }
        location /m { internal; proxy_pass http://@MIRROR@; }
        location /m/nobody { internal; proxy_pass http://@MIRROR@; proxy_set_header Content-Length ""; }
        location /m/dead { internal; proxy_pass http://127.0.0.1:@DEAD@; }
        location /m/500 { internal; return 500; }
        location /m2 { internal; proxy_pass http://@MIRROR@; }
        location /slow/ { mirror /mslow; proxy_pass http://@MAIN@; }
        location /mslow { internal; proxy_pass http://@SLOW@; }
    }
}
"""


BIG = bytes(range(256)) * 400  # past client_body_buffer_size: the body is read into a file


def exchange(port, method, target, body=b"", head_only=False):
    """One HTTP/1.0 request; (status line, body). Read to the close unless
    head_only, when it returns (with the socket) once the answer's
    Content-Length bytes are in."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = "%s %s HTTP/1.0\r\nHost: localhost\r\nX-Trace: t1\r\n" % (method, target)
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    s.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while True:
        if head_only and b"\r\n\r\n" in data:
            h, _, rest = data.partition(b"\r\n\r\n")
            cl = [l for l in h.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if cl and len(rest) >= int(cl[0].split(b":")[1]):
                return h.split(b"\r\n")[0].decode(), rest, s
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    h, _, rest = data.partition(b"\r\n\r\n")
    return h.split(b"\r\n")[0].decode(), rest


def expect_exchange(port, target, body):
    """HTTP/1.1 with Expect: 100-continue: the body goes once the interim
    answer came (a server that never sends it leaves this waiting)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nX-Trace: t1\r\nConnection: close\r\n"
               "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (target, len(body))).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(1)
    interim = data.split(b"\r\n")[0].decode()
    s.sendall(body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    h, _, rest = data.partition(b"\r\n\r\n")
    return interim, h.split(b"\r\n")[0].decode(), rest.count(b"HTTP/1.1 100"), rest


def seen(up):
    return sorted((r.method, r.target, r.header("x-trace"), r.body) for r in up.requests)


def answers(start, tmp_path):
    gate = threading.Event()
    slow_got = threading.Event()

    def slow(req):
        slow_got.set()
        gate.wait(10.0)
        return Reply(200, body=b"late")

    main = EchoUpstream(reply=Reply(200, body=b"main"))
    mirror = EchoUpstream(reply=Reply(200, body=b"m" * 200000))  # a body far past any buffer: dropped
    slow_up = EchoUpstream(handler=slow)
    dead = free_port()
    try:
        port = free_port()
        start(CONF, GW=port, MAIN=main.addr, MIRROR=mirror.addr, SLOW=slow_up.addr, DEAD=dead)
        out = {}
        for method, target, body in [("POST", "/a?x=1", b"hello"), ("GET", "/two/b?y=2", b""),
                                     ("POST", "/two/c", b"body2"), ("POST", "/nobody/d?z", b"unsent"),
                                     ("GET", "/off/e", b""), ("POST", "/own/f?o", b"own"),
                                     ("GET", "/failing/g", b""), ("GET", "/static/h?s", b""),
                                     ("POST", "/two/big", BIG)]:
            mirror.requests.clear()
            status, got = exchange(port, method, target, body)
            out[target] = (status, got, seen(mirror))
        mirror.requests.clear()
        out["expect"] = expect_exchange(port, "/two/expect", b"waited") + (seen(mirror),)
        out["main"] = seen(main)
        # a mirror that does not answer: the client's answer comes all the same
        status, got, s = exchange(port, "POST", "/slow/i", b"slowbody", head_only=True)
        out["slow"] = (status, got, slow_got.wait(10.0))
        gate.set()
        s.settimeout(10)
        out["slow_close"] = s.recv(100)  # the close, once the mirror ended
        s.close()
        out["slow_mirror"] = [(r.method, r.target, r.body) for r in slow_up.wait_requests(1)]
        return out
    finally:
        gate.set()
        for u in (main, mirror, slow_up):
            u.stop()


def check(out):
    assert out["/a?x=1"] == ("HTTP/1.1 200 OK", b"main", [("POST", "/m?x=1", "t1", b"hello")])
    assert out["/two/b?y=2"][2] == [("GET", "/m2?y=2", "t1", b""), ("GET", "/m?y=2", "t1", b"")]
    assert out["/two/c"][2] == [("POST", "/m", "t1", b"body2"), ("POST", "/m2", "t1", b"body2")]
    assert out["/nobody/d?z"][2] == [("POST", "/m/nobody?z", "t1", b"")]
    assert out["/off/e"][2] == []
    assert out["/own/f?o"][2] == [("POST", "/m2?o", "t1", b"own")]
    assert out["/failing/g"][:2] == ("HTTP/1.1 200 OK", b"main")
    # `return` answers in the rewrite phase, before the mirrors' phase: none
    assert out["/static/h?s"] == ("HTTP/1.1 200 OK", b"static", [])
    assert out["/two/big"][2] == [("POST", "/m", "t1", BIG), ("POST", "/m2", "t1", BIG)]
    # the client's own request went upstream with its body, mirrors or not
    assert ("POST", "/nobody/d?z", "t1", b"unsent") in out["main"]
    assert ("POST", "/two/c", "t1", b"body2") in out["main"]
    assert ("POST", "/two/big", "t1", BIG) in out["main"]
    assert out["expect"] == ("HTTP/1.1 100 Continue", "HTTP/1.1 200 OK", 0, b"main",
                             [("POST", "/m", "t1", b"waited"), ("POST", "/m2", "t1", b"waited")])
    assert out["slow"] == ("HTTP/1.1 200 OK", b"main", True)
    assert out["slow_close"] == b""
    assert out["slow_mirror"] == [("POST", "/mslow", b"slowbody")]


def test_mirror(gateway, tmp_path):
    check(answers(gateway, tmp_path))


def test_same_as_nginx(portvakt, nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got = answers(portvakt, tmp_path / "p")
    want = answers(nginx, tmp_path / "n")
    assert got == want
    check(want)


@pytest.fixture(autouse=True)
def _dirs(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "n").mkdir()


H2_CONF = """
http {
    log_format sub "$uri $status $request_body";
    server {
        listen 127.0.0.1:@GW@ http2;
        location / { mirror /mslow; proxy_pass http://@MAIN@; }
        location /mslow {
            internal;
            log_subrequest on;
            access_log @LOG@ sub;
            proxy_pass http://@SLOW@;
        }
    }
}
"""


def test_h2_stream_waits_for_its_mirror(gateway, tmp_path):
    """Over HTTP/2 the answer ends its stream at once; the mirror still
    running is not cut off with it while the connection stays, and is
    logged when it ends."""
    from test_h2 import H2Client
    gate = threading.Event()
    log = str(tmp_path / "sub.log")
    main = EchoUpstream(reply=Reply(200, body=b"main"))
    slow_up = EchoUpstream(handler=lambda req: gate.wait(10.0) and Reply(200, body=b"late"))
    try:
        port = free_port()
        gw = gateway(H2_CONF, GW=port, MAIN=main.addr, SLOW=slow_up.addr, LOG=log)
        c = H2Client(port)
        status, _, body, reset = c.get("/x", method="POST", headers=[("content-length", "6")], body=b"h2body")
        assert (status, body, reset) == (200, b"main", None)
        assert [(r.target, r.body) for r in slow_up.wait_requests(1)] == [("/mslow", b"h2body")]
        assert open(log).read() == ""  # still running
        gate.set()
        wait_for(lambda: open(log).read() == "/mslow 200 h2body\n", what="the mirror's log line")
        assert c.get("/y")[:3:2] == (200, b"main")  # the connection goes on
        c.close()
        assert "aborted" not in gw.stderr()
    finally:
        gate.set()
        main.stop()
        slow_up.stop()


@pytest.mark.parametrize("line,msg", [
    ("mirror off; mirror /m;", '"mirror" directive is duplicate'),
    ("mirror /m; mirror off;", '"mirror" directive is duplicate'),
    ("mirror off; mirror off;", '"mirror" directive is duplicate'),
    ("mirror;", 'invalid number of arguments in "mirror" directive'),
    ("mirror /a /b;", 'invalid number of arguments in "mirror" directive'),
    ("mirror_request_body maybe;",
     'invalid value "maybe" in "mirror_request_body" directive, it must be "on" or "off"'),
    ("mirror_request_body on; mirror_request_body off;", '"mirror_request_body" directive is duplicate'),
    ("log_subrequest on; log_subrequest on;", '"log_subrequest" directive is duplicate'),
    ("mirror /a; mirror /b; mirror_request_body off; log_subrequest on;", None),
])
def test_config_errors_as_nginx(tmp_path, line, msg):
    path = tmp_path / "t.conf"
    path.write_text("events {}\nhttp {\n    server {\n        listen 127.0.0.1:%d;\n        location / { %s }\n    }\n}\n"
                    % (free_port(), line))
    out = check_conf(path, tmp_path)
    for name, (code, text) in out.items():
        if msg is None:
            assert code == 0, (name, text)
        else:
            assert code == 1 and ("%s in %s:5" % (msg, path)) in text, (name, text)
