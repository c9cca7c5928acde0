"""Temp paths, `user` and the small core directives with behaviour
(chunked_transfer_encoding, reset_timedout_connection, tcp_nodelay,
underscores_in_headers, ignore_invalid_headers, server_names_hash_*,
connection_pool_size, keepalive_time, keepalive_disable),
compared with NGINX where it has them."""

import os
import socket
import stat
import time

import pytest

from conftest import check_conf, NGINX, Client, http


def check(tmp_path, http_body, main=""):
    """`-t` on a config with http_body inside http{}; (rc, output) for
    portvakt and, when present, NGINX on the same text."""
    path = tmp_path / "t.conf"
    path.write_text("%s\nevents {}\npid %s/n.pid;\nhttp {\n%s\n}\n" % (main, tmp_path, http_body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("client_body_temp_path t 0;", '"client_body_temp_path" directive invalid value'),
    ("client_body_temp_path t x;", '"client_body_temp_path" directive invalid value'),
    ("client_body_temp_path t 5 5 1;", '"client_body_temp_path" directive invalid value'),
    ("proxy_temp_path t 11;", '"proxy_temp_path" directive invalid value'),
    ("proxy_temp_path t 1 1 1 1;", 'invalid number of arguments in "proxy_temp_path"'),
    ("proxy_temp_path a; proxy_temp_path b;", '"proxy_temp_path" directive is duplicate'),
    ("uwsgi_temp_path a; uwsgi_temp_path b;", '"uwsgi_temp_path" directive is duplicate'),
    ("tcp_nodelay maybe;", 'it must be "on" or "off"'),
    ("server { underscores_in_headers 1; }", 'it must be "on" or "off"'),
    ("server { location / { ignore_invalid_headers on; } }",
     '"ignore_invalid_headers" directive is not allowed here'),
    ("server { server_names_hash_max_size 512; }",
     '"server_names_hash_max_size" directive is not allowed here'),
    ("server_names_hash_max_size 1k;", '"server_names_hash_max_size" directive invalid number'),
    ("server_names_hash_bucket_size x;", '"server_names_hash_bucket_size" directive invalid number'),
    ("user nobody;", '"user" directive is not allowed here'),
    ("connection_pool_size 96;", "the pool size must be no less than 112"),
    ("connection_pool_size 120;", "the pool size must be a multiple of 16"),
    ("connection_pool_size x;", '"connection_pool_size" directive invalid value'),
    ("server { location / { connection_pool_size 128; } }",
     '"connection_pool_size" directive is not allowed here'),
    ("keepalive_time x;", '"keepalive_time" directive invalid value'),
    ("keepalive_time 1s; keepalive_time 2s;", '"keepalive_time" directive is duplicate'),
    ("keepalive_disable opera;", 'invalid value "opera"'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


@pytest.mark.parametrize("body", [
    "client_body_temp_path t 5 5; proxy_temp_path p 1 2 3; fastcgi_temp_path f; "
    "scgi_temp_path s 2; uwsgi_temp_path u 10;",
    "server_names_hash_max_size 1024; server_names_hash_bucket_size 128;",
    "connection_pool_size 128; server { connection_pool_size 512; }",
    "keepalive_time 10m; keepalive_disable msie6 safari; "
    "server { location / { keepalive_time 1; keepalive_disable none msie6; } }",
    "tcp_nodelay off; reset_timedout_connection on; chunked_transfer_encoding off; "
    "underscores_in_headers on; ignore_invalid_headers off;",
    "server { location / { client_body_temp_path /tmp/x; proxy_temp_path /tmp/y 2; "
    "tcp_nodelay on; chunked_transfer_encoding on; reset_timedout_connection off; } }",
])
def test_check_accepts_as_nginx(tmp_path, body):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 0, (name, text)


@pytest.mark.parametrize("line,words", [
    ("user no-such-account-x;", 'getpwnam("no-such-account-x") failed'),
    ("user nobody;", 'getgrnam("nobody") failed'),   # the group defaults to the user's name
    ("user nobody no-such-group-x;", 'getgrnam("no-such-group-x") failed'),
])
def test_user_unknown_is_an_error(tmp_path, line, words):
    if os.geteuid() != 0 or not os.path.exists("/etc/group") or "nobody:" in open("/etc/group").read():
        pytest.skip("only root resolves the account; needs no group named nobody")
    for name, (rc, text) in check(tmp_path, "", main=line).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


TEMP = """
user nobody nogroup;
http {
    client_body_temp_path @DIR@/body 1 2;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    scgi_temp_path @DIR@/scgi;
    uwsgi_temp_path @DIR@/uwsgi;
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_temp_path @DIR@/loc 2; return 200 "ok\\n"; }
    }
}
"""


def test_temp_paths_made_at_start_and_user_dropped(gateway, port, tmp_path):
    """Every *_temp_path directory exists after start, mode 0700, owned by
    the `user` account (as NGINX makes them), and the workers run as it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to change accounts")
    d = tmp_path / "temps"
    d.mkdir()
    os.chmod(str(d), 0o755)
    gw = gateway(TEMP, GW=port(), DIR=str(d))
    assert http(gw.port).status == 200
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    for name in ("body", "proxy", "fastcgi", "scgi", "uwsgi", "loc"):
        st = os.stat(str(d / name))
        assert stat.S_ISDIR(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == 0o700, name
        assert st.st_uid == nobody, name
    with open("/proc/%d/status" % gw.pid) as f:
        uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
    assert all(int(u) == nobody for u in uids), uids


CHUNKED = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location /on { proxy_pass http://127.0.0.1:@UP@; }
        location /off { chunked_transfer_encoding off; proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_chunked_transfer_encoding_off(kind, portvakt, nginx, upstream, port):
    """A response of unknown length to HTTP/1.1 goes chunked, or with
    chunked_transfer_encoding off ends with the connection."""
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    from conftest import Reply
    up = upstream(reply=Reply(body=b"x" * 3000, chunked=True))
    gw = (portvakt if kind == "portvakt" else nginx)(CHUNKED, GW=port(), UP=up.port)
    with Client(gw.port) as c:
        c.request("GET", "/on")
        r = c.read_response()
        assert r.status == 200 and r.body == b"x" * 3000
        assert r.header("Transfer-Encoding") == "chunked"
        assert not c.closed(0.2)
    with Client(gw.port) as c:
        c.request("GET", "/off")
        r = c.read_response()
        assert r.status == 200 and r.body == b"x" * 3000
        assert r.header("Transfer-Encoding") is None
        assert r.header("Connection") == "close"
        assert c.closed(2.0)


HEADERS = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://127.0.0.1:@UP@; }
    }
    server {
        listen 127.0.0.1:@GW2@;
        underscores_in_headers on;
        location / { proxy_pass http://127.0.0.1:@UP@; }
    }
    server {
        listen 127.0.0.1:@GW3@;
        ignore_invalid_headers off;
        location / { proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_underscores_and_invalid_headers(kind, portvakt, nginx, upstream, port):
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream()
    gw = (portvakt if kind == "portvakt" else nginx)(HEADERS, GW=port(), GW2=port(), GW3=port(),
                                                     UP=up.port)
    sent = [("X_Under", "u"), ("X.Dot", "d"), ("X-Plain", "p")]
    seen = {}
    for name in ("GW", "GW2", "GW3"):
        p = {"GW": gw.ports[0], "GW2": gw.ports[1], "GW3": gw.ports[2]}[name]
        assert http(p, headers=sent).status == 200
        got = up.last()
        seen[name] = tuple(got.has(h) for h, _ in sent)
    assert seen == {
        "GW": (False, False, True),    # both dropped by default
        "GW2": (True, False, True),    # underscores_in_headers on
        "GW3": (True, True, True),     # ignore_invalid_headers off: passed on
    }


RESET = """
http {
    server {
        listen 127.0.0.1:@GW@;
        client_body_timeout 300ms;
        location /reset { reset_timedout_connection on; proxy_pass http://127.0.0.1:@UP@; }
        location /close { proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


def body_timeout_end(port, target):
    """Send a head promising a body that never comes; how the connection
    ends: 'reset' or 'closed' (after whatever answer came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab" % target.encode())
    try:
        while s.recv(4096):
            pass
        return "closed"
    except ConnectionResetError:
        return "reset"
    finally:
        s.close()


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_reset_timedout_connection(kind, portvakt, nginx, upstream, port):
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream()
    gw = (portvakt if kind == "portvakt" else nginx)(RESET, GW=port(), UP=up.port)
    assert body_timeout_end(gw.port, "/reset") == "reset"
    assert body_timeout_end(gw.port, "/close") == "closed"


NODELAY = """
http {
    tcp_nodelay off;
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "ok\\n"; }
        location /on { tcp_nodelay on; return 200 "on\\n"; }
    }
}
"""


def test_tcp_nodelay_switch_keeps_serving(gateway, port):
    """Switching TCP_NODELAY between responses on one connection: every
    answer still arrives whole (the option itself is not visible to a
    client)."""
    gw = gateway(NODELAY, GW=port())
    with Client(gw.port) as c:
        for target, body in (("/", b"ok\n"), ("/on", b"on\n"), ("/", b"ok\n")):
            c.request("GET", target)
            r = c.read_response()
            assert r.status == 200 and r.body == body
