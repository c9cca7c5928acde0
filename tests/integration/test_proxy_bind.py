"""proxy_bind ADDRESS [transparent] | off, as NGINX's: the local address
of upstream connections, inherited from the server, cancelled by `off`,
made from variables per request (an empty value binds nothing), with a
port too; `-t` refuses what NGINX refuses. The upstream answers with the
address the connection came from; each test runs against NGINX too."""

import os
import socket
import threading

import pytest

from conftest import NGINX, check_conf, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        proxy_bind 127.0.0.2;
        location / { proxy_bind 127.0.0.1; proxy_pass http://127.0.0.1:@UP@; }
        location /inherit { proxy_pass http://127.0.0.1:@UP@; }
        location /off { proxy_bind off; proxy_pass http://127.0.0.1:@UP@; }
        location /var { proxy_bind $arg_b; proxy_pass http://127.0.0.1:@UP@; }
        location /port { proxy_bind 127.0.0.3:$arg_p; proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


class PeerUpstream:
    """Answers each request with X-Peer: the connection's source."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = c.recv(4096)
                    if not d:
                        break
                    buf += d
                c.sendall(b"HTTP/1.1 200 OK\r\nX-Peer: %s:%d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                          % (peer[0].encode(), peer[1]))

    def close(self):
        self.sock.close()


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, port):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = PeerUpstream()
    request.addfinalizer(up.close)
    return (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), UP=up.port)


def peer(gw, target):
    r = http(gw.port, "GET", target)
    assert r.status == 200
    return r.header("X-Peer")


@pytest.mark.parametrize("target,addr", [
    ("/", "127.0.0.1"),
    ("/inherit", "127.0.0.2"),
    ("/off", "127.0.0.1"),
    ("/var?b=127.0.0.4", "127.0.0.4"),
    ("/var", "127.0.0.1"),
    ("/var?b=nonsense", "127.0.0.1"),
])
def test_local_address(gw, target, addr):
    assert peer(gw, target).split(":")[0] == addr


def test_local_port(gw):
    # a port free now for each gateway (the last one's may be in TIME_WAIT)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.3", 0))
        p = s.getsockname()[1]
    assert peer(gw, "/port?p=%d" % p) == "127.0.0.3:%d" % p


@pytest.mark.parametrize("body,words", [
    ("proxy_bind 127.0.0.1:x;", 'invalid address "127.0.0.1:x"'),
    ("proxy_bind example.com;", 'invalid address "example.com"'),
    ("proxy_bind 127.0.0.1 opaque;", 'invalid parameter "opaque"'),
    ("proxy_bind 127.0.0.1; proxy_bind off;", '"proxy_bind" directive is duplicate'),
    ("proxy_bind;", 'invalid number of arguments in "proxy_bind" directive'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n%s\n}\n" % (tmp_path, body))
    for name, (rc, text) in check_conf(path, tmp_path).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
