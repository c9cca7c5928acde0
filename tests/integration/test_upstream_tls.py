"""TLS to upstreams: proxy_pass https://, proxy_ssl_verify and its name
check, proxy_ssl_server_name / proxy_ssl_name (SNI), client certificates
to the upstream, keepalive over TLS and session resumption on a new
connection. The upstream is a Python ssl server with a private CA that
records each connection: the SNI it got, whether the session was
resumed, the client certificate."""

import json
import os
import socket
import ssl
import threading

import pytest

from conftest import TARGET, free_port, http, wait_for
from tls_pki import Pki

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.srv = p.issue("up", "backend.test", "ec", sans=["backend.test", "alt.test"])
    p.stranger = p.issue("stranger", "backend.test", "ec", sans=["backend.test"], ca=p.other_ca)
    p.client = p.issue("gw-client", "gateway-a", "ec", client=True)
    p.revoked_srv = p.issue("up-revoked", "backend.test", "ec", sans=["backend.test"])
    p.crl_file = p.crl(p.revoked_srv[0])
    return p


class TlsUpstream:
    """An HTTPS/1.1 keepalive server. Each connection's TLS facts are kept
    in `conns` (dicts: sni, resumed, cert_cn, version) and every answer is
    a JSON echo of them with the request line and Host."""

    def __init__(self, pki, cert=None, require_client_cert=False):
        cert = cert or pki.srv
        self.health = 200           # the status /health answers
        self.checks = 0             # /health requests served
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert[0], cert[1])
        if require_client_cert:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(pki.ca[0])
        self.ctx.sni_callback = self._sni
        self._sni_seen = threading.local()
        self.conns = []
        self.handshake_failures = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _sni(self, sslsock, name, ctx):
        sslsock.context  # noqa: B018 (the callback must not raise)
        self._sni_seen.name = name

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.socks.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, raw):
        self._sni_seen.name = None
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.handshake_failures += 1
            raw.close()
            return
        cert = s.getpeercert()
        cn = None
        if cert:
            cn = [v for rdn in cert["subject"] for k, v in rdn if k == "commonName"][0]
        info = {"sni": self._sni_seen.name, "resumed": s.session_reused, "cert_cn": cn,
                "version": s.version()}
        with self.lock:
            self.conns.append(info)
            info["conn"] = len(self.conns)
        buf = b""
        s.settimeout(30)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                hdrs = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
                if lines[0].startswith("GET /health "):
                    # a health check: HTTP/1.0, answered and closed
                    with self.lock:
                        self.checks += 1
                    s.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % self.health)
                    return
                body = json.dumps(dict(info, line=lines[0], host=hdrs.get("host"))).encode()
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except (OSError, ssl.SSLError, ValueError):
            return
        finally:
            s.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def tls_upstream(pki):
    made = []

    def make(**kw):
        u = TlsUpstream(pki, **kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


CONF = """
http {
    access_log off;
    upstream backend {
        server 127.0.0.1:@UP@;
        @KEEPALIVE@
    }
    server {
        listen 127.0.0.1:@GW@;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        @EXTRA@
        location / { proxy_pass https://@TARGET@; }
    }
}
"""


def start(gateway, up, extra="", target="backend", keepalive="keepalive 4;"):
    gw = free_port()
    srv = gateway(CONF, GW=gw, UP=up.port, EXTRA=extra, TARGET=target.replace("@UP@", str(up.port)),
                  KEEPALIVE=keepalive)
    return gw, srv


def get(gw, path="/", host="localhost"):
    r = http(gw, target=path, host=host)
    return r.status, (json.loads(r.body) if r.status == 200 else None)


def verify_conf(pki, name=None, depth=None):
    s = "proxy_ssl_verify on; proxy_ssl_trusted_certificate %s;" % pki.ca[0]
    if name:
        s += " proxy_ssl_name %s;" % name
    if depth is not None:
        s += " proxy_ssl_verify_depth %d;" % depth
    return s


def test_https_upstream_without_verification(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up)
    st, b = get(gw, "/a")
    assert st == 200
    assert b["line"] == "GET /a HTTP/1.1"
    # proxy_ssl_server_name is off by default: no SNI
    assert b["sni"] is None
    # $proxy_host is the upstream's name, as for http
    assert b["host"] == "backend"


def test_literal_address_and_default_port_in_host(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, target="127.0.0.1:@UP@")
    st, b = get(gw)
    assert st == 200
    assert b["host"] == "127.0.0.1:%d" % up.port


def test_verify_on_with_the_right_name(gateway, tls_upstream, pki):
    up = tls_upstream()
    gw, _ = start(gateway, up, verify_conf(pki, "backend.test"))
    st, b = get(gw)
    assert st == 200


def test_verify_wrong_name_is_502_with_nginx_log_line(gateway, tls_upstream, pki):
    up = tls_upstream()
    gw, srv = start(gateway, up, verify_conf(pki))  # the name is "backend", not in the certificate
    st, _ = get(gw)
    assert st == 502
    wait_for(lambda: 'upstream SSL certificate does not match "backend" while SSL handshaking to upstream'
             in srv.stderr(), what="the name mismatch logged")


def test_verify_untrusted_ca_is_502_with_nginx_log_line(gateway, tls_upstream, pki):
    up = tls_upstream(cert=pki.stranger)
    gw, srv = start(gateway, up, verify_conf(pki, "backend.test"))
    st, _ = get(gw)
    assert st == 502
    wait_for(lambda: "upstream SSL certificate verify error: (21:unable to verify the first certificate) "
             "while SSL handshaking to upstream" in srv.stderr(), what="the verify error logged")


def test_verify_off_accepts_an_untrusted_certificate(gateway, tls_upstream, pki):
    up = tls_upstream(cert=pki.stranger)
    gw, _ = start(gateway, up, "proxy_ssl_name nowhere.test; proxy_ssl_trusted_certificate %s;" % pki.ca[0])
    assert get(gw)[0] == 200


def test_sni_sent_per_proxy_ssl_server_name(gateway, tls_upstream, pki):
    up = tls_upstream()
    gw, _ = start(gateway, up, "proxy_ssl_server_name on; proxy_ssl_name alt.test:8443;")
    st, b = get(gw)
    assert st == 200
    assert b["sni"] == "alt.test"  # the port is left out
    up2 = tls_upstream()
    gw2, _ = start(gateway, up2, "proxy_ssl_server_name on;")
    assert get(gw2)[1]["sni"] == "backend"


def test_no_sni_for_an_ip_literal(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, "proxy_ssl_server_name on;", target="127.0.0.1:@UP@")
    assert get(gw)[1]["sni"] is None


def test_client_certificate_to_the_upstream(gateway, tls_upstream, pki):
    up = tls_upstream(require_client_cert=True)
    gw, _ = start(gateway, up, "proxy_ssl_certificate %s; proxy_ssl_certificate_key %s;" % pki.client)
    st, b = get(gw)
    assert st == 200
    assert b["cert_cn"] == "gateway-a"


def test_upstream_requiring_a_certificate_refuses_none(gateway, tls_upstream):
    up = tls_upstream(require_client_cert=True)
    gw, srv = start(gateway, up)
    assert get(gw)[0] == 502
    # TLS 1.3: the refusal comes after our side of the handshake, as a
    # reset or an alert while the request is sent or the answer awaited
    wait_for(lambda: "[error]" in srv.stderr() and "127.0.0.1:%d" % up.port in srv.stderr(),
             what="the refusal logged")
    assert up.handshake_failures >= 1


def test_keepalive_reuses_the_tls_connection(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up)
    conns = {get(gw)[1]["conn"] for _ in range(5)}
    assert len(conns) == 1
    assert len(up.conns) == 1


def test_new_connection_resumes_the_session(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, keepalive="")  # no pool: every request opens a connection
    bodies = [get(gw)[1] for _ in range(3)]
    assert len({b["conn"] for b in bodies}) == 3
    assert bodies[0]["resumed"] is False
    assert bodies[1]["resumed"] is True and bodies[2]["resumed"] is True


def test_session_reuse_off(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, "proxy_ssl_session_reuse off;", keepalive="")
    bodies = [get(gw)[1] for _ in range(3)]
    assert not any(b["resumed"] for b in bodies)


def test_protocols_limit_the_version(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, "proxy_ssl_protocols TLSv1.2;")
    assert get(gw)[1]["version"] == "TLSv1.2"


def test_http_and_https_locations_do_not_share_connections(gateway, tls_upstream, upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, "location /plain { proxy_pass http://127.0.0.1:%d; }" % up.port)
    assert get(gw)[0] == 200
    assert get(gw)[0] == 200
    assert len(up.conns) == 1


@pytest.mark.parametrize("extra,msg", [
    ("proxy_ssl_verify on;", "no proxy_ssl_trusted_certificate for proxy_ssl_verify"),
    ("proxy_ssl_certificate /nonexistent.crt; proxy_ssl_certificate_key /nonexistent.key;",
     "cannot load certificate \"/nonexistent.crt\""),
    ("proxy_ssl_protocols TLSv9;", "invalid value \"TLSv9\""),
    ("proxy_ssl_name $nosuchvar;", "unknown \"nosuchvar\" variable"),
    ("proxy_ssl_conf_command NoSuchCommand x;", "SSL_CONF_cmd(\"NoSuchCommand\", \"x\") failed"),
    ("proxy_ssl_certificate %s; proxy_ssl_certificate_key %s; proxy_ssl_password_file /nonexistent;",
     "/nonexistent"),
])
def test_config_errors(tmp_path, pki, extra, msg):
    import subprocess
    if "%s" in extra:
        extra = extra % pki.client
    from conftest import PORTVAKT
    conf = tmp_path / "p.conf"
    conf.write_text(CONF.replace("@EXTRA@", extra).replace("@GW@", "1").replace("@UP@", "2")
                    .replace("@TARGET@", "backend").replace("@KEEPALIVE@", ""))
    r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode != 0
    assert msg in r.stderr
    assert "p.conf:" in r.stderr


@pytest.mark.parametrize("extra,expect", [
    ("", (200, None)),
    ("proxy_ssl_server_name on; proxy_ssl_name backend.test;", (200, "backend.test")),
    ("VERIFY backend.test", (200, None)),
    ("VERIFY backend", (502, None)),
])
def test_differential_against_nginx(portvakt, nginx, tls_upstream, pki, extra, expect):
    if extra.startswith("VERIFY"):
        extra = verify_conf(pki, extra.split()[1])
    got = []
    for start_fn in (portvakt, nginx):
        up = tls_upstream()
        gw, _ = start(start_fn, up, extra)
        st, b = get(gw)
        got.append((st, b["sni"] if b else None))
    assert got[0] == expect, "portvakt"
    assert got[1] == expect, "nginx"


def test_reload_keeps_the_session_and_closes_idle_tls_connections(gateway, tls_upstream, target_name):
    import os
    import signal
    if target_name == "nginx":
        pytest.skip("NGINX runs here without a master process, which SIGHUP needs")
    up = tls_upstream()
    gw, srv = start(gateway, up)
    assert get(gw)[1]["conn"] == 1
    # a new config (another header) with the same upstream
    with open(srv.conf_path) as f:
        text = f.read()
    with open(srv.conf_path, "w") as f:
        f.write(text.replace('proxy_set_header Connection "";',
                             'proxy_set_header Connection ""; proxy_set_header X-Gen two;'))
    os.kill(srv.pid, signal.SIGHUP)
    # the idle TLS connection is not handed to the new config; the new one
    # resumes the session the server gave before the reload
    b = wait_for(lambda: (lambda r: r if r["conn"] > 1 else None)(get(gw)[1]), what="a new connection")
    assert b["resumed"] is True


def test_client_key_opened_with_proxy_ssl_password_file(gateway, tls_upstream, pki, tmp_path):
    enc = pki.encrypt_key(pki.client[1], "right")
    pw = tmp_path / "proxy-passwords"
    pw.write_text("wrong\nright\n")
    up = tls_upstream(require_client_cert=True)
    gw, _ = start(gateway, up, "proxy_ssl_certificate %s; proxy_ssl_certificate_key %s; "
                  "proxy_ssl_password_file %s;" % (pki.client[0], enc, pw))
    st, b = get(gw)
    assert st == 200
    assert b["cert_cn"] == "gateway-a"


def test_proxy_ssl_conf_command_sets_the_client(gateway, tls_upstream):
    up = tls_upstream()
    gw, _ = start(gateway, up, "proxy_ssl_conf_command MaxProtocol TLSv1.2;")
    assert get(gw)[1]["version"] == "TLSv1.2"
    # a location's own list replaces the inherited one (no pool: NGINX's
    # would hand /own the connection made under the other settings)
    # (NGINX 1.22's proxy_ssl_protocols default lacks TLSv1.3)
    gw, _ = start(gateway, up, "proxy_ssl_protocols TLSv1.2 TLSv1.3; "
                  "proxy_ssl_conf_command MaxProtocol TLSv1.2; location /own { "
                  "proxy_ssl_conf_command MinProtocol TLSv1.3; proxy_pass https://backend; }", keepalive="")
    assert get(gw)[1]["version"] == "TLSv1.2"
    assert get(gw, "/own")[1]["version"] == "TLSv1.3"


def test_proxy_ssl_name_with_variables(gateway, tls_upstream, pki):
    up = tls_upstream()
    gw, srv = start(gateway, up, "proxy_ssl_server_name on; proxy_ssl_name $http_x_backend_name; "
                    "proxy_ssl_session_reuse off; "
                    + verify_conf(pki).replace("proxy_ssl_verify on;", "proxy_ssl_verify on;"),
                    keepalive="")
    # the name is the request's: SNI and the name checked both follow it, a port left out
    for name, want in (("backend.test", 200), ("alt.test:8443", 200), ("other.test", 502)):
        r = http(gw, target="/", host="localhost", headers=[("X-Backend-Name", name)])
        assert r.status == want, (name, r.status)
        if want == 200:
            assert json.loads(r.body)["sni"] == name.split(":")[0]
    if TARGET != "nginx":
        wait_for(lambda: "upstream SSL certificate does not match \"other.test\"" in srv.stderr(),
                 what="the log line")


HC_CONF = """
error_log stderr warn;
http {
    access_log off;
    upstream backend { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        location / {
            proxy_pass https://backend;
            @EXTRA@
            health_check interval=200ms uri=/health mandatory;
        }
    }
}
"""


def test_health_check_over_https(portvakt, tls_upstream, pki):
    """health_check of an https upstream (NGINX Plus; OSS has no checks)
    speaks TLS with the location's proxy_ssl_* settings: SNI, and the
    check of the chain and the name."""
    up = tls_upstream()
    gw = free_port()
    srv = portvakt(HC_CONF, GW=gw, UP=up.port, EXTRA=verify_conf(pki, "backend.test") + " proxy_ssl_server_name on;")
    wait_for(lambda: "127.0.0.1:%d in upstream \"backend\" passed its health check: up" % up.port in srv.stderr(),
             timeout=10, what="the first check over TLS")
    assert up.checks >= 1
    assert any(c["sni"] == "backend.test" for c in up.conns)
    assert get(gw)[0] == 200
    up.health = 503
    wait_for(lambda: "failed its health check (status 503): down" in srv.stderr(), timeout=10,
             what="the failing check")
    r = http(gw, target="/")
    assert r.status == 503 and r.header("Retry-After") == "1"


def test_health_check_over_https_verifies(portvakt, tls_upstream, pki):
    up = tls_upstream(cert=pki.stranger)
    gw = free_port()
    srv = portvakt(HC_CONF, GW=gw, UP=up.port, EXTRA=verify_conf(pki, "backend.test"))
    wait_for(lambda: "failed its health check" in srv.stderr(), timeout=10, what="the check to fail")
    line = [l for l in srv.stderr().splitlines() if "failed its health check" in l][0]
    assert "certificate" in line, line
    assert up.checks == 0
    assert http(gw, target="/").status == 503


@pytest.mark.parametrize("revoked", [False, True])
def test_proxy_ssl_crl_against_nginx(portvakt, nginx, tls_upstream, pki, revoked):
    """proxy_ssl_crl: an upstream certificate the CRL revokes fails the
    verification (502, "certificate revoked" logged); one it does not
    name passes, in both servers."""
    extra = verify_conf(pki, "backend.test") + " proxy_ssl_crl %s;" % pki.crl_file
    for start_fn in (portvakt, nginx):
        up = tls_upstream(cert=pki.revoked_srv if revoked else None)
        gw, srv = start(start_fn, up, extra)
        st, _ = get(gw)
        assert st == (502 if revoked else 200), start_fn
        if revoked and start_fn is portvakt:
            wait_for(lambda: "upstream SSL certificate verify error: (23:certificate revoked)" in srv.stderr(),
                     what="the revocation logged")


def test_proxy_ssl_crl_unreadable_is_a_config_error(tmp_path, pki):
    import subprocess
    from conftest import PORTVAKT
    conf = tmp_path / "p.conf"
    conf.write_text(CONF.replace("@EXTRA@", "proxy_ssl_crl /nonexistent.crl;").replace("@GW@", "1")
                    .replace("@UP@", "2").replace("@TARGET@", "backend").replace("@KEEPALIVE@", ""))
    r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode != 0
    assert 'X509_LOOKUP_load_file("/nonexistent.crl") failed' in r.stderr
    assert "p.conf:" in r.stderr


def test_proxy_ssl_certificate_with_variables_against_nginx(portvakt, nginx, tls_upstream, pki):
    """proxy_ssl_certificate / _key with variables: the files are named per
    request (and the key opened with proxy_ssl_password_file); an empty
    name sends no certificate, in both servers."""
    import os
    d = os.path.dirname(pki.client[0])
    pw = os.path.join(d, "vars-pass.txt")
    with open(pw, "w") as f:
        f.write("wrong\nsecret\n")
    enc = pki.encrypt_key(pki.client[1], "secret")
    os.replace(enc, os.path.join(d, "gw-enc.key"))
    with open(os.path.join(d, "gw-enc.crt"), "w") as f:
        f.write(open(pki.client[0]).read())
    extra = ("proxy_ssl_session_reuse off; proxy_ssl_certificate $arg_c; proxy_ssl_certificate_key $arg_k; "
             "proxy_ssl_password_file %s;" % pw)
    for start_fn in (portvakt, nginx):
        up = tls_upstream(require_client_cert=True)
        up.ctx.verify_mode = ssl.CERT_OPTIONAL
        gw, _ = start(start_fn, up, extra, keepalive="")
        for stem, cn in (("gw-client", "gateway-a"), ("gw-enc", "gateway-a"), ("", None)):
            q = "/?c=%s&k=%s" % ((d + "/" + stem + ".crt", d + "/" + stem + ".key") if stem else ("", ""))
            st, b = get(gw, q)
            assert (st, b["cert_cn"]) == (200, cn), (start_fn is portvakt, stem)


def test_proxy_ssl_certificate_variable_naming_no_file_is_502(gateway, tls_upstream, pki):
    up = tls_upstream()
    gw, srv = start(gateway, up, "proxy_ssl_certificate $arg_c; proxy_ssl_certificate_key $arg_c;",
                    keepalive="")
    st, _ = get(gw, "/?c=/nonexistent.pem")
    assert st == 502
    wait_for(lambda: 'cannot load certificate "/nonexistent.pem"' in srv.stderr(), what="the failure logged")


class SilentUpstream:
    """Accepts connections and never answers the TLS handshake."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.mark.parametrize("location", [
    "proxy_pass https://127.0.0.1:@UP@; proxy_connect_timeout 1s; proxy_send_timeout 30s;",
    "grpc_pass grpcs://127.0.0.1:@UP@; grpc_connect_timeout 1s; grpc_send_timeout 30s;",
], ids=["proxy", "grpc"])
def test_connect_timeout_covers_the_handshake(gateway, location):
    """proxy_ssl.t's "proxy handshake timeout": an upstream that takes the
    connection and never answers the handshake is a timeout of
    proxy_connect_timeout (grpc_connect_timeout for grpcs://): 504,
    logged as NGINX logs it."""
    up = SilentUpstream()
    try:
        gw = free_port()
        srv = gateway("""
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { %s }
    }
}
""" % location, GW=gw, UP=up.port)
        r = http(gw, target="/", timeout=20)
        assert r.status == 504
        wait_for(lambda: "upstream timed out (110: Connection timed out) while SSL handshaking to upstream"
                 in srv.stderr() + _error_log(srv), what="the timeout logged")
    finally:
        up.stop()


def _error_log(srv):
    """NGINX's error log in its prefix (portvakt's goes to stderr here)."""
    for name in ("error.log", "logs/error.log"):
        p = os.path.join(str(srv.workdir), name)
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                return f.read()
    return ""
