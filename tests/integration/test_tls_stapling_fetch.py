"""ssl_stapling without ssl_stapling_file: the OCSP response is fetched
from the responder the certificate's AIA names (or ssl_stapling_responder)
by the first handshake that asks for status, and stapled from then on.
A real responder (`openssl ocsp -port`) runs on loopback; NGINX 1.22
runs the same configs beside portvakt where it is installed."""

import base64
import datetime
import http.server
import os
import subprocess
import threading
import urllib.parse

import pytest

from conftest import NGINX, PORTVAKT, check_conf, free_port, wait_for
from dns_stub import A, DnsStub
from tls_pki import Pki, _run, s_client

pytestmark = pytest.mark.portvakt_only("compares portvakt with NGINX itself")

NO_STAPLE = "OCSP response: no response sent"
STAPLED = "OCSP Response Status: successful"


def _serial(crt):
    return _run("openssl", "x509", "-in", crt, "-noout", "-serial").decode().split("=")[1].strip()


def _subject(crt):
    out = _run("openssl", "x509", "-in", crt, "-noout", "-subject", "-nameopt", "compat").decode()
    return out.split("=", 1)[1].strip()


class Responder:
    """An OCSP responder on 127.0.0.1: HTTP GETs (as NGINX and portvakt
    send them) answered by `openssl ocsp` for the test CA from an index
    where `good` is valid and `revoked` revoked. (`openssl ocsp -port`
    itself would listen on every address.)"""

    def __init__(self, pki, port, good, revoked):
        end = (datetime.datetime.utcnow() + datetime.timedelta(days=30)).strftime("%y%m%d%H%M%SZ")
        gone = (datetime.datetime.utcnow() - datetime.timedelta(days=1)).strftime("%y%m%d%H%M%SZ")
        self.index = pki.path("responder-index.txt")
        with open(self.index, "w") as f:
            for crt in good:
                f.write("V\t%s\t\t%s\tunknown\t%s\n" % (end, _serial(crt), _subject(crt)))
            f.write("R\t%s\t%s\t%s\tunknown\t%s\n" % (end, gone, _serial(revoked), _subject(revoked)))
        with open(self.index + ".attr", "w") as f:
            f.write("unique_subject = no\n")  # the certificates share a subject
        self.pki, self.port, self.requests = pki, port, 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = outer.answer(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path):
        der = base64.b64decode(urllib.parse.unquote(path.rsplit("/", 1)[1]))
        with self.lock:
            self.requests += 1
            n = self.requests
        req, out = self.pki.path("req%d.der" % n), self.pki.path("resp%d.der" % n)
        with open(req, "wb") as f:
            f.write(der)
        _run("openssl", "ocsp", "-index", self.index, "-rsigner", self.pki.ca[0], "-rkey", self.pki.ca[1],
             "-CA", self.pki.ca[0], "-reqin", req, "-respout", out, "-ndays", "1")
        with open(out, "rb") as f:
            return f.read()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.rport = free_port()
    p.dead = free_port()  # nothing listens there
    url = "http://127.0.0.1:%d/ocsp" % p.rport
    p.good = p.issue("good", "a.test", "ec", sans=["a.test"], ocsp_url=url)
    p.revoked = p.issue("revoked", "a.test", "ec", sans=["a.test"], ocsp_url=url)
    p.plain = p.issue("plain", "a.test", "ec", sans=["a.test"])
    p.deadcrt = p.issue("deadcrt", "a.test", "ec", sans=["a.test"], ocsp_url="http://127.0.0.1:%d/" % p.dead)
    # the issuer is found in the certificate's file (a "fullchain"), and
    # vouches for the responses it signs
    p.good_full, p.plain_full, p.revoked_full, p.dead_full = (
        p.chain(c, p.ca) for c in (p.good, p.plain, p.revoked, p.deadcrt))
    return p


@pytest.fixture(scope="module")
def responder(pki):
    r = Responder(pki, pki.rport, [pki.good[0], pki.plain[0]], pki.revoked[0])
    yield r
    r.stop()


CONF = """
error_log stderr notice;
@MAIN@
events {}
http {
    access_log off;
    @HTTP@
    server {
        listen 127.0.0.1:@GW@ ssl;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        ssl_stapling on;
        @EXTRA@
        location / { return 200 "ok\\n"; }
    }
}
"""


def start(factory, crt, extra="", http="", main=""):
    port = free_port()
    text = CONF.replace("@EXTRA@", extra).replace("@HTTP@", http).replace("@MAIN@", main)
    srv = factory(text, GW=port, CRT=crt[0], KEY=crt[1])
    return port, srv


def status(port):
    rc, out = s_client(port, "-servername", "a.test", "-status")
    assert rc == 0, out
    return out


def wait_stapled(port, srv=None):
    """Handshakes until one carries a response (the first only starts
    the fetch); that handshake's output."""
    got = []

    def stapled():
        got.append(status(port))
        return STAPLED in got[-1]

    try:
        wait_for(stapled, timeout=30, interval=0.2, what="a stapled OCSP response")
    except AssertionError:
        raise AssertionError("no staple; log:\n%s" % (srv.stderr() if srv else "?"))
    return got[-1]


def wait_log(srv, text):
    try:
        wait_for(lambda: text in srv.stderr(), timeout=30, interval=0.1, what=text)
    except AssertionError:
        raise AssertionError("%r not logged:\n%s" % (text, srv.stderr()))
    return srv.stderr()


SERVERS = ["portvakt", "nginx"] if os.access(NGINX, os.X_OK) else ["portvakt"]


@pytest.fixture(params=SERVERS)
def server(request, portvakt, nginx):
    return portvakt if request.param == "portvakt" else nginx


def test_fetched_from_the_aia_responder(server, pki, responder):
    """The first handshake asking for status gets none and starts the
    fetch; later ones get the responder's answer, checked against
    ssl_trusted_certificate."""
    port, srv = start(server, pki.good, "ssl_trusted_certificate %s; ssl_stapling_verify on;" % pki.ca[0])
    first = status(port)
    assert NO_STAPLE in first, first
    out = wait_stapled(port, srv)
    assert "Cert Status: good" in out, out


def test_no_status_asked_no_fetch(portvakt, pki, responder, tmp_path):
    """A handshake that does not ask for status starts nothing: a
    responder that counts connections sees none."""
    import socket
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    lst.settimeout(0.5)
    url = "http://127.0.0.1:%d/" % lst.getsockname()[1]
    port, srv = start(portvakt, pki.good_full, "ssl_stapling_responder %s;" % url)
    rc, out = s_client(port, "-servername", "a.test")
    assert rc == 0 and NO_STAPLE not in out, out
    with pytest.raises(socket.timeout):
        lst.accept()
    status(port)
    conn, _ = lst.accept()  # the fetch the status request started
    conn.close()
    lst.close()


def test_one_fetch_for_all_workers(portvakt, pki, responder):
    """The response is kept per certificate for every worker: however
    the handshakes spread over four workers, the responder is asked once
    (NGINX asks once per worker process)."""
    before = responder.requests
    port, srv = start(portvakt, pki.good_full, "ssl_stapling_responder http://127.0.0.1:%d/;" % pki.rport,
                      main="worker_processes 4;")
    wait_stapled(port, srv)
    for _ in range(12):
        assert "Cert Status: good" in status(port)
    assert responder.requests - before == 1
    assert "started: 4 workers" in srv.stderr()


def test_responder_directive_over_the_aia(server, pki, responder):
    """ssl_stapling_responder for a certificate without AIA."""
    port, srv = start(server, pki.plain_full, "ssl_stapling_responder http://127.0.0.1:%d/;" % pki.rport)
    out = wait_stapled(port, srv)
    assert "Cert Status: good" in out, out


def test_revoked_is_not_stapled(server, pki, responder):
    """A response saying "revoked" is refused as NGINX refuses it (logged,
    retried in 5 minutes): the handshake goes on without a staple."""
    port, srv = start(server, pki.revoked, "ssl_trusted_certificate %s;" % pki.ca[0])
    assert NO_STAPLE in status(port)
    err = wait_log(srv, 'certificate status "revoked" in the OCSP response')
    assert "while requesting certificate status, responder: 127.0.0.1" in err, err
    out = status(port)
    assert NO_STAPLE in out and "Cert Status" not in out, out


def test_dead_responder(server, pki):
    """Nothing listening at the responder: logged, no staple, and the
    server answers as before."""
    port, srv = start(server, pki.dead_full)
    assert NO_STAPLE in status(port)
    # two lines, each its own write: the second may come after the first is read
    wait_log(srv, "recv() failed (111: Connection refused) while requesting certificate status")
    err = wait_log(srv, "OCSP responder prematurely closed connection while requesting certificate status")
    assert "responder: 127.0.0.1, peer: 127.0.0.1:%d" % pki.dead in err, err
    rc, out = s_client(port, "-servername", "a.test", "-status", "-ign_eof", stdin=b"GET / HTTP/1.0\r\n\r\n")
    assert rc == 0 and NO_STAPLE in out and "ok" in out, out


def test_issuer_unknown(server, pki, responder):
    """Without the issuer (neither in the certificate's file nor trusted),
    stapling is ignored with a warning at load, and nothing is fetched."""
    port, srv = start(server, pki.good)
    assert NO_STAPLE in status(port)
    assert NO_STAPLE in status(port)
    assert '"ssl_stapling" ignored, issuer certificate not found for certificate "%s"' % pki.good[0] in srv.stderr()


def test_verify_off(server, pki, responder):
    """ssl_stapling_verify is off by default, as in NGINX."""
    port, srv = start(server, pki.good_full)
    assert "Cert Status: good" in wait_stapled(port, srv)


def test_name_without_resolver(server, pki, responder):
    """A responder named by a host name and no `resolver`: warned at each
    fetch, and the address found at load is used."""
    port, srv = start(server, pki.plain_full, "ssl_stapling_responder http://localhost:%d/;" % pki.rport)
    status(port)
    assert "Cert Status: good" in wait_stapled(port, srv)
    assert "no resolver defined to resolve localhost" in srv.stderr()


def test_name_through_the_resolver(portvakt, pki, responder):
    """With a `resolver`, the responder's name is looked up there at each
    fetch, not taken from the load (where localhost resolves): the DNS
    server does not know it, so the failed lookup is logged and nothing
    is stapled."""
    dns = DnsStub()
    try:
        port, srv = start(portvakt, pki.plain_full, "ssl_stapling_responder http://localhost:%d/;" % pki.rport,
                          http="resolver 127.0.0.1:%d; resolver_timeout 5s;" % dns.port)
        assert NO_STAPLE in status(port)
        err = wait_log(srv, "localhost could not be resolved (3: Host not found)")
        assert dns.count("localhost", A) >= 1
        assert "while requesting certificate status, responder: localhost, certificate:" in err, err
        assert "no resolver defined" not in err, err
        assert NO_STAPLE in status(port)
    finally:
        dns.stop()


class BadResponder:
    """An HTTP server on 127.0.0.1 answering every GET with one fixed,
    unusable answer."""

    def __init__(self, code, ctype, body):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("code,ctype,body,logged,both", [
    (200, "text/html", b"<p>no</p>", 'OCSP responder sent invalid "Content-Type" header: "text/html"', True),
    (200, "application/ocsp-response", b"\x30\x03garbage", "d2i_OCSP_RESPONSE() failed", True),
    (500, "application/ocsp-response", b"", "OCSP responder sent status 500", False),
])
def test_unusable_answers(server, pki, code, ctype, body, logged, both, request):
    """Answers that cannot be stapled are logged and nothing is stapled.
    NGINX says nothing of a status other than 200; portvakt logs it."""
    if not both and "nginx" in request.node.name:
        pytest.skip("NGINX does not log a responder's status")
    bad = BadResponder(code, ctype, body)
    try:
        port, srv = start(server, pki.plain_full, "ssl_stapling_responder http://127.0.0.1:%d/;" % bad.port)
        assert NO_STAPLE in status(port)
        err = wait_log(srv, logged)
        assert "while requesting certificate status, responder: 127.0.0.1, peer: 127.0.0.1:%d" % bad.port in err, err
        assert NO_STAPLE in status(port), err
    finally:
        bad.stop()


@pytest.mark.parametrize("crt,extra,warned", [
    ("plain_full", "", '"ssl_stapling" ignored, no OCSP responder URL in the certificate "@CRT@"'),
    ("plain_full", "ssl_stapling_responder ftp://127.0.0.1/;",
     '"ssl_stapling" ignored, invalid URL prefix in OCSP responder "ftp://127.0.0.1/" in the certificate "@CRT@"'),
    ("plain_full", "ssl_stapling_responder http://127.0.0.1:99999/;",
     '"ssl_stapling" ignored, invalid port in OCSP responder "127.0.0.1:99999/" in the certificate "@CRT@"'),
    ("good_full", "ssl_stapling_verify on; resolver_timeout 5s;", None),
])
def test_check_accepts(pki, tmp_path, crt, extra, warned):
    """-t takes ssl_stapling without a file; what cannot be fetched is a
    warning, never an error, in both."""
    c = getattr(pki, crt)
    text = CONF.replace("@EXTRA@", extra).replace("@HTTP@", "").replace("@MAIN@", "").replace("@GW@", str(free_port()))
    text = text.replace("@CRT@", c[0]).replace("@KEY@", c[1])
    path = tmp_path / "t.conf"
    path.write_text(text)
    for name, (rc, out) in check_conf(path, tmp_path).items():
        assert rc == 0, (name, out)
        if warned:
            assert warned.replace("@CRT@", c[0]) in out, (name, out)
        else:
            assert "ssl_stapling" not in out, (name, out)


def test_duplicate_responder_refused(tmp_path, pki):
    text = CONF.replace("@EXTRA@", "ssl_stapling_responder http://a/; ssl_stapling_responder http://b/;")
    text = text.replace("@MAIN@", "")
    text = text.replace("@HTTP@", "").replace("@GW@", "1").replace("@CRT@", pki.good[0]).replace("@KEY@", pki.good[1])
    path = tmp_path / "d.conf"
    path.write_text(text)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    assert p.returncode == 1
    assert b'"ssl_stapling_responder" directive is duplicate' in p.stderr, p.stderr
