"""The socket parameters of `listen`: backlog, rcvbuf, sndbuf, deferred,
bind, ipv6only, so_keepalive and fastopen. Their syntax and messages are
compared with NGINX's `-t`, and the options a listening socket ends up
with are read from it (pidfd_getfd) for portvakt and NGINX alike."""

import ctypes
import os
import socket

import pytest

from conftest import NGINX, check_conf, fd_links, free_port

SYS_pidfd_getfd = 438
TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = 4, 5, 6
TCP_DEFER_ACCEPT, TCP_FASTOPEN = 9, 23


def check(tmp_path, listen_lines):
    path = tmp_path / "t.conf"
    servers = "".join("server { listen %s; }\n" % l for l in listen_lines)
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n%s}\n" % (tmp_path, servers))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("params", [
    "backlog=16 rcvbuf=32k sndbuf=1m deferred bind fastopen=8",
    "so_keepalive=on", "so_keepalive=off", "so_keepalive=30m::", "so_keepalive=:10:",
    "so_keepalive=::3", "so_keepalive=1h:5s:2", "so_keepalive=30", "so_keepalive=1:2",
    "ipv6only=on", "ipv6only=off",
])
def test_parameters_accepted_as_nginx(tmp_path, params):
    for name, (rc, text) in check(tmp_path, ["127.0.0.1:%d %s" % (free_port(), params)]).items():
        assert rc == 0, (name, text)


@pytest.mark.parametrize("params,words", [
    ("rcvbuf=x", 'invalid rcvbuf "rcvbuf=x"'),
    ("sndbuf=-1", 'invalid sndbuf "sndbuf=-1"'),
    ("backlog=0", 'invalid backlog "backlog=0"'),
    ("fastopen=x", 'invalid fastopen "fastopen=x"'),
    ("so_keepalive=x", 'invalid so_keepalive value: "x"'),
    ("so_keepalive=::", 'invalid so_keepalive value: "::"'),
    ("so_keepalive=1:2:3:4", 'invalid so_keepalive value: "1:2:3:4"'),
    ("ipv6only=yes", 'invalid parameter "ipv6only=yes"'),
])
def test_parameter_errors_as_nginx(tmp_path, params, words):
    for name, (rc, text) in check(tmp_path, ["127.0.0.1:%d %s" % (free_port(), params)]).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


def test_options_given_twice_for_one_address(tmp_path):
    p = free_port()
    for name, (rc, text) in check(tmp_path, ["127.0.0.1:%d rcvbuf=8k" % p,
                                             "127.0.0.1:%d so_keepalive=on" % p]).items():
        assert rc == 1, (name, text)
        assert "duplicate listen options for 127.0.0.1:%d" % p in text, (name, text)


def listener(pid, port):
    """A duplicate of the process's socket listening on 127.0.0.1:port."""
    want = "0100007F:%04X" % port
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                inode = fields[9]
    assert inode, "nothing listens on port %d" % port
    for fd, link in fd_links(pid).items():
        if link == "socket:[%s]" % inode:
            libc = ctypes.CDLL(None, use_errno=True)
            pidfd = os.pidfd_open(pid)
            try:
                n = libc.syscall(SYS_pidfd_getfd, pidfd, int(fd), 0)
            finally:
                os.close(pidfd)
            if n < 0:
                pytest.skip("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
            return socket.socket(fileno=n)
    raise AssertionError("port %d: socket inode %s is not the process's" % (port, inode))


def options(s):
    g = s.getsockopt
    return {
        "rcvbuf": g(socket.SOL_SOCKET, socket.SO_RCVBUF),
        "sndbuf": g(socket.SOL_SOCKET, socket.SO_SNDBUF),
        "keepalive": g(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "keepidle": g(socket.IPPROTO_TCP, TCP_KEEPIDLE),
        "keepintvl": g(socket.IPPROTO_TCP, TCP_KEEPINTVL),
        "keepcnt": g(socket.IPPROTO_TCP, TCP_KEEPCNT),
        "deferred": g(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT),
        "fastopen": g(socket.IPPROTO_TCP, TCP_FASTOPEN),
    }


CONF = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@A@ rcvbuf=16k sndbuf=48k so_keepalive=7m:11:5 deferred fastopen=9;
        listen 127.0.0.1:@B@ so_keepalive=on;
        listen 127.0.0.1:@C@;
        location / { return 204; }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_listening_socket_options(kind, portvakt, nginx):
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    a, b, c = free_port(), free_port(), free_port()
    g = (portvakt if kind == "portvakt" else nginx)(CONF, A=a, B=b, C=c)
    got = {}
    for name, port in (("a", a), ("b", b), ("c", c)):
        s = listener(g.proc.pid, port)
        try:
            got[name] = options(s)
        finally:
            s.close()
    plain = got["c"]
    assert got["a"]["rcvbuf"] == 2 * 16384 and got["a"]["sndbuf"] == 2 * 48 * 1024, got
    assert (got["a"]["keepalive"], got["a"]["keepidle"], got["a"]["keepintvl"], got["a"]["keepcnt"]) == \
        (1, 420, 11, 5), got
    assert got["a"]["deferred"] > 0 and got["a"]["fastopen"] == 9, got
    assert got["b"]["keepalive"] == 1 and got["b"]["keepidle"] == plain["keepidle"], got
    assert plain["keepalive"] == 0 and plain["deferred"] == 0 and plain["fastopen"] == 0, got


def free_port_pair():
    """Two consecutive free loopback ports (a `listen` range)."""
    for _ in range(50):
        p = free_port()
        if p < 65535:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
            finally:
                s.close()
    pytest.skip("no two consecutive free ports")


RANGE_CONF = """
http {
    server {
        listen 127.0.0.1:@LO@-@HI@;
        location / { return 200 "$server_port\\n"; }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_port_range(kind, portvakt, nginx):
    """`listen ADDRESS:P1-P2` listens on every port of the range."""
    from conftest import http, port_open, wait_for
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    lo = free_port_pair()
    (portvakt if kind == "portvakt" else nginx)(RANGE_CONF, LO=lo, HI=lo + 1)
    for p in (lo, lo + 1):
        wait_for(lambda: port_open(p), what="port %d" % p)
        r = http(p, "GET", "/")
        assert (r.status, r.body) == (200, b"%d\n" % p)


@pytest.mark.parametrize("addr", ["127.0.0.1:9002-9001", "127.0.0.1:9001-", "127.0.0.1:0-9001",
                                  "127.0.0.1:9001-70000", "127.0.0.1:-9001"])
def test_port_range_errors_as_nginx(tmp_path, addr):
    for name, (rc, text) in check(tmp_path, [addr]).items():
        assert rc == 1, (name, text)
        what = "port range" if addr.endswith("9002-9001") else "port"
        assert 'invalid %s in "%s" of the "listen" directive' % (what, addr) in text, (name, text)
