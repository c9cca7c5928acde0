"""`listen ... proxy_protocol`: the PROXY protocol header (v1 and v2) a
load balancer sends first, $proxy_protocol_addr / _port /
_server_addr / _server_port, `real_ip_header proxy_protocol` with
set_real_ip_from, access rules on the address it gives, TLS and HTTP/2
after the header, broken headers. Each answer is compared with NGINX's."""

import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import LOOPBACK, PORTVAKT, free_port, wait_for
from tls_pki import Pki

pytestmark = pytest.mark.portvakt_only("compares portvakt with NGINX itself")

VARS = "$remote_addr|$proxy_protocol_addr|$proxy_protocol_port|" \
       "$proxy_protocol_server_addr|$proxy_protocol_server_port"

CONF = """
http {
    access_log off;
    set_real_ip_from 127.0.0.1/32;
    server {
        listen 127.0.0.1:@PP@ proxy_protocol;
        location / { return 200 "%(vars)s\\n"; }
        location /deny {
            real_ip_header proxy_protocol;
            deny 192.0.2.1;
        }
    }
    server {
        listen 127.0.0.1:@REAL@ proxy_protocol;
        real_ip_header proxy_protocol;
        location / { return 200 "$remote_addr|$remote_port|$realip_remote_addr|$proxy_protocol_addr\\n"; }
    }
    server {
        listen 127.0.0.1:@UNTRUSTED@ proxy_protocol;
        set_real_ip_from 198.51.100.0/24;
        real_ip_header proxy_protocol;
        location / { return 200 "$remote_addr\\n"; }
    }
    server {
        listen 127.0.0.1:@PLAIN@;
        location / { return 200 "[%(vars)s]\\n"; }
    }
}
""" % {"vars": VARS}

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V2_TCP4 = SIG + struct.pack("!BBH4s4sHH", 0x21, 0x11, 12, bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]),
                            123, 5678)
V2_TCP6 = SIG + struct.pack("!BBH16s16sHH", 0x21, 0x21, 36, socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
                            socket.inet_pton(socket.AF_INET6, "2001:db8::2"), 123, 5678)
V2_TLV = SIG + struct.pack("!BBH4s4sHH", 0x21, 0x11, 21, bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]),
                           123, 5678) + b"\x04\x00\x06noop!!"
V2_LOCAL = SIG + struct.pack("!BBH", 0x20, 0x00, 0)
V2_UNSPEC = SIG + struct.pack("!BBH", 0x21, 0x01, 0)
V2_OTHER_FAMILY = SIG + struct.pack("!BBH", 0x21, 0x41, 4) + b"\x01\x02\x03\x04"

HEADERS = [
    ("v1 tcp4", b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n"),
    ("v1 tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 123 5678\r\n"),
    ("v1 unknown", b"PROXY UNKNOWN\r\n"),
    ("v1 unknown with addresses", b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"),
    ("v1 port 65535", b"PROXY TCP4 192.0.2.1 192.0.2.2 65535 0\r\n"),
    ("v2 tcp4", V2_TCP4),
    ("v2 tcp6", V2_TCP6),
    ("v2 with a tlv", V2_TLV),
    ("v2 local", V2_LOCAL),
    ("v2 unspec", V2_UNSPEC),
    ("v2 other family", V2_OTHER_FAMILY),
]

BROKEN = [
    ("no header", b""),
    ("v1 bad port", b"PROXY TCP4 192.0.2.1 192.0.2.2 123 70000\r\n"),
    ("v1 bad address", b"PROXY TCP4 192.0.2.x 192.0.2.2 123 5678\r\n"),
    ("v1 no CR", b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\n"),
    ("v1 bad protocol", b"PROXY UDP4 192.0.2.1 192.0.2.2 123 5678\r\n"),
    ("v2 version 3", SIG + struct.pack("!BBH", 0x31, 0x11, 0)),
    ("v2 short inet", SIG + struct.pack("!BBH", 0x21, 0x11, 4) + b"\x01\x02\x03\x04"),
]

REQ = b"GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n"


def exchange(port, data, timeout=5.0):
    """Send data, read until the server closes; the bytes received."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out


def status_body(resp):
    if not resp:
        return None
    head, _, body = resp.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode().strip()


def mask_port(text):
    parts = text.split("|")
    if len(parts) > 1 and parts[0] == "127.0.0.1":
        parts[1] = "PORT"
    return "|".join(parts)


def answers(start):
    ports = {k: free_port() for k in ("PP", "REAL", "UNTRUSTED", "PLAIN")}
    start(CONF, **ports)
    pp = ports["PP"]
    out = {}
    for name, h in HEADERS:
        out[name] = status_body(exchange(pp, h + REQ % b"/"))
        out[name + " realip"] = status_body(exchange(ports["REAL"], h + REQ % b"/"))
    for name, h in BROKEN:
        out[name] = status_body(exchange(pp, h + REQ % b"/"))
    out["deny"] = status_body(exchange(pp, V2_TCP4 + REQ % b"/deny"))[:1]
    out["deny other"] = status_body(exchange(pp, V2_TCP6 + REQ % b"/deny"))[:1]
    out["untrusted"] = status_body(exchange(ports["UNTRUSTED"], V2_TCP4 + REQ % b"/"))
    out["no listen option"] = status_body(exchange(ports["PLAIN"], REQ % b"/"))
    # keepalive: the header comes once, then requests follow
    two = exchange(pp, b"PROXY TCP4 192.0.2.9 192.0.2.2 1 2\r\n" +
                   b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    out["keepalive"] = two.count(b"192.0.2.9|1|192.0.2.2|2")
    for k, v in out.items():
        if k.endswith(" realip") and v:
            out[k] = (v[0], mask_port(v[1]))
    return out


def test_proxy_protocol_as_nginx(portvakt, nginx):
    got = answers(portvakt)
    want = answers(nginx)
    for k in want:
        assert got[k] == want[k], k
    # and the cases mean what they say
    assert got["v1 tcp4"] == (200, "127.0.0.1|192.0.2.1|123|192.0.2.2|5678")
    assert got["v2 tcp6"] == (200, "127.0.0.1|2001:db8::1|123|2001:db8::2|5678")
    assert got["v2 local"] == (200, "127.0.0.1||||")
    assert got["v1 tcp4 realip"] == (200, "192.0.2.1|123|127.0.0.1|192.0.2.1")
    assert got["v2 tcp6 realip"] == (200, "2001:db8::1|123|127.0.0.1|2001:db8::1")
    assert got["v1 unknown realip"][1].startswith("127.0.0.1|PORT|127.0.0.1|")
    assert got["deny"][0] == 403 and got["deny other"][0] == 404
    assert got["untrusted"] == (200, "127.0.0.1")
    assert got["no listen option"] == (200, "[127.0.0.1||||]")
    assert got["keepalive"] == 2
    for name, _ in BROKEN:
        assert got[name] is None, name


def test_broken_header_logged(portvakt):
    port = free_port()
    gw = portvakt("http { server { listen 127.0.0.1:@P@ proxy_protocol; location / { return 200; } } }\n",
                  P=port)
    assert exchange(port, b"GET / HTTP/1.0\r\n\r\n") == b""
    assert exchange(port, SIG + struct.pack("!BBH", 0x31, 0x11, 0)) == b""
    wait_for(lambda: "unknown PROXY protocol version: 3" in gw.stderr(), what="the version logged")
    err = gw.stderr()
    assert 'broken header: "GET / HTTP/1.0" while reading PROXY protocol, client: 127.0.0.1' in err


def test_header_in_pieces(portvakt):
    """A header that comes in several segments is waited for (NGINX 1.22
    takes only what its first read brought)."""
    port = free_port()
    portvakt("http { server { listen 127.0.0.1:@P@ proxy_protocol; "
             "location / { return 200 \"$proxy_protocol_addr:$proxy_protocol_port\\n\"; } } }\n", P=port)
    for h in (b"PROXY TCP4 192.0.2.7 192.0.2.2 4 5\r\n", V2_TCP6):
        with socket.create_connection((LOOPBACK, port), timeout=5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(0, len(h), 7):
                s.sendall(h[i:i + 7])
                time.sleep(0.02)
            s.sendall(REQ % b"/")
            out = b""
            while (b := s.recv(4096)):
                out += b
        assert out.startswith(b"HTTP/1.1 200")
        assert out.endswith(b"192.0.2.7:4\n" if h[0] == ord("P") else b"2001:db8::1:123\n")


def test_config(tmp_path):
    conf = tmp_path / "p.conf"
    conf.write_text("http { real_ip_header proxy_protocol; server { listen 127.0.0.1:1 proxy_protocol; } }\n")
    r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


TLS_CONF = """
http {
    access_log off;
    server {
        listen 127.0.0.1:@TLS@ ssl proxy_protocol;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "$scheme|$proxy_protocol_addr|$proxy_protocol_port|$ssl_protocol\\n"; }
    }
    server {
        listen 127.0.0.1:@H2@ http2 proxy_protocol;
        location / { return 200 "$server_protocol|$proxy_protocol_addr\\n"; }
    }
    server {
        listen 127.0.0.1:@H2TLS@ ssl http2 proxy_protocol;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        location / { return 200 "$server_protocol|$scheme|$proxy_protocol_addr\\n"; }
    }
}
"""


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "5", "--haproxy-protocol"] + list(args),
                       capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip()


def tls_answers(start, pki, cert):
    ports = {k: free_port() for k in ("TLS", "H2", "H2TLS")}
    start(TLS_CONF, CERT=cert[0], KEY=cert[1], **ports)
    ca = ["--cacert", pki.ca[0], "--resolve", "localhost:%d:127.0.0.1" % ports["TLS"],
          "--resolve", "localhost:%d:127.0.0.1" % ports["H2TLS"]]
    tls = curl(*ca, "https://localhost:%d/" % ports["TLS"]).split("|")
    tls[2] = "PORT" if tls[2].isdigit() else tls[2]
    out = {
        "tls": "|".join(tls),
        "h2c": curl("--http2-prior-knowledge", "http://127.0.0.1:%d/" % ports["H2"]),
        "h2 tls": curl(*ca, "--http2", "https://localhost:%d/" % ports["H2TLS"]),
    }
    # a v2 header, then the TLS handshake on the same connection
    ctx = ssl.create_default_context(cafile=pki.ca[0])
    with socket.create_connection((LOOPBACK, ports["TLS"]), timeout=5) as raw:
        raw.sendall(V2_TCP6)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(REQ % b"/")
            data = b""
            while (b := s.recv(4096)):
                data += b
    out["v2 then tls"] = status_body(data)
    # plain HTTP after the header on the TLS address: NGINX's 400
    out["plain on tls"] = status_body(exchange(ports["TLS"], V2_TCP4 + REQ % b"/"))[0]
    return out


def test_tls_and_h2_after_header(tmp_path, portvakt, nginx):
    pki = Pki(tmp_path / "pki")
    cert = pki.issue("srv", "localhost", sans=("localhost",))
    got = tls_answers(portvakt, pki, cert)
    want = tls_answers(nginx, pki, cert)
    assert got == want
    assert got["tls"] == "https|127.0.0.1|PORT|TLSv1.3"
    assert got["h2c"] == "HTTP/2.0|127.0.0.1"
    assert got["h2 tls"] == "HTTP/2.0|https|127.0.0.1"
    assert got["v2 then tls"] == (200, "https|2001:db8::1|123|TLSv1.3")
    assert got["plain on tls"] == 400
