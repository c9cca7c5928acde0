"""The same TLS configs through NGINX and portvakt: statuses, error pages,
what the upstream received and the $ssl_* values, per request."""

import re
import time

import pytest

from conftest import EchoUpstream, free_port, start_server
from tls_pki import Pki, client_context, https_get, tls_connect, request_on

pytestmark = pytest.mark.portvakt_only


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.a = p.issue("a", "a.test", "ec", sans=["a.test"])
    p.a_rsa = p.issue("a-rsa", "a.test", "rsa", sans=["a.test"])
    p.b = p.issue("b", "b.test", "rsa", sans=["b.test"])
    p.good = p.issue("client", "service-a", "ec", client=True)
    p.stranger = p.issue("stranger", "service-x", "ec", ca=p.other_ca, client=True)
    # $ssl_client_v_remain counts whole days left: once the second the
    # certificates were made has passed, both sides count the same
    time.sleep(1.1)
    return p


HEADERS = ["scheme", "https", "ssl_protocol", "ssl_cipher", "ssl_ciphers", "ssl_curve", "ssl_curves", "ssl_server_name", "ssl_session_reused",
           "ssl_client_verify", "ssl_client_s_dn", "ssl_client_i_dn", "ssl_client_s_dn_legacy",
           "ssl_client_i_dn_legacy", "ssl_client_serial",
           "ssl_client_fingerprint", "ssl_client_v_start", "ssl_client_v_end", "ssl_client_v_remain",
           "ssl_client_escaped_cert", "host", "server_name"]

CONF = """
http {
    access_log off;
    # NGINX 1.22's default lacks TLSv1.3 (added to it in 1.23.4)
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name a.test;
        ssl_certificate @A_CRT@;
        ssl_certificate_key @A_KEY@;
        ssl_certificate @AR_CRT@;
        ssl_certificate_key @AR_KEY@;
        ssl_client_certificate @CA@;
        ssl_verify_client optional;
        location / {
            proxy_pass http://127.0.0.1:@UP@;
            @SET@
        }
        location /ret { return 200 "$ssl_protocol $https $scheme $ssl_server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name b.test;
        ssl_certificate @B_CRT@;
        ssl_certificate_key @B_KEY@;
        ssl_protocols TLSv1.2;
        ssl_client_certificate @CA@;
        ssl_verify_client on;
        location / {
            proxy_pass http://127.0.0.1:@UP@;
            @SET@
        }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name c.test;
        location / { proxy_pass http://127.0.0.1:@UP@; @SET@ }
    }
}
"""

CASES = [
    # (name, sni, host, client cert key or None, path)
    ("a", "a.test", "a.test", None, "/x"),
    ("a-cert", "a.test", "a.test", "good", "/x"),
    ("a-stranger", "a.test", "a.test", "stranger", "/x"),
    ("b-nocert", "b.test", "b.test", None, "/x"),
    ("b-cert", "b.test", "b.test", "good", "/x"),
    ("b-stranger", "b.test", "b.test", "stranger", "/x"),
    ("sni-a-host-b", "a.test", "b.test", None, "/x"),
    ("sni-b-host-a", "b.test", "a.test", "good", "/x"),
    ("sni-a-host-c", "a.test", "c.test", None, "/x"),
    ("unknown-sni", "zzz.test", "a.test", None, "/x"),
    ("return", "a.test", "a.test", None, "/ret"),
]


def run_side(kind, pki, tmp_path):
    up = EchoUpstream()
    gw = free_port()
    sets = " ".join("proxy_set_header X-%s $%s;" % (h.replace("_", "-"), h) for h in HEADERS)
    start_server(kind, CONF, tmp_path / kind, GW=gw, UP=up.port, SET=sets, CA=pki.ca[0],
                 A_CRT=pki.a[0], A_KEY=pki.a[1], AR_CRT=pki.a_rsa[0], AR_KEY=pki.a_rsa[1],
                 B_CRT=pki.b[0], B_KEY=pki.b[1])
    return gw, up


def one(gw, up, pki, case):
    name, sni, host, cert, path = case
    up.clear()
    ctx = client_context(pki, cert=getattr(pki, cert) if cert else None, verify=False)
    s = tls_connect(gw, sni, ctx)
    try:
        st, h, body = request_on(s, host, path)
    finally:
        s.close()
    body = re.sub(rb"<hr><center>[^<]*</center>", b"<hr><center>SERVER</center>", body)
    if up.requests:
        # what the upstream received (its JSON echo also names ports and
        # connection numbers, which differ per side)
        r = up.requests[-1]
        return st, (r.method, r.target), {k: v for k, v in r.headers if k.lower().startswith("x-")}
    return st, body, None


def plain_on_tls_port(gw):
    import socket
    s = socket.create_connection(("127.0.0.1", gw), timeout=10)
    try:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith((b"date:", b"server:", b"content-length:"))]
    return lines, re.sub(rb"<hr><center>[^<]*</center>", b"<hr><center>SERVER</center>", body)


def test_tls_differential(tmp_path, pki):
    sides = {}
    servers = []
    try:
        for kind in ("nginx", "portvakt"):
            gw, up = run_side(kind, pki, tmp_path)
            servers.append(up)
            sides[kind] = [one(gw, up, pki, c) for c in CASES] + [plain_on_tls_port(gw)]
    finally:
        for u in servers:
            u.stop()
    diffs = []
    for i, c in enumerate(CASES + [("plain-http-on-tls-port",)]):
        n, p = sides["nginx"][i], sides["portvakt"][i]
        if n != p:
            diffs.append("%s:\n  nginx    %r\n  portvakt %r" % (c[0], n, p))
    assert not diffs, "\n".join(diffs)
    # the comparison saw real values
    by = dict(zip([c[0] for c in CASES], sides["portvakt"]))
    assert by["a-cert"][2]["X-ssl-client-verify"] == "SUCCESS"
    assert by["a-cert"][2]["X-ssl-client-s-dn-legacy"].startswith("/O=")
    assert "TLS_AES_256_GCM_SHA384:" in by["a"][2]["X-ssl-ciphers"]
    assert by["a"][2]["X-ssl-curve"] in by["a"][2]["X-ssl-curves"].split(":")
    assert by["b-nocert"][0] == 400
    assert sides["portvakt"][-1][0][0] == b"HTTP/1.1 400 Bad Request"
