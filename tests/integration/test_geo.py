"""The geo directive (ngx_http_geo_module): networks (IPv4 and IPv6, the
longest prefix wins), default, delete, include, ranges, the client's
address or a variable's, proxy and proxy_recursive with X-Forwarded-For,
each checked on its own and compared with NGINX's answers for the same
config; and the -t errors.
"""

import os
import subprocess

import pytest

from conftest import NGINX, PORTVAKT, http

CONF = """
http {
    geo $arg_a $net {
        default            dflt;
        10.0.0.0/8         ten;
        10.1.0.0/16        ten-one;
        10.1.2.3           host;
        192.0.2.0/24       doc;
        delete 192.0.2.0/24;
        2001:db8::/32      v6doc;
        2001:db8:1::/48    v6sub;
        ::1                v6lo;
        255.255.255.255    bad;
        include            @INC@;
    }
    geo $arg_a $rng {
        ranges;
        default                        rdflt;
        10.0.0.0-10.3.255.255          r-ten;
        10.1.0.10-10.1.0.20            r-in;
        10.1.0.10-10.1.0.20            r-in2;
        10.2.0.0-10.2.0.255            r-del;
        delete 10.2.0.0-10.2.0.255;
        255.255.255.0-255.255.255.254  r-top;
    }
    geo $client {
        default            other;
        127.0.0.1          loopback;
    }
    geo $via {
        proxy              127.0.0.1;
        default            other;
        127.0.0.1          loopback;
        192.0.2.7          reported;
        198.51.100.0/24    proxy-net;
    }
    geo $deep {
        proxy              127.0.0.1;
        proxy              198.51.100.0/24;
        proxy_recursive;
        default            other;
        192.0.2.7          deep;
        198.51.100.1       shallow;
    }
    server {
        listen 127.0.0.1:@GW@;
        location /net { return 200 "$net\\n"; }
        location /rng { return 200 "$rng\\n"; }
        location /client { return 200 "$client\\n"; }
        location /via { return 200 "$via $deep\\n"; }
    }
}
"""

INCLUDED = """
        172.16.0.0/12      private;
"""

CASES = [
    ("/net?a=10.9.9.9", None, "ten"),
    ("/net?a=10.1.9.9", None, "ten-one"),
    ("/net?a=10.1.2.3", None, "host"),
    ("/net?a=192.0.2.1", None, "dflt"),          # deleted
    ("/net?a=172.20.0.1", None, "private"),      # from the include
    ("/net?a=2001:db8::5", None, "v6doc"),
    ("/net?a=2001:db8:1::5", None, "v6sub"),
    ("/net?a=::1", None, "v6lo"),
    ("/net?a=::ffff:10.1.2.3", None, "host"),    # IPv4-mapped: the IPv4 tree
    ("/net?a=junk", None, "bad"),                # no address: 255.255.255.255
    ("/net", None, "bad"),
    ("/net?a=1.2.3.4:80", None, "bad"),
    ("/net?a=8.8.8.8", None, "dflt"),
    ("/rng?a=10.0.0.1", None, "r-ten"),
    ("/rng?a=10.1.0.15", None, "r-in2"),
    ("/rng?a=10.1.0.21", None, "r-ten"),
    ("/rng?a=10.2.0.5", None, "rdflt"),          # deleted: a hole
    ("/rng?a=10.3.255.255", None, "r-ten"),
    ("/rng?a=11.0.0.0", None, "rdflt"),
    ("/rng?a=::1", None, "rdflt"),               # IPv6: 255.255.255.255
    ("/rng?a=255.255.255.254", None, "r-top"),
    ("/rng?a=x", None, "rdflt"),
    ("/client", None, "loopback"),
    ("/via", None, "loopback other"),
    ("/via", "192.0.2.7", "reported deep"),
    ("/via", "192.0.2.7, 198.51.100.1", "proxy-net deep"),
    ("/via", "192.0.2.7, 203.0.113.9", "other other"),
    ("/via", "198.51.100.1", "proxy-net shallow"),
    ("/via", "bogus", "loopback other"),
]


def start(factory, port, tmp_path):
    inc = tmp_path / "geo.inc"
    inc.write_text(INCLUDED)
    return factory(CONF, GW=port(), INC=str(inc))


@pytest.fixture
def gw(portvakt, port, tmp_path):
    return start(portvakt, port, tmp_path)


def get(p, target, xff):
    return http(p, "GET", target, headers=[("X-Forwarded-For", xff)] if xff else None)


@pytest.mark.parametrize("target,xff,want", CASES)
def test_geo_values(gw, target, xff, want):
    r = get(gw.port, target, xff)
    assert r.status == 200, r
    assert r.body.decode() == want + "\n"


def test_same_answers_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = start(portvakt, port, tmp_path)
    theirs = start(nginx, port, tmp_path)
    diffs = []
    for target, xff, _ in CASES:
        a, b = get(ours.port, target, xff), get(theirs.port, target, xff)
        if (a.status, a.body) != (b.status, b.body):
            diffs.append((target, xff, a.status, a.body, b.status, b.body))
    assert not diffs, diffs


def check(tmp_path, text):
    path = tmp_path / "gw.conf"
    path.write_text(text)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode(), str(path)


@pytest.mark.parametrize("block,line,words", [
    ("    geo $a b { }", 2, ['invalid variable name "b"']),
    ("    geo a $b { }", 2, ['invalid variable name "a"']),
    ("    geo $a $uri { }", 2, ['the duplicate "uri" variable']),
    ("    geo $x {\n        a b c;\n    }", 3, ["invalid number of the geo parameters"]),
    ("    geo $x {\n        1.2.3.4/33 a;\n    }", 3, ['invalid network "1.2.3.4/33"']),
    ("    geo $x {\n        default a;\n        ranges;\n    }", 4,
     ['the "ranges" directive must be the first directive inside "geo" block']),
    ("    geo $x {\n        ranges;\n        1.2.3.4 a;\n    }", 4, ['invalid range "1.2.3.4"']),
    ("    geo $x {\n        ranges;\n        1.0.0.5-1.0.0.9 a;\n        1.0.0.1-1.0.0.6 b;\n    }", 5,
     ['range "1.0.0.1-1.0.0.6" overlaps "1.0.0.5-1.0.0.9"']),
    ("    geo $x {\n        255.255.255.255/32 a;\n    }", 3, ['invalid network "255.255.255.255/32"']),
    ("    geo $x {\n        ranges;\n        1.0.0.0-255.255.255.255 a;\n    }", 4,
     ['invalid range "1.0.0.0-255.255.255.255"']),
    ("    geo $x {\n        proxy nowhere;\n    }", 3, ['invalid network "nowhere"']),
    ("    server {\n        geo $x { }\n    }", 3, ['"geo" directive is not allowed here']),
])
def test_check_errors(tmp_path, block, line, words):
    rc, out, path = check(tmp_path, "http {\n%s\n}\n" % block.replace("$a", "$arg_a"))
    assert rc == 1, out
    assert "in %s:%d" % (path, line) in out, out
    for w in words:
        assert w in out, out


def test_warnings(tmp_path):
    rc, out, _ = check(tmp_path, "http {\n    geo $x {\n        10.0.0.1/8 a;\n        10.0.0.0/8 b;\n"
                                 "        delete 11.0.0.0/8;\n    }\n}\n")
    assert rc == 0, out
    assert "low address bits of 10.0.0.1/8 are meaningless" in out
    assert 'duplicate network "10.0.0.0/8", value: "b", old value: "a"' in out
    assert 'no network "11.0.0.0/8" to delete' in out
