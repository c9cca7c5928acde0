"""server_name beyond the choice of a server: the captures a regex name
sets ($1, named groups as variables) and $server_name for every kind of
name, checked on their own and beside NGINX on the same config.
"""

import os

import pytest

from conftest import NGINX, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        server_name localhost;
        location / { return 200 "default [$server_name]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name ~^(?P<name>[a-z]+)\\Q.example.com\\E$;
        location / { return 200 "named [$server_name] [$name] [$1]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name "~^(?<sub>www\\p{N}+)\\.(?<zone>[a-z]+)\\.test$";
        location / { return 200 "unicode [$sub] [$zone] [$2]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name exact.example.com ~^(?<plain>\\w+)\\.example\\.com$;
        location / { return 200 "exact-first [$server_name] [$plain]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name *.wc.example.org;
        location / { return 200 "head [$server_name]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name wc2.example.*;
        location / { return 200 "tail [$server_name]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name .dot.example.org;
        location / { return 200 "dot [$server_name]\\n"; }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name ~^EXAMPLE\\.NET$;
        location / { return 200 "regex [$server_name]\\n"; }
    }
}
"""

CASES = [
    ("blah.example.com", "named [~^(?P<name>[a-z]+)\\Q.example.com\\E$] [blah] [blah]"),
    ("BLAH.EXAMPLE.COM", "named [~^(?P<name>[a-z]+)\\Q.example.com\\E$] [blah] [blah]"),
    ("www01.zone.test", "unicode [www01] [zone] [zone]"),
    # an exact name wins before any regex runs: the regex sets nothing
    ("exact.example.com", "exact-first [exact.example.com] []"),
    ("www.wc.example.org", "head [*.wc.example.org]"),
    ("wc2.example.net", "tail [wc2.example.*]"),
    ("www.dot.example.org", "dot [dot.example.org]"),
    ("dot.example.org", "dot [dot.example.org]"),
    ("example.net", "regex [~^EXAMPLE\\.NET$]"),
    ("other.invalid", "default [localhost]"),
]


@pytest.fixture
def gw(gateway, port):
    return gateway(CONF, GW=port())


@pytest.mark.parametrize("host,want", CASES)
def test_server_name_variables(gw, host, want):
    r = http(gw.port, "GET", "/", host=host)
    assert r.status == 200, r
    assert r.body.decode() == want + "\n", host


def test_same_answers_as_nginx(portvakt, nginx, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, theirs = portvakt(CONF, GW=port()), nginx(CONF, GW=port())
    diffs = []
    for host, _ in CASES:
        a, b = http(ours.port, "GET", "/", host=host), http(theirs.port, "GET", "/", host=host)
        if (a.status, a.body) != (b.status, b.body):
            diffs.append((host, a.status, a.body, b.status, b.body))
    assert not diffs, diffs
