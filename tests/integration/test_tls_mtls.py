"""Client certificates: ssl_verify_client on | optional | optional_no_ca,
ssl_client_certificate, ssl_verify_depth, ssl_crl, NGINX's 400 pages for
a missing or failed certificate (496, 495) and the $ssl_client_*
variables."""

import re
import subprocess

import pytest

from conftest import free_port
from tls_pki import Pki, client_context, https_get

CVARS = ("verify=$ssl_client_verify|s_dn=$ssl_client_s_dn|i_dn=$ssl_client_i_dn|"
         "serial=$ssl_client_serial|fp=$ssl_client_fingerprint|remain=$ssl_client_v_remain|"
         "start=$ssl_client_v_start|end=$ssl_client_v_end")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.srv = p.issue("srv", "m.test", "ec", sans=["m.test"])
    p.good = p.issue("client", "service-a", "ec", client=True)
    p.revoked = p.issue("revoked", "service-r", "ec", client=True)
    p.stranger = p.issue("stranger", "service-x", "ec", ca=p.other_ca, client=True)
    p.crl_file = p.crl(p.revoked[0])
    inter = p.intermediate("inter", "Test Intermediate CA")
    p.deep = p.chain(p.issue("deep", "service-deep", "ec", ca=inter, client=True), inter)
    return p


CONF = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name m.test;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_client_certificate @CA@;
        ssl_verify_client @MODE@;
        @EXTRA@
        location / { return 200 "@CVARS@\\n"; }
    }
}
"""


def start(gateway, pki, mode, extra=""):
    gw = free_port()
    gateway(CONF, GW=gw, CRT=pki.srv[0], KEY=pki.srv[1], CA=pki.ca[0], MODE=mode, EXTRA=extra,
            CVARS=CVARS)
    return gw


def get(gw, pki, cert=None):
    st, h, body = https_get(gw, "m.test", ctx=client_context(pki, cert=cert))
    return st, h, body


def parse(body):
    return dict(kv.split("=", 1) for kv in body.decode().rstrip("\n").split("|"))


def openssl_field(crt, *args):
    return subprocess.run(["openssl", "x509", "-in", crt, "-noout"] + list(args),
                          capture_output=True, check=True).stdout.decode().strip()


def test_verify_on_without_certificate_gets_496_page(gateway, pki):
    gw = start(gateway, pki, "on")
    st, h, body = get(gw, pki)
    assert st == 400
    assert h.get("connection") == "close"
    assert b"<title>400 No required SSL certificate was sent</title>" in body
    assert b"<center>No required SSL certificate was sent</center>" in body


def test_verify_on_with_an_untrusted_certificate_gets_495_page(gateway, pki):
    gw = start(gateway, pki, "on")
    st, h, body = get(gw, pki, cert=pki.stranger)
    assert st == 400
    assert b"<title>400 The SSL certificate error</title>" in body


def test_verify_on_with_a_good_certificate(gateway, pki):
    gw = start(gateway, pki, "on")
    st, h, body = get(gw, pki, cert=pki.good)
    assert st == 200
    v = parse(body)
    assert v["verify"] == "SUCCESS"
    assert v["s_dn"] == "CN=service-a,O=Portvakt Test"
    assert v["i_dn"] == "CN=Test Root CA"
    serial = openssl_field(pki.good[0], "-serial").split("=")[1]
    assert v["serial"] == serial
    fp = openssl_field(pki.good[0], "-fingerprint", "-sha1").split("=")[1].replace(":", "").lower()
    assert v["fp"] == fp
    assert v["remain"] in ("29", "30")
    assert re.fullmatch(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT", v["start"]), v["start"]
    assert v["end"] == openssl_field(pki.good[0], "-enddate").split("=")[1]


def test_optional_lets_a_client_without_certificate_in(gateway, pki):
    gw = start(gateway, pki, "optional")
    st, h, body = get(gw, pki)
    assert st == 200
    v = parse(body)
    assert v["verify"] == "NONE" and v["s_dn"] == "" and v["serial"] == ""
    st, h, body = get(gw, pki, cert=pki.stranger)
    assert st == 400 and b"The SSL certificate error" in body


def test_optional_no_ca_lets_an_unknown_issuer_in(gateway, pki):
    gw = start(gateway, pki, "optional_no_ca")
    st, h, body = get(gw, pki, cert=pki.stranger)
    assert st == 200
    v = parse(body)
    assert v["verify"].startswith("FAILED:"), v
    assert v["i_dn"] == "CN=Untrusted CA"
    st, h, body = get(gw, pki, cert=pki.good)
    assert st == 200 and parse(body)["verify"] == "SUCCESS"


def test_crl_refuses_a_revoked_certificate(gateway, pki):
    gw = start(gateway, pki, "on", extra="ssl_crl %s;" % pki.crl_file)
    st, h, body = get(gw, pki, cert=pki.revoked)
    assert st == 400 and b"The SSL certificate error" in body
    st, h, body = get(gw, pki, cert=pki.good)
    assert st == 200 and parse(body)["verify"] == "SUCCESS"


def test_verify_depth(gateway, pki):
    # depth 0 allows no intermediate CA between the client's certificate
    # and the trusted one; the default (1) allows one
    gw = start(gateway, pki, "on", extra="ssl_verify_depth 0;")
    st, h, body = get(gw, pki, cert=pki.deep)
    assert st == 400 and b"The SSL certificate error" in body
    assert get(gw, pki, cert=pki.good)[0] == 200
    gw = start(gateway, pki, "on")
    st, h, body = get(gw, pki, cert=pki.deep)
    assert st == 200 and parse(body)["i_dn"] == "CN=Test Intermediate CA"


def test_client_certificate_pem_variables(gateway, pki):
    gw = free_port()
    gateway(CONF.replace("@CVARS@", "$ssl_client_escaped_cert"), GW=gw, CRT=pki.srv[0],
            KEY=pki.srv[1], CA=pki.ca[0], MODE="on", EXTRA="")
    st, h, body = get(gw, pki, cert=pki.good)
    assert st == 200
    from urllib.parse import unquote
    pem = open(pki.good[0]).read()
    assert unquote(body.decode().rstrip("\n")) == pem


def test_variables_on_a_plain_connection_are_not_found(gateway, pki, tmp_path):
    gw = free_port()
    g = gateway("""
http {
    log_format t "[$https][$ssl_protocol][$ssl_client_verify][$scheme]";
    access_log /dev/stdout t;
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "ok\\n"; }
    }
}
""", GW=gw)
    import urllib.request
    urllib.request.urlopen("http://127.0.0.1:%d/" % gw).read()
    lines = g.wait_access_log(1)
    assert lines[0] == "[][-][-][http]"
