"""A private PKI made with the openssl command at test time, and TLS
clients for the TLS tests: curl, openssl s_client and Python's ssl.

Pki(dir) makes a CA, server certificates (ECDSA P-256 and RSA 2048) for
the names asked, client certificates signed by the CA or by a second CA
the gateway does not trust, an encrypted key with its password file and
a CRL. Every file is under dir."""

import os
import socket
import ssl
import subprocess


def _run(*argv, stdin=None):
    r = subprocess.run(argv, input=stdin, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), r.stderr.decode()))
    return r.stdout


class Pki:
    def __init__(self, d):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.ca = self._ca("ca", "Test Root CA")
        self.other_ca = self._ca("other-ca", "Untrusted CA")
        self._serial = 100

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name, kind):
        key = self.path(name + ".key")
        if kind == "rsa":
            _run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", key)
        else:
            _run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", key)
        return key

    def _ca(self, name, cn):
        key = self._key(name, "ec")
        crt = self.path(name + ".crt")
        _run("openssl", "req", "-x509", "-new", "-key", key, "-out", crt, "-days", "30",
             "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return (crt, key)

    def intermediate(self, name, cn):
        """A CA signed by the trusted CA: (cert path, key path)."""
        key = self._key(name, "ec")
        csr = self.path(name + ".csr")
        crt = self.path(name + ".crt")
        _run("openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
        self._serial += 1
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca[0], "-CAkey", self.ca[1],
             "-set_serial", str(self._serial), "-out", crt, "-days", "30", "-extfile", ext)
        return (crt, key)

    def chain(self, leaf, *cas):
        """A file with leaf's certificate followed by the CAs'."""
        out = leaf[0].replace(".crt", ".chain.crt")
        with open(out, "w") as f:
            for c in (leaf[0],) + tuple(ca[0] for ca in cas):
                f.write(open(c).read())
        return (out, leaf[1])

    def issue(self, name, cn, kind="ec", sans=(), ca=None, client=False, days=30, ocsp_url=None):
        """A certificate and key signed by ca (default: the trusted CA),
        with ocsp_url as its AIA OCSP responder when given; returns (cert
        path, key path)."""
        ca = ca or self.ca
        key = self._key(name, kind)
        csr = self.path(name + ".csr")
        crt = self.path(name + ".crt")
        _run("openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/O=Portvakt Test/CN=" + cn)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            if sans:
                f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
            f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
            if ocsp_url:
                f.write("authorityInfoAccess=OCSP;URI:%s\n" % ocsp_url)
        self._serial += 1
        _run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
             "-set_serial", str(self._serial), "-out", crt, "-days", str(days), "-extfile", ext)
        return (crt, key)

    def encrypt_key(self, key, password):
        out = key.replace(".key", ".enc.key")
        _run("openssl", "pkey", "-in", key, "-out", out, "-aes256", "-passout", "pass:" + password)
        return out

    def ocsp_response(self, crt):
        """A DER OCSP response for crt signed by the CA (status "unknown":
        the CA keeps no index)."""
        req = crt.replace(".crt", ".ocspreq")
        out = crt.replace(".crt", ".ocsp")
        index = self.path("ocsp-index.txt")
        open(index, "w").close()
        _run("openssl", "ocsp", "-issuer", self.ca[0], "-cert", crt, "-reqout", req, "-no_nonce")
        _run("openssl", "ocsp", "-index", index, "-rsigner", self.ca[0], "-rkey", self.ca[1],
             "-CA", self.ca[0], "-reqin", req, "-respout", out, "-ndays", "1")
        return out

    def crl(self, revoked_crt):
        """A CRL of the trusted CA revoking revoked_crt."""
        db = self.path("index.txt")
        open(db, "w").close()
        cnf = self.path("ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s\ndefault_md=sha256\n"
                    "default_crl_days=30\n" % db)
        _run("openssl", "ca", "-config", cnf, "-keyfile", self.ca[1], "-cert", self.ca[0],
             "-revoke", revoked_crt)
        out = self.path("ca.crl")
        _run("openssl", "ca", "-config", cnf, "-keyfile", self.ca[1], "-cert", self.ca[0],
             "-gencrl", "-out", out)
        return out


def client_context(pki=None, cert=None, verify=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and pki:
        ctx.load_verify_locations(pki.ca[0])
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def tls_connect(port, server_name, ctx, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(s, server_hostname=server_name)
    except Exception:
        s.close()
        raise


def peer_cert_text(tls_sock):
    der = tls_sock.getpeercert(binary_form=True)
    return _run("openssl", "x509", "-inform", "DER", "-noout", "-subject", "-text",
                stdin=der).decode()


def https_get(port, host, path="/", pki=None, ctx=None, headers=(), keep=None):
    """One request over a new TLS connection (SNI = host); returns
    (status, headers dict lowercased, body bytes)."""
    ctx = ctx or client_context(pki)
    s = tls_connect(port, host, ctx)
    try:
        return request_on(s, host, path, headers)
    finally:
        s.close()


def request_on(s, host, path="/", headers=(), method="GET", close=True):
    req = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host)
    for k, v in headers:
        req += "%s: %s\r\n" % (k, v)
    if close:
        req += "Connection: close\r\n"
    s.sendall((req + "\r\n").encode())
    return read_response(s)


def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed before a response head: %r" % buf)
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, hdrs, rest[:n]


def s_client(port, *args, stdin=b"", servername=None):
    """openssl s_client against the gateway; returns (rc, stdout+stderr)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    if servername:
        argv += ["-servername", servername]
    argv += list(args)
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")
