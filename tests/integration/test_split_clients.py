"""split_clients: the same key lands in the same part as with NGINX
(MurmurHash2 over the evaluated source, parts in proportion, `*` for the
rest), and the block's -t errors."""

import os
import subprocess

import pytest

from conftest import NGINX, PORTVAKT, http

CONF = """
http {
    split_clients "${arg_k}salt" $variant {
        0.5%    tiny;
        20%     a;
        33.33%  b;
        *       rest;
    }
    split_clients $arg_k $partial {
        50%     half;
    }
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "$variant|$partial\\n"; }
    }
}
"""

KEYS = ["", "a", "ab", "abc", "abcd", "abcde", "user-1", "user-2", "192.0.2.1", "x" * 37] + \
       ["k%d" % i for i in range(200)]


def answers(gw):
    return [http(gw.port, "GET", "/?k=" + k).body.decode() for k in KEYS]


def test_parts_in_proportion(portvakt, port):
    gw = portvakt(CONF, GW=port())
    got = answers(gw)
    seen = {g.split("|")[0] for g in got}
    assert {"a", "b", "rest"} <= seen
    assert {g.split("|")[1] for g in got} == {"half\n", "\n"}


def test_same_parts_as_nginx(portvakt, nginx, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = answers(portvakt(CONF, GW=port()))
    theirs = answers(nginx(CONF, GW=port()))
    diffs = [(k, a, b) for k, a, b in zip(KEYS, ours, theirs) if a != b]
    assert not diffs, diffs[:10]


@pytest.mark.parametrize("block,words", [
    ("60% a; 50% b;", ["percent total is greater than 100%"]),
    ("0% a;", ['invalid percent value "0%"']),
    ("1.234% a;", ['invalid percent value "1.234%"']),
    ("ten% a;", ['invalid percent value "ten%"']),
    ("50 a;", ['invalid percent value "50"']),
])
def test_config_errors(tmp_path, block, words):
    path = tmp_path / "gw.conf"
    path.write_text("http {\n    split_clients $remote_addr $v { %s }\n"
                    "    server { listen 127.0.0.1:1; }\n}\n" % block)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0
    for w in words:
        assert w in out, out
