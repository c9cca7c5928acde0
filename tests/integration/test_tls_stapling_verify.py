"""ssl_stapling_verify and ssl_trusted_certificate with a stapling file
(nothing is fetched from a responder), ssl_trusted_certificate for client
certificates, and the obsolete `ssl on|off`, each beside NGINX 1.22."""

import datetime
import os
import subprocess

import pytest

from conftest import PORTVAKT, free_port, wait_for
from tls_pki import Pki, _run, client_context, https_get, s_client

pytestmark = pytest.mark.portvakt_only("compares portvakt with NGINX itself")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.srv = p.issue("srv", "a.test", "ec", sans=["a.test"])
    p.client = p.issue("cl", "client one", "ec", client=True)
    return p


def good_ocsp(pki, crt):
    """A DER OCSP response saying crt is good, signed by the CA."""
    serial = _run("openssl", "x509", "-in", crt, "-noout", "-serial").decode().split("=")[1].strip()
    subject = _run("openssl", "x509", "-in", crt, "-noout", "-subject", "-nameopt", "compat").decode()
    subject = subject.split("=", 1)[1].strip()
    end = (datetime.datetime.utcnow() + datetime.timedelta(days=30)).strftime("%y%m%d%H%M%SZ")
    index = pki.path("good-index.txt")
    with open(index, "w") as f:
        f.write("V\t%s\t\t%s\tunknown\t%s\n" % (end, serial, subject))
    req, out = pki.path("good.ocspreq"), pki.path("good.ocsp")
    _run("openssl", "ocsp", "-issuer", pki.ca[0], "-cert", crt, "-reqout", req, "-no_nonce")
    _run("openssl", "ocsp", "-index", index, "-rsigner", pki.ca[0], "-rkey", pki.ca[1], "-CA", pki.ca[0],
         "-reqin", req, "-respout", out, "-ndays", "1")
    return out


STAPLE = """
error_log stderr notice;
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_stapling on;
        ssl_stapling_file @RESP@;
        @EXTRA@
        location / { return 200 "ok\\n"; }
    }
}
"""


@pytest.mark.parametrize("resp,extra,warned", [
    ("good", "ssl_trusted_certificate @CA@; ssl_stapling_verify on;", None),
    ("good", "ssl_stapling_verify on;", "does not verify (no certificate it is for)"),
    ("unknown", "ssl_trusted_certificate @CA@; ssl_stapling_verify on;", "does not verify (unknown)"),
    ("unknown", "ssl_trusted_certificate @CA@; ssl_stapling_verify off;", None),
    ("unknown", "ssl_trusted_certificate @CA@;", None),  # off by default, as in NGINX
])
def test_stapling_file_checked(portvakt, pki, resp, extra, warned):
    path = good_ocsp(pki, pki.srv[0]) if resp == "good" else pki.ocsp_response(pki.srv[0])
    port = free_port()
    gw = portvakt(STAPLE.replace("@EXTRA@", extra), GW=port, CRT=pki.srv[0], KEY=pki.srv[1], RESP=path,
                  CA=pki.ca[0])
    rc, out = s_client(port, "-servername", "a.test", "-status")
    # stapled in every case, as NGINX staples a file's response
    assert rc == 0 and "OCSP Response Status: successful" in out, out
    assert ("Cert Status: good" if resp == "good" else "Cert Status: unknown") in out, out
    err = gw.stderr()
    if warned:
        assert 'the OCSP response in "%s" %s, stapled as read' % (path, warned) in err, err
    else:
        assert "OCSP response" not in err, err


CLIENT = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_verify_client optional;
        ssl_verify_depth 2;
        ssl_client_certificate @OTHER@;
        ssl_trusted_certificate @CA@;
        location / { return 200 "$ssl_client_verify\\n"; }
    }
}
"""


def client_verify(start, pki):
    port = free_port()
    start(CLIENT, GW=port, CRT=pki.srv[0], KEY=pki.srv[1], OTHER=pki.other_ca[0], CA=pki.ca[0])
    ctx = client_context(pki, cert=pki.client)
    ctx.check_hostname = False
    return https_get(port, "a.test", pki=pki, ctx=ctx)[2].strip()


def test_trusted_certificate_for_clients(portvakt, nginx, pki):
    """A client certificate from a CA that only ssl_trusted_certificate
    names verifies; the CA is not in the list sent to clients."""
    got = client_verify(portvakt, pki)
    assert got == client_verify(nginx, pki)
    assert got == b"SUCCESS"


SSL_ON = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@A@;
        ssl on;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "a $scheme\\n"; }
    }
    server {
        listen 127.0.0.1:@A@;
        server_name other;
        ssl off;
        location / { return 200 "other $scheme\\n"; }
    }
    server {
        listen 127.0.0.1:@B@;
        server_name x;
        location / { return 200 "b $scheme\\n"; }
    }
    server {
        listen 127.0.0.1:@B@;
        server_name y;
        ssl on;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "y $scheme\\n"; }
    }
}
"""


def curl(*args):
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", "5"] + list(args), capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip()


def ssl_on_answers(start, pki):
    a, b = free_port(), free_port()
    s = start(SSL_ON, A=a, B=b, CRT=pki.srv[0], KEY=pki.srv[1])
    out = [curl("https://127.0.0.1:%d/" % a), curl("-H", "Host: other", "https://127.0.0.1:%d/" % a),
           curl("http://127.0.0.1:%d/" % b), curl("-H", "Host: y", "http://127.0.0.1:%d/" % b)]
    return out, s


def test_ssl_on_as_nginx(portvakt, nginx, pki):
    got, gw = ssl_on_answers(portvakt, pki)
    want, _ = ssl_on_answers(nginx, pki)
    assert got == want
    assert got == ["a https", "other https", "b http", "y http"]
    err = gw.stderr()
    assert err.count('the "ssl" directive is deprecated, use the "listen ... ssl" directive instead') == 3, err


def test_t_errors(tmp_path, pki):
    conf = tmp_path / "s.conf"
    for body, msg in (
        ("listen 127.0.0.1:1;\n ssl on;", 'no "ssl_certificate" is defined for the "ssl" directive in %s:3'),
        ("listen 127.0.0.1:1 ssl; ssl_certificate %s; ssl_certificate_key %s;\n ssl_trusted_certificate /nonexistent;"
         % pki.srv, 'SSL_CTX_load_verify_locations("/nonexistent") failed'),
        ("listen 127.0.0.1:1;\n ssl_stapling_verify maybe;", 'invalid value "maybe"'),
    ):
        conf.write_text("http {\n server { %s }\n}\n" % body)
        r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode != 0 and (msg % conf if "%s" in msg else msg) in r.stderr, r.stderr
        assert "s.conf:3" in r.stderr, r.stderr
