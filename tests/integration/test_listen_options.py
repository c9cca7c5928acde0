"""The socket parameters of `listen`: backlog, rcvbuf, sndbuf, deferred,
bind, ipv6only, so_keepalive and fastopen. Their syntax and messages are
compared with NGINX's `-t`, and the options a listening socket ends up
with are read from it (pidfd_getfd) for portvakt and NGINX alike.
portvakt's own notsent_lowat= (TCP_NOTSENT_LOWAT) is checked on the
listening and the accepted sockets, and by what a client that stops
reading leaves queued."""

import ctypes
import os
import socket

import pytest

from conftest import NGINX, check_conf, fd_links, free_port

SYS_pidfd_getfd = 438
TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT = 4, 5, 6
TCP_DEFER_ACCEPT, TCP_FASTOPEN = 9, 23
TCP_NOTSENT_LOWAT = 25


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


def tcp_row(port, peer=None):
    """The /proc/net/tcp fields of the socket listening on 127.0.0.1:port,
    or with peer, of the one on that port connected to 127.0.0.1:peer."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and (fields[3] == "0A" if peer is None else
                                      fields[2] == "0100007F:%04X" % peer and fields[3] == "01"):
                return fields
    return None


def listener(pid, port, peer=None):
    """A duplicate of the process's socket listening on 127.0.0.1:port (with
    peer: the one it accepted from 127.0.0.1:peer)."""
    row = tcp_row(port, peer)
    assert row, "nothing listens on port %d" % port if peer is None else "no connection from %d" % peer
    inode = row[9]
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


def test_notsent_lowat_syntax(tmp_path):
    """notsent_lowat=SIZE|off, portvakt's (NGINX has no such parameter)."""
    for params in ("notsent_lowat=16k", "notsent_lowat=off", "notsent_lowat=0", "notsent_lowat=1m"):
        rc, text = check(tmp_path, ["127.0.0.1:%d %s" % (free_port(), params)])["portvakt"]
        assert rc == 0, (params, text)
    for params in ("notsent_lowat=x", "notsent_lowat=-1", "notsent_lowat=", "notsent_lowat=4g"):
        rc, text = check(tmp_path, ["127.0.0.1:%d %s" % (free_port(), params)])["portvakt"]
        assert rc == 1 and 'invalid notsent_lowat "%s"' % params in text, (params, text)
    p = free_port()
    rc, text = check(tmp_path, ["127.0.0.1:%d notsent_lowat=16k" % p, "127.0.0.1:%d sndbuf=1m" % p])["portvakt"]
    assert rc == 1 and "duplicate listen options for 127.0.0.1:%d" % p in text, text


LOWAT_CONF = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@A@;
        listen 127.0.0.1:@B@ notsent_lowat=16k;
        listen 127.0.0.1:@C@ notsent_lowat=off sndbuf=4m;
        root @ROOT@;
        location / { }
    }
}
"""


def lowat(s):
    return s.getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT)


def test_notsent_lowat(portvakt, tmp_path):
    """128 KiB by default, as given, or the system's (0) with off; the
    accepted sockets inherit it, a reload changes it on the kept
    listener, and it bounds what a client that stops reading leaves
    queued on the server's side."""
    from conftest import wait_for
    (tmp_path / "doc").mkdir()
    (tmp_path / "doc" / "big").write_bytes(os.urandom(8 << 20))
    a, b, c = free_port(), free_port(), free_port()
    g = portvakt(LOWAT_CONF, A=a, B=b, C=c, ROOT=tmp_path / "doc")
    want = {a: 128 * 1024, b: 16 * 1024, c: 0}
    for port, value in want.items():
        s = listener(g.proc.pid, port)
        try:
            assert lowat(s) == value, (port, lowat(s))
        finally:
            s.close()

    def queued(port):
        """What the server's socket holds for a client that sent one request
        for 8 MiB and reads nothing (its receive buffer 64 KiB)."""
        cl = socket.socket()
        cl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        cl.connect(("127.0.0.1", port))
        try:
            peer = cl.getsockname()[1]
            cl.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            last = [None]

            def settled():
                row = tcp_row(port, peer)
                q = int(row[4].split(":")[0], 16) if row else None
                done = q is not None and q > 0 and q == last[0]
                last[0] = q
                return done
            wait_for(settled, what="the send queue of port %d to settle" % port, interval=0.2)
            s = listener(g.proc.pid, port, peer)
            try:
                return last[0], lowat(s)
            finally:
                s.close()
        finally:
            cl.close()

    q_b, lw_b = queued(b)
    q_c, lw_c = queued(c)
    assert (lw_b, lw_c) == (16 * 1024, 0), "accepted sockets inherit the listener's value"
    # 16 KiB not sent, what the client's window took, and at most one write past the mark
    assert q_b < 256 * 1024, q_b
    assert q_c > 1024 * 1024, q_c

    # a reload applies a changed value to the listener it keeps
    with open(g.conf_path) as f:
        text = f.read()
    with open(g.conf_path, "w") as f:
        f.write(text.replace("notsent_lowat=16k", "notsent_lowat=64k").replace(" notsent_lowat=off", ""))

    def values():
        out = []
        for port in (b, c):
            s = listener(g.proc.pid, port)
            try:
                out.append(lowat(s))
            finally:
                s.close()
        return out
    g.proc.send_signal(1)
    wait_for(lambda: values() == [64 * 1024, 128 * 1024], what="the reloaded values")


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
