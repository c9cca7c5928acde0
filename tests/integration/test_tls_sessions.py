"""Session resumption: ssl_session_cache (off, none, builtin, shared
across workers and reloads, bounded by its size), ssl_session_tickets,
ssl_session_timeout and ssl_session_ticket_key files (the first key
encrypts, all decrypt)."""

import os
import signal
import socket
import ssl
import subprocess

import pytest

from conftest import PORTVAKT, free_port, wait_for
from tls_pki import Pki, client_context, request_on


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.a = p.issue("a", "a.test", "ec", sans=["a.test"])
    return p


CONF = """
worker_processes 2;
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name a.test;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        @EXTRA@
        location / { return 200 "$ssl_session_reused\\n"; }
    }
}
"""


def start(gateway, pki, extra):
    gw = free_port()
    g = gateway(CONF, GW=gw, CRT=pki.a[0], KEY=pki.a[1], EXTRA=extra)
    return g, gw


_contexts = {}


def connect(gw, pki, version, session=None):
    """A request on a new connection, offering session; Python resumes a
    session only through the context that made it, so there is one per
    protocol version."""
    key = (id(pki), version)
    if key not in _contexts:
        ctx = client_context(pki)
        ctx.minimum_version = ctx.maximum_version = version
        _contexts[key] = ctx
    return ctx_connect(gw, _contexts[key], session)


def ctx_connect(gw, ctx, session=None):
    raw = socket.create_connection(("127.0.0.1", gw), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="a.test", session=session)
    st, _, body = request_on(s, "a.test", close=False)
    assert st == 200
    sess, reused = s.session, s.session_reused
    s.close()
    assert body == (b"r\n" if reused else b".\n")
    return sess, reused


V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize("version", [V12, V13])
def test_shared_cache_resumes_across_workers(gateway, pki, version):
    _, gw = start(gateway, pki, "ssl_session_cache shared:SSL:1m; ssl_session_tickets off;")
    sess, reused = connect(gw, pki, version)
    assert not reused
    # two workers take connections in turn (SO_REUSEPORT): all resume
    for _ in range(8):
        assert connect(gw, pki, version, sess)[1]


def test_no_cache_and_no_tickets_never_resume(gateway, pki):
    _, gw = start(gateway, pki, "ssl_session_cache off; ssl_session_tickets off;")
    sess, _ = connect(gw, pki, V12)
    assert not connect(gw, pki, V12, sess)[1]


def test_default_resumes_with_tickets(gateway, pki):
    _, gw = start(gateway, pki, "")
    for v in (V12, V13):
        sess, _ = connect(gw, pki, v)
        assert connect(gw, pki, v, sess)[1]


def test_builtin_cache(gateway, pki):
    _, gw = start(gateway, pki, "ssl_session_cache builtin:1000; ssl_session_tickets off;")
    sess, _ = connect(gw, pki, V12)
    assert connect(gw, pki, V12, sess)[1]


def test_shared_cache_is_kept_across_reload(gateway, pki):
    g, gw = start(gateway, pki, "ssl_session_cache shared:KEEP:1m; ssl_session_tickets off;")
    sess, _ = connect(gw, pki, V12)
    with open(g.conf_path) as f:
        text = f.read()
    with open(g.conf_path, "w") as f:
        f.write(text.replace("location /", "location = /other { return 204; }\n        location /"))
    os.kill(g.pid, signal.SIGHUP)
    wait_for(lambda: _status(gw, pki, "/other") == 204, timeout=30, what="the new config")
    assert connect(gw, pki, V12, sess)[1]


def _status(gw, pki, path):
    ctx = client_context(pki)
    raw = socket.create_connection(("127.0.0.1", gw), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="a.test")
    try:
        return request_on(s, "a.test", path)[0]
    finally:
        s.close()


def test_shared_cache_is_bounded_by_its_size(gateway, pki):
    # 32k hold 128 sessions, as NGINX counts a zone (about 4000 per 1m)
    _, gw = start(gateway, pki, "ssl_session_cache shared:SMALL:32k; ssl_session_tickets off;")
    first, _ = connect(gw, pki, V12)
    last = None
    for _ in range(140):
        last, _ = connect(gw, pki, V12)
    assert connect(gw, pki, V12, last)[1]
    assert not connect(gw, pki, V12, first)[1]


def test_session_timeout(gateway, pki):
    import time
    _, gw = start(gateway, pki, "ssl_session_cache shared:T:1m; ssl_session_tickets off; "
                  "ssl_session_timeout 1s;")
    sess, _ = connect(gw, pki, V12)
    time.sleep(2.2)
    assert not connect(gw, pki, V12, sess)[1]


def key_file(d, name, n):
    p = os.path.join(str(d), name)
    with open(p, "wb") as f:
        f.write(os.urandom(n))
    return p


@pytest.mark.parametrize("size", [48, 80])
def test_ticket_keys_are_shared_and_rotated(gateway, pki, tmp_path, size):
    old = key_file(tmp_path, "old.key", size)
    new = key_file(tmp_path, "new.key", size)
    other = key_file(tmp_path, "other.key", size)
    _, gw1 = start(gateway, pki, "ssl_session_ticket_key %s;" % old)
    _, gw2 = start(gateway, pki, "ssl_session_ticket_key %s; ssl_session_ticket_key %s;" % (new, old))
    _, gw3 = start(gateway, pki, "ssl_session_ticket_key %s;" % other)
    for v in (V12, V13):
        sess, _ = connect(gw1, pki, v)
        # another instance with the same key decrypts the ticket
        assert connect(gw2, pki, v, sess)[1]
        assert not connect(gw3, pki, v, sess)[1]


def test_ticket_key_of_a_wrong_size_is_a_t_error(tmp_path, pki):
    bad = key_file(tmp_path, "bad.key", 64)
    p = tmp_path / "t.conf"
    p.write_text("events {}\nhttp {\n server {\n  listen 127.0.0.1:1 ssl;\n  ssl_certificate %s;\n"
                 "  ssl_certificate_key %s;\n  ssl_session_ticket_key %s;\n }\n}\n" % (pki.a[0], pki.a[1], bad))
    r = subprocess.run([PORTVAKT, "-t", "-c", str(p)], capture_output=True)
    assert r.returncode != 0
    assert '"%s" must be 48 or 80 bytes in %s:7' % (bad, p) in r.stderr.decode()
    for bad_cache in ("shared:X", "shared:X:8k", "builtin:x", "wrong"):
        p.write_text("events {}\nhttp {\n ssl_session_cache %s;\n}\n" % bad_cache)
        r = subprocess.run([PORTVAKT, "-t", "-c", str(p)], capture_output=True)
        assert r.returncode != 0 and "session cache" in r.stderr.decode() and "t.conf:3" in r.stderr.decode()


def _s_client(gw, *args, stdin=b""):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % gw, "-servername", "a.test"]
                       + list(args), input=stdin, capture_output=True, timeout=30)
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def early(gateway, pki, tmp_path, extra):
    _, gw = start(gateway, pki, extra)
    sess = str(tmp_path / "sess.pem")
    out = _s_client(gw, "-sess_out", sess, "-ign_eof",
                    stdin=b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert "HTTP/1.1 200" in out, out

    def send(req, wait=True):
        f = tmp_path / "early.txt"
        f.write_bytes(req)
        # -ign_eof waits for the answer; rejected early data is not sent
        # again by s_client, so then it must not wait
        return _s_client(gw, "-sess_in", sess, "-early_data", str(f), *(["-ign_eof"] if wait else []))
    return send


def test_early_data(gateway, pki, tmp_path):
    send = early(gateway, pki, tmp_path, "ssl_early_data on; location /e { return 200 \"early=[$ssl_early_data]\\n\"; }")
    out = send(b"GET /e HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    assert "Early data was accepted" in out, out
    assert "early=[1]" in out, out
    # a method a replay could harm is refused until the handshake is over
    out = send(b"POST /e HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert "Early data was accepted" in out, out
    assert "HTTP/1.1 425 Too Early" in out, out


def test_early_data_is_off_by_default(gateway, pki, tmp_path):
    send = early(gateway, pki, tmp_path, "location /e { return 200 \"early=[$ssl_early_data]\\n\"; }")
    out = send(b"GET /e HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n", wait=False)
    # the ticket allows no early data, so the client sends none
    assert "Early data was not sent" in out, out
    assert "Reused, TLSv1.3" in out, out
