"""realip (set_real_ip_from, real_ip_header, real_ip_recursive,
$realip_remote_addr / _port): the client address a trusted proxy
reports, compared with NGINX request by request. Clients connect from
several loopback addresses (127.0.0.2 is "the load balancer")."""

import subprocess

import pytest

from conftest import PORTVAKT, free_port, http_from

pytestmark = pytest.mark.portvakt_only("compares portvakt with NGINX itself")

CONF = """
http {
    access_log off;
    set_real_ip_from 127.0.0.2;
    set_real_ip_from 10.0.0.0/8;
    set_real_ip_from ::1;
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "$remote_addr|$remote_port|$realip_remote_addr|$realip_remote_port\\n"; }
    }
    server {
        listen 127.0.0.1:@XFF@;
        real_ip_header X-Forwarded-For;
        location / { return 200 "$remote_addr|$remote_port|$realip_remote_addr\\n"; }
    }
    server {
        listen 127.0.0.1:@REC@;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        location / { return 200 "$remote_addr|$realip_remote_addr\\n"; }
    }
    server {
        listen 127.0.0.1:@CUSTOM@;
        real_ip_header X-Client;
        location / { return 200 "$remote_addr\\n"; }
    }
    server {
        listen 127.0.0.1:@UNTRUSTED@;
        set_real_ip_from 192.0.2.0/24;
        real_ip_header X-Forwarded-For;
        location / { return 200 "$remote_addr\\n"; }
    }
}
"""

CASES = [
    # (source address, server, headers)
    ("127.0.0.2", "GW", [("X-Real-IP", "203.0.113.7")]),
    ("127.0.0.3", "GW", [("X-Real-IP", "203.0.113.7")]),          # not trusted: unchanged
    ("127.0.0.2", "GW", [("X-Real-IP", "bogus")]),                 # not an address: unchanged
    ("127.0.0.2", "GW", [("X-Real-IP", "203.0.113.7:4242")]),      # with a port
    ("127.0.0.2", "GW", [("X-Real-IP", "2001:db8::5")]),
    ("127.0.0.2", "GW", [("X-Real-IP", "[2001:db8::5]:99")]),
    ("127.0.0.2", "GW", []),
    ("127.0.0.2", "XFF", [("X-Forwarded-For", "198.51.100.1, 10.1.1.1, 203.0.113.9")]),
    ("127.0.0.2", "XFF", [("X-Forwarded-For", "198.51.100.1,10.1.1.1")]),
    ("127.0.0.2", "REC", [("X-Forwarded-For", "198.51.100.1, 10.1.1.1, 10.2.2.2")]),
    ("127.0.0.2", "REC", [("X-Forwarded-For", "10.1.1.1, 10.2.2.2")]),
    ("127.0.0.2", "REC", [("X-Forwarded-For", "junk, 10.2.2.2")]),
    ("127.0.0.2", "REC", [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.3.3.3")]),
    ("127.0.0.2", "XFF", [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.3.3.3")]),
    ("127.0.0.2", "CUSTOM", [("X-Client", "192.0.2.44")]),
    ("127.0.0.2", "UNTRUSTED", [("X-Forwarded-For", "192.0.2.44")]),
]


def answers(start):
    ports = {k: free_port() for k in ("GW", "XFF", "REC", "CUSTOM", "UNTRUSTED")}
    start(CONF, **ports)
    out = []
    for src, which, headers in CASES:
        r = http_from(src, ports[which], target="/", headers=headers)
        body = r.body.decode().strip()
        # the connection's own port differs run to run
        parts = body.split("|")
        if src.startswith("127.") and len(parts) > 1 and parts[0] == src:
            parts[1] = "PORT"
        if len(parts) > 3:
            parts[3] = "PORT"
        out.append((r.status, "|".join(parts)))
    return out


def test_realip_as_nginx(portvakt, nginx):
    got = answers(portvakt)
    want = answers(nginx)
    for case, a, b in zip(CASES, got, want):
        assert a == b, case
    # and the cases mean what they say
    assert got[0] == (200, "203.0.113.7||127.0.0.2|PORT")
    assert got[1][1].startswith("127.0.0.3|PORT|127.0.0.3")
    assert got[3][1].startswith("203.0.113.7|4242|127.0.0.2")
    assert got[7][1] == "203.0.113.9||127.0.0.2"
    assert got[9][1] == "198.51.100.1|127.0.0.2"


@pytest.mark.parametrize("line,msg", [
    # what is no address or block is a host name to NGINX, which finds none
    ("set_real_ip_from 10.0.0.0/33;", "host not found in set_real_ip_from \"10.0.0.0/33\""),
    ("set_real_ip_from nonsense;", "host not found in set_real_ip_from \"nonsense\""),
    ("real_ip_recursive maybe;", "it must be \"on\" or \"off\""),
])
def test_config_errors(tmp_path, line, msg):
    conf = tmp_path / "p.conf"
    conf.write_text("http { %s server { listen 127.0.0.1:1; } }\n" % line)
    r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode != 0
    assert msg in r.stderr and "p.conf:1" in r.stderr
