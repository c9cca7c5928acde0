"""ssl_ocsp beside NGINX: client certificates checked with an OCSP
responder (openssl ocsp, answering from an index of good and revoked
certificates) once the handshake is done; a revoked or unknown
certificate, an unreachable responder, ssl_ocsp_cache keeping answers
after the responder is gone, and a responder that never answers while
other connections go on being served."""

import os
import re
import socket
import subprocess
import time

import pytest

from conftest import free_port, port_open, start_server, wait_for
from tls_pki import Pki, client_context, tls_connect, request_on

pytestmark = pytest.mark.portvakt_only


def index_line(pki, crt, revoked):
    out = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-serial", "-enddate", "-subject",
                          "-nameopt", "compat"], capture_output=True, check=True).stdout.decode()
    f = dict(l.split("=", 1) for l in out.splitlines())
    end = time.strftime("%y%m%d%H%M%SZ", time.strptime(f["notAfter"], "%b %d %H:%M:%S %Y %Z"))
    rev = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 60)) if revoked else ""
    return "%s\t%s\t%s\t%s\tunknown\t%s\n" % ("R" if revoked else "V", end, rev, f["serial"], f["subject"])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.srv = p.issue("srv", "ocsp.test", "ec", sans=["ocsp.test"])
    p.good = p.issue("good", "good", "ec", client=True)
    p.revoked = p.issue("revoked", "revoked", "ec", client=True)
    p.unknown = p.issue("unknown", "unknown", "ec", client=True)
    p.index = p.path("ocsp.idx")
    with open(p.index, "w") as f:
        f.write(index_line(p, p.good[0], False))
        f.write(index_line(p, p.revoked[0], True))
    return p


class Responder:
    """An OCSP responder on 127.0.0.1: each GET's request is answered by
    `openssl ocsp` from the index."""

    def __init__(self, pki):
        import base64
        import http.server
        import threading
        import urllib.parse

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                der = base64.b64decode(urllib.parse.unquote(self.path.lstrip("/")))
                d = pki.dir
                req, resp = os.path.join(d, "req-%d.der" % self.server.server_port), \
                    os.path.join(d, "resp-%d.der" % self.server.server_port)
                with open(req, "wb") as f:
                    f.write(der)
                subprocess.run(["openssl", "ocsp", "-index", pki.index, "-CA", pki.ca[0], "-rsigner", pki.ca[0],
                                "-rkey", pki.ca[1], "-reqin", req, "-respout", resp, "-nmin", "10"],
                               capture_output=True, check=True)
                body = open(resp, "rb").read()
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self):
        if not self.stopped:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.stopped = True


CONF = """
http {
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate @CRT@;
    ssl_certificate_key @KEY@;
    ssl_client_certificate @CA@;
    ssl_verify_client on;
    add_header X-Verify $ssl_client_verify always;
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_ocsp leaf;
        ssl_ocsp_responder http://127.0.0.1:@R1@;
        location / { return 200 "ok\\n"; }
    }
    server {
        listen 127.0.0.1:@GW2@ ssl;
        ssl_ocsp on;
        ssl_ocsp_responder http://127.0.0.1:@DEAD@;
        location / { return 200 "ok\\n"; }
    }
    server {
        listen 127.0.0.1:@GW3@ ssl;
        ssl_ocsp leaf;
        ssl_ocsp_cache shared:ocsp:1m;
        ssl_ocsp_responder http://127.0.0.1:@R2@;
        location / { return 200 "ok\\n"; }
    }
    server {
        listen 127.0.0.1:@GW4@ ssl;
        ssl_ocsp leaf;
        ssl_ocsp_responder http://127.0.0.1:@MUTE@;
        location / { return 200 "ok\\n"; }
    }
}
"""


def ask(port, pki, who, timeout=10):
    ctx = client_context(cert=getattr(pki, who), verify=False)
    s = tls_connect(port, "ocsp.test", ctx, timeout=timeout)
    try:
        st, h, _ = request_on(s, "ocsp.test", "/")
        return st, h.get("x-verify")
    finally:
        s.close()


def side(kind, pki, tmp_path):
    r1, r2 = Responder(pki), Responder(pki)
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # accepts, never answers
    ports = [free_port() for _ in range(4)]
    srv = start_server(kind, CONF, tmp_path / kind, GW=ports[0], GW2=ports[1], GW3=ports[2], GW4=ports[3],
                       R1=r1.port, R2=r2.port, DEAD=free_port(), MUTE=mute.getsockname()[1],
                       CRT=pki.srv[0], KEY=pki.srv[1], CA=pki.ca[0])
    got = {}
    try:
        for who in ("good", "revoked", "unknown"):
            got[who] = ask(ports[0], pki, who)
        got["dead-responder"] = ask(ports[1], pki, "good")
        got["cache-store"] = [ask(ports[2], pki, w) for w in ("good", "revoked")]
        r2.stop()
        got["cache-lookup"] = [ask(ports[2], pki, w) for w in ("good", "revoked")]
        # a check waiting on a silent responder holds its own connection
        # only: another is served meanwhile
        waiting = tls_connect(ports[3], "ocsp.test", client_context(cert=pki.good, verify=False))
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: ocsp.test\r\nConnection: close\r\n\r\n")
        got["while-waiting"] = ask(ports[0], pki, "good")
        waiting.settimeout(0.5)
        try:
            got["waiting-answered"] = bool(waiting.recv(100))
        except socket.timeout:
            got["waiting-answered"] = False
        waiting.close()
    finally:
        srv.stop()
        r1.stop()
        r2.stop()
        mute.close()
    return got


def test_ocsp_beside_nginx(tmp_path, pki):
    nginx = side("nginx", pki, tmp_path)
    portvakt = side("portvakt", pki, tmp_path)
    assert portvakt == nginx
    assert portvakt["good"] == (200, "SUCCESS")
    assert portvakt["revoked"] == (400, "FAILED:certificate revoked")
    assert portvakt["unknown"] == (400, "FAILED:certificate status unknown")
    assert portvakt["dead-responder"] == (400, "FAILED:certificate status request failed")
    assert portvakt["cache-store"] == [(200, "SUCCESS"), (400, "FAILED:certificate revoked")]
    assert portvakt["cache-lookup"] == portvakt["cache-store"]
    assert portvakt["while-waiting"] == (200, "SUCCESS")
    assert portvakt["waiting-answered"] is False


CONF_T = """
http {
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_client_certificate @CA@;
        @LINE@
    }
}
"""


@pytest.mark.parametrize("line", [
    "ssl_ocsp maybe;",
    "ssl_ocsp on; ssl_verify_client optional_no_ca;",
    "ssl_ocsp_cache shared:x;",
    "ssl_ocsp_cache shared:x:1k;",
    "ssl_ocsp on; ssl_ocsp_responder ftp://127.0.0.1;",
    "ssl_ocsp on; ssl_ocsp_responder http://127.0.0.1:99999;",
])
def test_ocsp_config_errors(tmp_path, pki, line):
    """The same config error as NGINX's, with where it is."""
    msgs = {}
    for kind, binary in (("nginx", "/usr/sbin/nginx"), ("portvakt", os.environ.get("PORTVAKT", "build/portvakt"))):
        d = tmp_path / kind
        d.mkdir()
        conf = d / "n.conf"
        conf.write_text("events {}\n" + CONF_T.replace("@GW@", str(free_port())).replace("@CRT@", pki.srv[0])
                        .replace("@KEY@", pki.srv[1]).replace("@CA@", pki.ca[0]).replace("@LINE@", line))
        r = subprocess.run([os.path.abspath(binary), "-t", "-p", str(d), "-c", str(conf)], capture_output=True)
        assert r.returncode != 0
        text = r.stderr.decode()
        line_ = [l for l in text.splitlines() if "[emerg]" in l][0].split("] ", 1)[1]
        msgs[kind] = re.sub(r"^\d+#\d+: ", "", line_).replace(str(d), "DIR")
    n, p = msgs["nginx"], msgs["portvakt"]
    # NGINX names no place for the checks made at merge; portvakt does
    assert p == n or re.fullmatch(re.escape(n) + r" in DIR/n\.conf:\d+", p), (n, p)
