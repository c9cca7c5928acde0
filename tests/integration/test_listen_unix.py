"""`listen unix:PATH` beside NGINX: a server on a unix domain socket
reached through a unix-socket upstream and by a client of its own, its
$remote_addr and $server_addr, allow/deny unix:, set_real_ip_from unix:,
the socket file's life (0666, kept across a reload, removed when a reload
drops it and at exit, a stale one refused) and the -t errors."""

import os
import socket
import stat
import subprocess

import pytest

from conftest import (NGINX, PORTVAKT, check_conf, free_port, http, nginx_conf, render,
                      wait_for)

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location /via/ { proxy_pass http://unix:@SOCK@:/; }
        location /dyn/ { proxy_pass http://$arg_to; }
        location /real/ {
            proxy_set_header X-Real-IP 192.0.2.7;
            proxy_pass http://unix:@SOCK@:/real/;
        }
    }
    server {
        listen unix:@SOCK@ default_server;
        server_name unix.example;
        location /vars {
            return 200 "ra=[$remote_addr] rp=[$remote_port] sa=[$server_addr] sp=[$server_port] bra=[$binary_remote_addr] host=[$host]";
        }
        location /allow_unix/ { allow unix:; deny all; }
        location /deny_unix/ { deny unix:; }
        location /inet_only/ { allow 127.0.0.1; allow ::1; deny all; }
        # the location's realip runs after `return` would (NGINX's preaccess): a 404 carries it
        location /real/yes { set_real_ip_from unix:; add_header X-IP "$remote_addr $realip_remote_addr" always; }
        location /real/no { set_real_ip_from 127.0.0.1; add_header X-IP "$remote_addr" always; }
    }
}
"""

TARGETS = ["/via/vars", "/via/allow_unix/x", "/via/deny_unix/x", "/via/inet_only/x",
           "/real/yes", "/real/no", "/dyn/?to=unix:@SOCK@:/vars"]


def start(factory, tmp_path, tag):
    sock = str(tmp_path / ("%s.sock" % tag))
    gw = factory(CONF, GW=free_port(), SOCK=sock)
    # the TCP port may take connections before the socket after it is bound
    wait_for(lambda: os.path.exists(sock), what=sock)
    return gw, sock


def observe(gw, sock, target):
    r = http(gw.port, "GET", target.replace("@SOCK@", sock))
    body = r.body.decode("latin-1").replace(sock, "SOCK") if r.status == 200 else ""
    return r.status, body, r.header("X-IP", "")


def direct(sock, target, bind_to=None):
    """A request of a client of the socket itself (unnamed unless bind_to)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        if bind_to:
            s.bind(bind_to)
        s.settimeout(5)
        s.connect(sock)
        s.sendall(("GET %s HTTP/1.0\r\n\r\n" % target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("latin-1").replace(sock, "SOCK")


def test_unix_listener(portvakt, tmp_path):
    gw, sock = start(portvakt, tmp_path, "pv")
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
    assert observe(gw, sock, "/via/vars") == (
        200, "ra=[unix:] rp=[] sa=[unix:SOCK] sp=[] bra=[unix:] host=[localhost]", "")
    assert observe(gw, sock, "/via/allow_unix/x")[0] == 404
    assert observe(gw, sock, "/via/deny_unix/x")[0] == 403
    assert observe(gw, sock, "/via/inet_only/x")[0] == 403
    assert observe(gw, sock, "/real/yes") == (404, "", "192.0.2.7 unix:")
    assert observe(gw, sock, "/real/no") == (404, "", "unix:")
    assert observe(gw, sock, "/dyn/?to=unix:@SOCK@:/vars")[0] == 200
    # a client of the socket itself; no Host: $host is the server's name
    assert direct(sock, "/vars") == (
        200, "ra=[unix:] rp=[] sa=[unix:SOCK] sp=[] bra=[unix:] host=[unix.example]")
    assert direct(sock, "/deny_unix/x")[0] == 403
    gw.stop()
    assert not os.path.exists(sock), "the socket file is removed at exit"


def test_tcp_parameter_on_unix_logged(portvakt, tmp_path):
    """notsent_lowat= (TCP_NOTSENT_LOWAT) given on a unix socket is logged
    at alert and ignored, as deferred is; the socket still serves, and
    one not given it logs nothing."""
    sock = str(tmp_path / "lw.sock")
    plain = str(tmp_path / "plain.sock")
    gw = portvakt("http { server { listen unix:%s notsent_lowat=16k; listen unix:%s; "
                  "location / { return 200 ok; } } }" % (sock, plain))
    wait_for(lambda: os.path.exists(sock) and os.path.exists(plain), what="the sockets")
    err = gw.stderr()
    assert "[alert]" in err and "setsockopt(TCP_NOTSENT_LOWAT, 16384) failed" in err, err
    assert "unix:%s" % sock in err and "unix:%s " % plain not in err, err
    assert direct(sock, "/")[0] == 200


def test_same_answers_as_nginx(portvakt, nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = start(portvakt, tmp_path, "pv")
    theirs = start(nginx, tmp_path, "ngx")
    diffs = []
    for t in TARGETS:
        a, b = observe(*ours, t), observe(*theirs, t)
        if a != b:
            diffs.append((t, a, b))
    for t in ("/vars", "/allow_unix/x", "/deny_unix/x"):
        a, b = direct(ours[1], t), direct(theirs[1], t)
        if a[0] != 200:
            a, b = a[0], b[0]  # the error pages name the server
        if a != b:
            diffs.append(("direct " + t, a, b))
    assert not diffs, "\n".join("%r\n  portvakt %r\n  nginx    %r" % d for d in diffs)
    for gw, sock in (ours, theirs):
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666, gw.name
        gw.stop()
        assert not os.path.exists(sock), gw.name


RELOAD = """
error_log stderr warn;
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://unix:@SOCK@:/; }
    }
    server {
        listen unix:@SOCK@;
        location / { return 200 "@TAG@"; }
    }
}
"""


def test_reload_keeps_and_drops_sockets(portvakt, tmp_path):
    a, b = str(tmp_path / "a.sock"), str(tmp_path / "b.sock")
    port = free_port()
    gw = portvakt(RELOAD, GW=port, SOCK=a, TAG="one")
    wait_for(lambda: os.path.exists(a), what=a)
    ino = os.stat(a).st_ino

    def reload(sock, tag):
        with open(gw.conf_path, "w") as f:
            f.write(render(RELOAD, GW=port, SOCK=sock, TAG=tag))
        gw.proc.send_signal(1)
        wait_for(lambda: http(port, "GET", "/").body == tag.encode(), what="the reload to " + tag)

    reload(a, "two")
    assert os.stat(a).st_ino == ino, "a path the new config still names keeps its socket"
    reload(b, "three")
    assert os.path.exists(b)
    # the main thread closes what the config dropped once every worker has switched
    wait_for(lambda: not os.path.exists(a), what="a.sock removed")
    wait_for(lambda: "deleting socket %s" % a in gw.stderr(), what="the deleting socket line")
    gw.stop()
    assert not os.path.exists(b)


def run_nginx(text, prefix):
    path = os.path.join(str(prefix), "nginx.conf")
    with open(path, "w") as f:
        f.write(nginx_conf(text, prefix))
    return subprocess.run([NGINX, "-p", str(prefix), "-e", "stderr", "-c", path],
                          capture_output=True, timeout=20)


def run_portvakt(text, prefix):
    path = os.path.join(str(prefix), "gw.conf")
    with open(path, "w") as f:
        f.write(text)
    return subprocess.run([PORTVAKT, "-c", path], capture_output=True, timeout=20)


@pytest.mark.parametrize("param,words", [
    ("", "(98: Address already in use)"),  # a stale socket file
    ("reuseport", "setsockopt(SO_REUSEPORT)"),
])
def test_refused_at_start_as_nginx(tmp_path, param, words):
    """Neither removes a socket file it finds (it may be another server's),
    and SO_REUSEPORT cannot be set on a unix domain socket."""
    runs = [("portvakt", run_portvakt, words)]
    if os.access(NGINX, os.X_OK):
        runs.append(("nginx", run_nginx, words))
    for name, run, want in runs:
        d = tmp_path / name
        d.mkdir()
        sock = str(d / "s.sock")
        if not param:
            stale = socket.socket(socket.AF_UNIX)
            stale.bind(sock)
            stale.close()
        text = "events {}\npid %s/x.pid;\nhttp {\n server {\n  listen unix:%s %s;\n }\n}\n" % (d, sock, param)
        p = run(text, d)
        out = (p.stdout + p.stderr).decode()
        assert p.returncode == 1, (name, out)
        assert want in out, (name, out)
        assert os.path.exists(sock) == (not param), (name, out)


def check(tmp_path, listen):
    path = tmp_path / "gw.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n  listen %s;\n }\n}\n" % (tmp_path, listen))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("listen,words", [
    ("unix:", 'no path in the unix domain socket in "unix:" of the "listen" directive in'),
    ("unix:/tmp/%s" % ("x" * 120), "too long path in the unix domain socket in"),
    ("unix:/nonexistent-dir/s.sock", "bind() to unix:/nonexistent-dir/s.sock failed (2: No such file or directory)"),
])
def test_check_errors_as_nginx(tmp_path, listen, words):
    for name, (rc, text) in check(tmp_path, listen).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
        if "bind()" not in words:
            assert "gw.conf:5" in text, (name, text)


def test_check_leaves_no_socket(tmp_path):
    sock = tmp_path / "t.sock"
    for name, (rc, text) in check(tmp_path, "unix:%s" % sock).items():
        assert rc == 0, (name, text)
        assert not sock.exists(), name
