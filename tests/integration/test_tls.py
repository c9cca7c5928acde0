"""TLS termination: listen ... ssl, certificates (RSA and ECDSA side by
side, encrypted keys), SNI, plain HTTP on a TLS port, protocols and
ciphers, hostile handshakes, the $ssl_* variables and -t errors. Client
certificates are in test_tls_mtls.py, reload in test_tls_reload.py, the
comparison with NGINX in test_tls_differential.py."""

import os
import re
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PORTVAKT, free_port, wait_for
from tls_pki import (Pki, client_context, https_get, peer_cert_text, read_response,
                     request_on, s_client, tls_connect)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.a_ec = p.issue("a-ec", "a.test", "ec", sans=["a.test"])
    p.a_rsa = p.issue("a-rsa", "a.test", "rsa", sans=["a.test"])
    p.b_ec = p.issue("b-ec", "b.test", "ec", sans=["b.test", "*.wild.test"])
    p.c_ec = p.issue("c-ec", "default.test", "ec", sans=["default.test"])
    return p


VARS = ("scheme=$scheme https=$https proto=$ssl_protocol cipher=$ssl_cipher "
        "sni=$ssl_server_name reused=$ssl_session_reused")

TWO_SERVERS = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name a.test;
        ssl_certificate @A_EC_CRT@;
        ssl_certificate_key @A_EC_KEY@;
        ssl_certificate @A_RSA_CRT@;
        ssl_certificate_key @A_RSA_KEY@;
        location / { return 200 "a @VARS@\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name b.test *.wild.test;
        ssl_certificate @B_CRT@;
        ssl_certificate_key @B_KEY@;
        location / { return 200 "b @VARS@\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name nocert.test;
        location / { return 200 "nocert\\n"; }
    }
}
"""


def two_servers(gateway, pki, extra=""):
    gw = free_port()
    text = TWO_SERVERS.replace("access_log off;", "access_log off;\n" + extra)
    g = gateway(text, GW=gw, VARS=VARS, A_EC_CRT=pki.a_ec[0], A_EC_KEY=pki.a_ec[1],
                A_RSA_CRT=pki.a_rsa[0], A_RSA_KEY=pki.a_rsa[1],
                B_CRT=pki.b_ec[0], B_KEY=pki.b_ec[1])
    return g, gw


def fields(body):
    return dict(kv.split("=", 1) for kv in body.decode().split()[1:])


def test_https_request_and_variables(gateway, pki):
    _, gw = two_servers(gateway, pki)
    st, h, body = https_get(gw, "a.test", pki=pki)
    assert st == 200
    assert body.startswith(b"a ")
    f = fields(body)
    assert f["scheme"] == "https" and f["https"] == "on"
    assert f["proto"] == "TLSv1.3"
    assert f["cipher"].startswith("TLS_")
    assert f["sni"] == "a.test"
    assert f["reused"] == "."


def test_sni_picks_the_server_and_its_certificate(gateway, pki):
    _, gw = two_servers(gateway, pki)
    for name, cn in (("a.test", "a.test"), ("b.test", "b.test"), ("x.wild.test", "b.test")):
        s = tls_connect(gw, name, client_context(pki))
        try:
            assert "CN = " + cn in peer_cert_text(s)
            st, _, body = request_on(s, name)
        finally:
            s.close()
        assert st == 200
        assert body.startswith(cn[0].encode() + b" ")
        assert fields(body)["sni"] == name


def test_unknown_sni_gets_the_default_server_certificate(gateway, pki):
    _, gw = two_servers(gateway, pki)
    ctx = client_context(pki, verify=False)
    for name in ("unknown.test", "nocert.test"):
        s = tls_connect(gw, name, ctx)
        try:
            assert "CN = a.test" in peer_cert_text(s)
        finally:
            s.close()
    # no SNI at all: the default server; $ssl_server_name is empty
    s = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    s.check_hostname = False
    s.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", gw))
    t = s.wrap_socket(raw)
    try:
        st, _, body = request_on(t, "a.test")
    finally:
        t.close()
    assert st == 200 and fields(body)["sni"] == ""


def test_host_differing_from_sni_is_routed_by_host(gateway, pki):
    _, gw = two_servers(gateway, pki)
    s = tls_connect(gw, "b.test", client_context(pki))
    try:
        assert "CN = b.test" in peer_cert_text(s)
        st, _, body = request_on(s, "a.test")
    finally:
        s.close()
    assert st == 200
    assert body.startswith(b"a ")
    assert fields(body)["sni"] == "b.test"
    # a server without certificates is still reached by Host
    s = tls_connect(gw, "a.test", client_context(pki))
    try:
        st, _, body = request_on(s, "nocert.test")
    finally:
        s.close()
    assert (st, body) == (200, b"nocert\n")


def cert_kind(port, *args):
    rc, out = s_client(port, "-servername", "a.test", *args)
    assert rc == 0, out
    m = re.search(r"Peer signature type: (\S+)", out)
    return m.group(1) if m else out


def test_rsa_and_ecdsa_side_by_side(gateway, pki):
    _, gw = two_servers(gateway, pki)
    assert cert_kind(gw, "-sigalgs", "ECDSA+SHA256") == "ECDSA"
    assert cert_kind(gw, "-sigalgs", "rsa_pss_rsae_sha256") == "RSA-PSS"
    # TLS 1.2 with an RSA-only cipher suite
    rc, out = s_client(gw, "-servername", "a.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert rc == 0 and "ECDHE-RSA-AES128-GCM-SHA256" in out, out


def test_plain_http_on_a_tls_port_gets_nginx_400(gateway, pki):
    g, gw = two_servers(gateway, pki)
    s = socket.create_connection(("127.0.0.1", gw), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in head
    assert b"<title>400 The plain HTTP request was sent to HTTPS port</title>" in body
    assert b"<center>The plain HTTP request was sent to HTTPS port</center>" in body
    # the port still speaks TLS to others
    assert https_get(gw, "a.test", pki=pki)[0] == 200


def test_error_page_497_redirects_to_https(gateway, pki):
    # NGINX's idiom for plain HTTP on a TLS port
    g, gw = two_servers(gateway, pki, extra="error_page 497 https://$host:$server_port$request_uri;")
    s = socket.create_connection(("127.0.0.1", gw), timeout=10)
    try:
        s.sendall(b"GET /p?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head = data.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 302 Moved Temporarily\r\n")
    assert b"\r\nLocation: https://a.test:%d/p?q=1\r\n" % gw in head
    assert b"Connection: close" in head


def test_protocols_default_refuses_tls11_and_accepts_tls12(gateway, pki):
    _, gw = two_servers(gateway, pki)
    rc, out = s_client(gw, "-servername", "a.test", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0 and "Cipher is (NONE)" in out, out
    rc, out = s_client(gw, "-servername", "a.test", "-tls1_2")
    assert rc == 0 and "Protocol  : TLSv1.2" in out, out


def test_ssl_protocols_and_ciphers(gateway, pki):
    _, gw = two_servers(gateway, pki, extra="ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;"
                        " ssl_prefer_server_ciphers on; ssl_ecdh_curve prime256v1;")
    st, _, body = https_get(gw, "b.test", pki=pki)
    f = fields(body)
    assert (f["proto"], f["cipher"]) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    rc, out = s_client(gw, "-servername", "b.test", "-tls1_3")
    assert rc != 0, out
    # the only curve allowed: a client offering X25519 alone fails
    rc, out = s_client(gw, "-servername", "b.test", "-tls1_2", "-curves", "X25519")
    assert rc != 0, out


def test_ssl_conf_command(gateway, pki):
    _, gw = two_servers(gateway, pki, extra="ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;")
    st, _, body = https_get(gw, "b.test", pki=pki)
    assert fields(body)["cipher"] == "TLS_CHACHA20_POLY1305_SHA256"


def test_ktls_option_is_accepted_and_serves(gateway, pki, upstream):
    # OpenSSL moves record encryption into the kernel when it has the tls
    # ULP and stays in user space otherwise; either way requests work
    up = upstream()
    gw = free_port()
    gateway("""
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_conf_command Options KTLS;
        location / { proxy_pass http://127.0.0.1:@UP@; }
    }
}
""", GW=gw, UP=up.port, CRT=pki.b_ec[0], KEY=pki.b_ec[1])
    s = tls_connect(gw, "b.test", client_context(pki))
    try:
        big = os.urandom(200000)
        for i in range(2):
            s.sendall(("PUT /k%d HTTP/1.1\r\nHost: b.test\r\nContent-Length: %d\r\n\r\n"
                       % (i, len(big))).encode() + big)
            assert read_response(s)[0] == 200
    finally:
        s.close()
    assert up.wait_requests(2)[-1].body_len == len(big)


def test_encrypted_key_with_password_file(gateway, pki, tmp_path):
    enc = pki.encrypt_key(pki.b_ec[1], "right")
    pw = tmp_path / "passwords"
    pw.write_text("wrong\nright\n")
    gw = free_port()
    gateway("""
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_password_file @PW@;
        location / { return 200 "ok\\n"; }
    }
}
""", GW=gw, CRT=pki.b_ec[0], KEY=enc, PW=pw)
    assert https_get(gw, "b.test", pki=pki)[:3:2] == (200, b"ok\n")


def test_session_resumption_with_tickets(gateway, pki):
    _, gw = two_servers(gateway, pki)
    ctx = client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = tls_connect(gw, "a.test", ctx)
    request_on(s, "a.test", close=False)
    sess = s.session
    s.close()
    raw = socket.create_connection(("127.0.0.1", gw))
    t = ctx.wrap_socket(raw, server_hostname="a.test", session=sess)
    try:
        assert t.session_reused
        st, _, body = request_on(t, "a.test")
    finally:
        t.close()
    assert fields(body)["reused"] == "r"


def test_keepalive_and_large_bodies_over_tls(gateway, pki, upstream):
    up = upstream()
    gw = free_port()
    gateway("""
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { proxy_pass http://127.0.0.1:@UP@; proxy_set_header X-Proto $scheme; }
    }
}
""", GW=gw, UP=up.port, CRT=pki.b_ec[0], KEY=pki.b_ec[1])
    s = tls_connect(gw, "b.test", client_context(pki))
    try:
        big = os.urandom(300000)
        for i in range(3):
            req = ("POST /up%d HTTP/1.1\r\nHost: b.test\r\nContent-Length: %d\r\n\r\n" % (i, len(big))).encode()
            s.sendall(req + big)
            st, h, body = read_response(s)
            assert st == 200
    finally:
        s.close()
    rq = up.wait_requests(3)
    assert [r.target for r in rq[-3:]] == ["/up0", "/up1", "/up2"]
    assert all(r.body_len == len(big) for r in rq[-3:])
    assert all(r.header("X-Proto") == "https" for r in rq[-3:])


@pytest.mark.parametrize("chunked", [False, True])
def test_large_response_to_a_slow_reader(gateway, pki, upstream, chunked):
    # the client's socket fills: SSL_write waits (SSL_ERROR_WANT_WRITE) and
    # is repeated with the same bytes; the body arrives whole and in order
    from conftest import Reply, gen_sha256
    import hashlib
    n = 3 * 1024 * 1024 + 12345
    up = upstream(reply=Reply(body_size=n, chunked=chunked, chunk_size=16384))
    gw = free_port()
    gateway("""
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { proxy_pass http://127.0.0.1:@UP@; proxy_http_version 1.1; }
    }
}
""", GW=gw, UP=up.port, CRT=pki.b_ec[0], KEY=pki.b_ec[1])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", gw))
    s = client_context(pki).wrap_socket(raw, server_hostname="b.test")
    try:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: b.test\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        data = bytearray(body)
        reads = 0
        done = (lambda: data.endswith(b"0\r\n\r\n")) if chunked else (lambda: len(data) >= n)
        while not done():
            d = s.recv(4096)
            assert d, "closed after %d bytes" % len(data)
            data += d
            reads += 1
            if reads % 64 == 0:
                time.sleep(0.01)
        if chunked:
            out, i = bytearray(), 0
            while True:
                j = data.index(b"\r\n", i)
                size = int(data[i:j], 16)
                if size == 0:
                    break
                out += data[j + 2:j + 2 + size]
                i = j + 2 + size + 2
            data = out
        assert len(data) == n
        assert hashlib.sha256(bytes(data)).hexdigest() == gen_sha256(n)
        # the connection is still good for another request
        st, _, _ = request_on(s, "b.test", "/again")
        assert st == 200
    finally:
        s.close()


def test_stalled_and_broken_handshakes_are_closed(gateway, pki):
    gw = free_port()
    g = gateway("""
error_log stderr info;
http {
    access_log off;
    client_header_timeout 1s;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "ok\\n"; }
    }
}
""", GW=gw, CRT=pki.b_ec[0], KEY=pki.b_ec[1])
    # nothing sent, half a ClientHello, a record header with garbage
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    stalled = []
    for data in (b"", hello, b"\x16\x03\x01\x00\x05garbagegarbage" * 4, b"\x80\x80" + b"\x00" * 200):
        s = socket.create_connection(("127.0.0.1", gw), timeout=15)
        if data:
            s.sendall(data)
        stalled.append(s)
    ok = https_get(gw, "b.test", pki=pki)
    assert ok[0] == 200
    for s in stalled:
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        s.close()
    assert g.alive()
    wait_for(lambda: "while SSL handshaking, client: 127.0.0.1" in g.stderr(), what="the log line")
    assert re.search(r"\[info\] .*SSL_do_handshake\(\) failed \(SSL: error:[0-9A-F]+:SSL routines::"
                     r"[a-z ]+\) while SSL handshaking, client: 127\.0\.0\.1", g.stderr()), g.stderr()


def test_renegotiation_is_refused(gateway, pki):
    _, gw = two_servers(gateway, pki)
    # "R" asks s_client to renegotiate; the server refuses with an alert
    rc, out = s_client(gw, "-servername", "b.test", "-tls1_2", stdin=b"R\n")
    assert "RENEGOTIATING" in out
    assert "no renegotiation" in out, out
    assert https_get(gw, "b.test", pki=pki)[0] == 200


def test_many_clients_at_once(gateway, pki):
    import concurrent.futures
    _, gw = two_servers(gateway, pki)

    def one(i):
        name = ("a.test", "b.test")[i % 2]
        return https_get(gw, name, pki=pki)[0]

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        assert list(ex.map(one, range(200))) == [200] * 200


def test_stapling_from_a_file(gateway, pki):
    resp = pki.ocsp_response(pki.b_ec[0])
    _, gw = two_servers(gateway, pki, extra="ssl_stapling on; ssl_stapling_file %s;" % resp)
    rc, out = s_client(gw, "-servername", "b.test", "-status")
    assert rc == 0, out
    assert "OCSP Response Status: successful" in out, out
    assert "Responder Id: CN = Test Root CA" in out, out
    # a client that does not ask gets none
    rc, out = s_client(gw, "-servername", "b.test")
    assert "OCSP response: no response sent" not in out and "OCSP Response Status" not in out


# ---- -t errors -----------------------------------------------------------


def check(tmp_path, text):
    p = tmp_path / "t.conf"
    p.write_text(text)
    r = subprocess.run([PORTVAKT, "-t", "-c", str(p)], capture_output=True, timeout=30)
    return r.returncode, r.stderr.decode(), str(p)


def one_server(lines):
    return "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1 ssl;\n%s\n    }\n}\n" % lines


def test_t_key_not_matching_certificate(tmp_path, pki):
    rc, err, p = check(tmp_path, one_server(
        "        ssl_certificate %s;\n        ssl_certificate_key %s;" % (pki.a_ec[0], pki.b_ec[1])))
    assert rc != 0
    assert re.search(r'SSL_CTX_use_PrivateKey\("%s"\) failed \(SSL: .*key values mismatch\) in %s:6'
                     % (re.escape(pki.b_ec[1]), re.escape(p)), err), err


def test_t_unreadable_files(tmp_path, pki):
    rc, err, p = check(tmp_path, one_server(
        "        ssl_certificate /nonexistent/x.crt;\n        ssl_certificate_key %s;" % pki.a_ec[1]))
    assert rc != 0
    assert re.search(r'cannot load certificate "/nonexistent/x.crt": BIO_new_file\(\) failed '
                     r'\(SSL: .*No such file or directory.*\) in %s:5' % re.escape(p), err), err
    rc, err, p = check(tmp_path, one_server(
        "        ssl_certificate %s;\n        ssl_certificate_key /nonexistent/x.key;" % pki.a_ec[0]))
    assert rc != 0
    assert re.search(r'cannot load certificate key "/nonexistent/x.key": BIO_new_file\(\) failed '
                     r'.* in %s:6' % re.escape(p), err), err
    rc, err, p = check(tmp_path, one_server(
        "        ssl_certificate %s;\n        ssl_certificate_key %s;" % (pki.a_ec[0], pki.a_ec[0])))
    assert rc != 0
    assert 'PEM_read_bio_PrivateKey() failed' in err and "%s:6" % p in err, err


def test_t_listen_ssl_without_certificate(tmp_path):
    rc, err, p = check(tmp_path, one_server(""))
    assert rc != 0
    assert 'no "ssl_certificate" is defined for the "listen ... ssl" directive in %s:3' % p in err, err


def test_t_bad_values(tmp_path, pki):
    base = "        ssl_certificate %s;\n        ssl_certificate_key %s;\n" % pki.a_ec
    for line, msg in (
        ("ssl_protocols TLSv1.2 TLSv9;", 'invalid value "TLSv9"'),
        ("ssl_ciphers NOPE-NOTHING;", 'SSL_CTX_set_cipher_list("NOPE-NOTHING") failed'),
        ("ssl_ecdh_curve nocurve;", 'SSL_CTX_set1_curves_list("nocurve") failed'),
        ("ssl_conf_command NoSuchCommand x;", 'SSL_CONF_cmd("NoSuchCommand", "x") failed'),
        ("ssl_verify_client maybe;", 'invalid value "maybe" in "ssl_verify_client" directive'),
        ("ssl_verify_client on;", "no ssl_client_certificate for ssl_verify_client"),
        ("ssl_dhparam /nonexistent/dh.pem;", 'BIO_new_file("/nonexistent/dh.pem") failed'),
        ("ssl_stapling on; ssl_stapling_file %s;" % pki.a_ec[0], 'd2i_OCSP_RESPONSE_bio("%s") failed' % pki.a_ec[0]),
    ):
        rc, err, p = check(tmp_path, one_server(base + "        " + line))
        assert rc != 0 and msg in err and "%s:7" % p in err, (line, err)
    rc, err, p = check(tmp_path, one_server("        ssl_certificate %s;" % pki.a_ec[0]))
    assert rc != 0 and 'no "ssl_certificate_key" is defined for certificate' in err, err
    # without a file the response would be fetched: what stops that is a warning
    rc, err, p = check(tmp_path, one_server(base + "        ssl_stapling on;"))
    assert rc == 0 and '"ssl_stapling" ignored, issuer certificate not found' in err, err


REJECT = """
error_log stderr info;
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name default.test;
        ssl_reject_handshake on;
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name a.test;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "a $ssl_server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@ ssl;
        server_name a.test;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "a2 $ssl_server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@;
        server_name nocert.test;
        location / { return 200 "nocert $ssl_server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@;
        server_name closed.test;
        ssl_reject_handshake on;
    }
}
"""


def reject_outcomes(port, pki):
    """What a client sees for each SNI name: a body, or the alert."""
    out = {}
    for name in ("default.test", None, "a.test", "nocert.test", "closed.test"):
        ctx = client_context(pki, verify=False)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s = ctx.wrap_socket(raw, server_hostname=name)
        except ssl.SSLError as e:
            raw.close()
            out[name] = "alert: " + ("unrecognized name" if "UNRECOGNIZED_NAME" in str(e) else str(e))
            continue
        try:
            st, _, body = request_on(s, name or "a.test")
            out[name] = "%d %s" % (st, body.decode().strip())
        finally:
            s.close()
    return out


@pytest.mark.portvakt_only
def test_ssl_reject_handshake_as_nginx(portvakt, nginx, pki):
    got = {}
    for kind, start in (("portvakt", portvakt), ("nginx", nginx)):
        gw, gw2 = free_port(), free_port()
        g = start(REJECT, GW=gw, GW2=gw2, CRT=pki.a_ec[0], KEY=pki.a_ec[1])
        got[kind] = (reject_outcomes(gw, pki), reject_outcomes(gw2, pki))
        if kind == "portvakt":
            # a default server that rejects needs no certificate, and the log says who was refused
            wait_for(lambda: "while SSL handshaking, client: 127.0.0.1" in g.stderr(), what="the log line")
    first, second = got["portvakt"]
    assert first["default.test"] == first[None] == "alert: unrecognized name"
    assert first["a.test"] == "200 a a.test"
    assert second["a.test"] == "200 a2 a.test" and second["nocert.test"] == "200 nocert nocert.test"
    assert second[None] == "200 a2"
    assert second["closed.test"] == "alert: unrecognized name"
    assert got["portvakt"] == got["nginx"]


ONE_SERVER = """
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "ok\\n"; }
    }
}
"""


def test_many_records_of_pipelined_requests(gateway, pki):
    """30 000 pipelined requests, each in a TLS record of its own, sent
    at once: a record is read at a time, so every request ends with the
    next one unread on the socket. Each must be read from the loop, not
    from inside the previous request's call chain, or the stack grows by
    one request's frames per request until the worker crashes."""
    n = 30000
    gw = free_port()
    g = gateway(ONE_SERVER, GW=gw, CRT=pki.a_ec[0], KEY=pki.a_ec[1])
    ctx = client_context(verify=False)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.test")
    sock = socket.create_connection(("127.0.0.1", gw), timeout=10)

    def pump(data=b""):
        if data:
            inc.write(data)
        pending = out.read()
        if pending:
            sock.sendall(pending)

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump()
            pump(sock.recv(65536))
    pump()
    for _ in range(n):
        obj.write(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    wire = out.read()
    sock.setblocking(False)
    got, answers = b"", 0
    deadline = time.monotonic() + 60
    while answers < n and time.monotonic() < deadline:
        if wire:
            try:
                wire = wire[sock.send(wire):]
            except BlockingIOError:
                pass
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        assert data, "the connection closed after %d answers" % answers
        inc.write(data)
        while True:
            try:
                got += obj.read(1 << 20)
            except ssl.SSLWantReadError:
                break
        # count whole answers, keep what may be the start of the next
        answers += got.count(b"ok\n")
        got = got[got.rfind(b"ok\n") + 3:] if b"ok\n" in got else got
    sock.close()
    assert answers == n
    assert g.proc.poll() is None
