"""ssl_certificate / ssl_certificate_key with variables (loaded per
handshake), "data:" values, and ssl_conf_command's file values, through
NGINX and portvakt side by side: which certificate each SNI name gets,
which handshakes fail, and a certificate file replaced between two
handshakes."""

import os
import shutil
import ssl

import pytest

from conftest import start_server, free_port
from tls_pki import Pki, client_context, tls_connect, peer_cert_text, request_on

pytestmark = pytest.mark.portvakt_only


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.a = p.issue("a", "a.test", "ec", sans=["a.test"])
    p.b = p.issue("b", "b.test", "rsa", sans=["b.test"])
    p.c = p.issue("c", "c.test", "ec", sans=["c.test"])
    p.enc = p.encrypt_key(p.b[1], "s3cret")
    p.enc_a = p.encrypt_key(p.a[1], "s3cret")
    return p


CONF = """
http {
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    map $ssl_server_name $name {
        default  a;
        b.test   b;
        nx.test  nx;
    }
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name a.test;
        ssl_certificate $name.crt;
        ssl_certificate_key $name.key;
        location / { return 200 "$server_name $ssl_server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name nocert.test;
        location / { return 200 "$server_name $ssl_server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@ ssl;
        server_name enc.test;
        ssl_certificate b.crt;
        ssl_certificate_key $name.enc.key;
        ssl_password_file pw;
        location / { return 200 "$server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW3@ ssl;
        server_name data.test;
        ssl_certificate "data:@C_PEM@";
        ssl_certificate_key "data:@C_KEY@";
        location / { return 200 "$server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW4@ ssl;
        server_name cmd.test;
        ssl_certificate a.crt;
        ssl_certificate_key a.key;
        ssl_conf_command Certificate c.crt;
        ssl_conf_command PrivateKey c.key;
        location / { return 200 "$server_name\\n"; }
    }
}
"""


def cn(port, sni):
    """The CN of the certificate the server sends for sni and the body of
    a request over it, or the class of the handshake's failure."""
    ctx = client_context(verify=False)
    try:
        s = tls_connect(port, sni, ctx)
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return "handshake failed", type(e).__name__ in ("SSLError", "SSLZeroReturnError",
                                                         "ConnectionResetError", "SSLEOFError")
    try:
        text = peer_cert_text(s)
        subject = [l for l in text.splitlines() if l.startswith("subject=")][0]
        st, _, body = request_on(s, sni, "/")
        return subject.split("CN = ")[-1], st, body.decode().strip()
    finally:
        s.close()


def side(kind, pki, tmp_path):
    d = tmp_path / kind
    os.makedirs(d)
    for name in ("a", "b", "c"):
        crt, key = getattr(pki, name)
        shutil.copy(crt, d / (name + ".crt"))
        shutil.copy(key, d / (name + ".key"))
    shutil.copy(pki.enc, d / "b.enc.key")
    shutil.copy(pki.enc_a, d / "a.enc.key")  # not b.crt's key
    (d / "pw").write_text("wrong\ns3cret\n")
    ports = [free_port() for _ in range(4)]
    srv = start_server(kind, CONF, d, GW=ports[0], GW2=ports[1], GW3=ports[2], GW4=ports[3],
                       C_PEM=open(pki.c[0]).read(), C_KEY=open(pki.c[1]).read())
    try:
        got = {
            "a": cn(ports[0], "a.test"),
            "b": cn(ports[0], "b.test"),
            "nocert": cn(ports[0], "nocert.test"),
            "missing": cn(ports[0], "nx.test"),
            "enc-right": cn(ports[1], "b.test"),
            "enc-wrong": cn(ports[1], "enc.test"),
            "data": cn(ports[2], "data.test"),
            "conf-command": cn(ports[3], "cmd.test"),
        }
        # a certificate file replaced: the next handshake sends the new one
        os.replace(d / "c.crt", d / "a.crt")
        shutil.copy(pki.c[1], d / "a.key.new")
        os.replace(d / "a.key.new", d / "a.key")
        got["replaced"] = cn(ports[0], "a.test")
        log = open(srv.stderr_path).read() + (open(d / "error.log").read() if os.path.exists(d / "error.log") else "")
    finally:
        srv.stop()
    return got, log


def test_certificate_variables(tmp_path, pki):
    nginx, nlog = side("nginx", pki, tmp_path)
    portvakt, plog = side("portvakt", pki, tmp_path)
    assert portvakt == nginx
    assert portvakt["a"] == ("a.test", 200, "a.test a.test")
    assert portvakt["b"] == ("b.test", 200, "a.test b.test")
    # a server without certificates keeps the default server's, named
    # with its own SNI name
    assert portvakt["nocert"] == ("a.test", 200, "nocert.test nocert.test")
    assert portvakt["missing"] == ("handshake failed", True)
    assert portvakt["enc-right"] == ("b.test", 200, "enc.test")
    assert portvakt["enc-wrong"] == ("handshake failed", True)
    assert portvakt["data"] == ("c.test", 200, "data.test")
    assert portvakt["conf-command"] == ("c.test", 200, "cmd.test")
    assert portvakt["replaced"][0] == "c.test"
    assert 'cannot load certificate "' in plog and "nx.crt" in plog


SNI_CONF = """
http {
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate @A_CRT@;
    ssl_certificate_key @A_KEY@;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name default.test;
        ssl_session_tickets off;
        ssl_session_cache shared:one:1m;
        location / { return 200 "$ssl_server_name:$ssl_session_reused\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name other.test;
        ssl_session_tickets off;
        ssl_session_cache shared:two:1m;
        location / { return 200 "$ssl_server_name:$ssl_session_reused\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@ ssl;
        server_name default.test;
        ssl_session_ticket_key @K1@;
        location / { return 200 "$ssl_server_name:$ssl_session_reused\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@ ssl;
        server_name tickets.test;
        ssl_session_ticket_key @K2@;
        location / { return 200 "$ssl_server_name:$ssl_session_reused\\n"; }
    }
}
"""


def twice(port, sni, version):
    """Two connections, the second offering the first's session."""
    ctx = client_context(verify=False)
    ctx.maximum_version = version
    out, sess = [], None
    for _ in range(2):
        s = tls_connect_session(port, sni, ctx, sess)
        try:
            out.append(request_on(s, sni, "/")[2].decode().strip())
            sess = s.session
        finally:
            s.close()
    return out


def tls_connect_session(port, sni, ctx, session):
    import socket
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=sni, session=session)


def test_sni_server_sessions(tmp_path, pki):
    """A session begun on an address is kept in (and its ticket sealed
    with the keys of) the address's default server, whichever server SNI
    named, as OpenSSL calls those callbacks: it resumes."""
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    k1.write_bytes(b"1" * 48)
    k2.write_bytes(b"2" * 48)
    got = {}
    for kind in ("nginx", "portvakt"):
        gw, gw2 = free_port(), free_port()
        srv = start_server(kind, SNI_CONF, tmp_path / kind, GW=gw, GW2=gw2, A_CRT=pki.a[0], A_KEY=pki.a[1],
                           K1=k1, K2=k2)
        try:
            got[kind] = [twice(port, sni, v) for port, sni in ((gw, "other.test"), (gw2, "tickets.test"))
                         for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)]
        finally:
            srv.stop()
    assert got["portvakt"] == got["nginx"]
    assert got["portvakt"][0] == ["other.test:.", "other.test:r"]
    assert got["portvakt"][3] == ["tickets.test:.", "tickets.test:r"]


RELOAD_CONF = """
http {
    access_log off;
    map $ssl_server_name $name {
        default  @DEFAULT@;
    }
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @DIR@/$name.crt;
        ssl_certificate_key @DIR@/$name.key;
        location / { return 200 "ok\\n"; }
    }
}
"""


def test_handshake_after_reloads_takes_the_new_names(portvakt, pki, tmp_path):
    """A connection accepted before reloads (its SSL_CTX from an old
    config) names its certificate with the config of its handshake."""
    import signal
    from conftest import render, wait_for
    d = tmp_path / "certs"
    os.makedirs(d)
    for name in ("a", "b", "c"):
        shutil.copy(getattr(pki, name)[0], d / (name + ".crt"))
        shutil.copy(getattr(pki, name)[1], d / (name + ".key"))
    gw = free_port()
    g = portvakt(RELOAD_CONF, GW=gw, DIR=d, DEFAULT="a")
    assert cn(gw, "x.test")[0] == "a.test"
    import socket
    early = [socket.create_connection(("127.0.0.1", gw), timeout=10) for _ in range(3)]
    for i, name in enumerate(("b", "c")):
        with open(g.conf_path, "w") as f:
            f.write(render(RELOAD_CONF, GW=gw, DIR=d, DEFAULT=name))
        os.kill(g.pid, signal.SIGHUP)
        want = name + ".test"
        wait_for(lambda: cn(gw, "x.test")[0] == want, timeout=30, what="the reloaded names")
    ctx = client_context(verify=False)
    for s in early:
        t = ctx.wrap_socket(s, server_hostname="x.test")
        assert "CN = c.test" in peer_cert_text(t)
        assert request_on(t, "x.test", "/")[0] == 200
        t.close()
    assert g.alive()


TICKET_CONF = """
http {
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate @CRT@;
    ssl_certificate_key @KEY@;
    ssl_session_cache shared:one:1m;
    ssl_session_timeout 2s;
    server {
        listen 127.0.0.1:@GW@ ssl;
        location / { return 200 "$ssl_session_reused\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@ ssl;
        location / { return 200 "$ssl_session_reused\\n"; }
    }
}
"""


def ticket(port, tmp_path, version, sess_in=None):
    """(resumed, the ticket key name) of an s_client connection; the
    session goes to tmp_path/sess. s_client may write the session before
    a TLS 1.3 ticket came: tried again until one did."""
    import re
    import subprocess
    from tls_pki import s_client
    out = str(tmp_path / "sess")
    for _ in range(5):
        if os.path.exists(out):
            os.unlink(out)
        # -ign_eof: read on past the request's end, so the tickets sent
        # after the handshake are taken before the session is written
        args = [version, "-ign_eof", "-sess_out", out] + (["-sess_in", sess_in] if sess_in else [])
        _, text = s_client(port, *args, stdin=b"GET / HTTP/1.0\r\n\r\n")
        info = subprocess.run(["openssl", "sess_id", "-in", out, "-noout", "-text"],
                              capture_output=True).stdout.decode()
        m = re.search(r"TLS session ticket:\s*\n\s*0000 - ((?:[0-9a-f]{2}[ -]){16})", info)
        if m or sess_in:
            break
    return "Reused," in text, m.group(1).replace(" ", "").replace("-", "") if m else None


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_shared_cache_ticket_keys(portvakt, pki, tmp_path, version):
    """Without ssl_session_ticket_key, servers sharing a session cache
    share its ticket keys (a ticket from one resumes on the other), and a
    new key seals tickets once the session timeout has passed, as NGINX
    1.23.2 does (1.22 keeps each SSL_CTX's own keys for good)."""
    import time
    gw, gw2 = free_port(), free_port()
    portvakt(TICKET_CONF, GW=gw, GW2=gw2, CRT=pki.a[0], KEY=pki.a[1])
    first = tmp_path / "first"
    _, key = ticket(gw, tmp_path, version)
    os.replace(tmp_path / "sess", first)
    assert key
    assert ticket(gw2, tmp_path, version, sess_in=str(first))[0]
    assert ticket(gw, tmp_path, version)[1] == key
    time.sleep(2.5)
    _, key3 = ticket(gw, tmp_path, version)
    assert key3 and key3 != key
