"""The map directive (ngx_http_map_module): exact keys, default, hostnames,
regexes with captures, volatile, include and values with variables, each
checked on its own and compared with NGINX's answers for the same config.
"""

import os
import re
import subprocess

import pytest

from conftest import NGINX, PORTVAKT, http

CONF = """
http {
    map $arg_k $exact {
        default      "dflt";
        abc          "exact-abc";
        \\default    "escaped-default";
        ""           "empty";
        ~^re-(?<tail>[a-z]+)-(\\d+)$  "re:$tail:$2:$1";
        ~*^CASE      "caseless";
        include      @INC@;
    }
    map $arg_h $host_kind {
        hostnames;
        default            other;
        example.com        exact;
        *.example.com      head;
        .example.org       dot;
        www.example.*      tail;
        ~^(?<sub>\\w+)\\.re\\.test$  "re-$sub";
    }
    map "$arg_a:$arg_b" $joined { "1:2" "one-two"; default "[$arg_a|$arg_b]"; }
    map $v $cached { default "v=$v"; }
    map $v $fresh { volatile; default "v=$v"; }
    map $arg_n $nodefault { yes "y"; }
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:@GW@;
        location /exact { return 200 "$exact\\n"; }
        location /host { return 200 "$host_kind $sub\\n"; }
        location /joined { return 200 "$joined\\n"; }
        location /volatile {
            set $v 1;
            set $a "$cached|$fresh";
            set $v 2;
            return 200 "$a $cached|$fresh\\n";
        }
        location /nodefault { return 200 "[$nodefault]\\n"; }
        location /setover { set $exact "overridden"; return 200 "$exact\\n"; }
        location /upgrade { return 200 "$connection_upgrade\\n"; }
    }
}
"""

INCLUDED = """
    from-include   "included";
"""

CASES = [
    ("/exact?k=abc", "exact-abc"),
    ("/exact?k=ABC", "exact-abc"),            # exact keys compare case-insensitively
    ("/exact?k=default", "escaped-default"),  # "\\default" is the key "default"
    ("/exact", "empty"),
    ("/exact?k=zzz", "dflt"),
    ("/exact?k=re-ab-12", "re:ab:12:ab"),
    ("/exact?k=casey", "caseless"),
    ("/exact?k=from-include", "included"),
    ("/host?h=example.com", "exact "),
    ("/host?h=example.com.", "exact "),       # a trailing dot is dropped
    ("/host?h=a.b.example.com", "head "),
    ("/host?h=example.org", "dot "),
    ("/host?h=x.example.org", "dot "),
    ("/host?h=www.example.net", "tail "),
    ("/host?h=foo.re.test", "re-foo foo"),
    ("/host?h=elsewhere", "other "),
    ("/joined?a=1&b=2", "one-two"),
    ("/joined?a=3", "[3|]"),
    ("/volatile", "v=1|v=1 v=1|v=2"),         # cached after first use unless volatile
    ("/nodefault?n=no", "[]"),
    ("/nodefault?n=yes", "[y]"),
    ("/setover?k=abc", "overridden"),
    ("/upgrade", "close"),
]


def start(factory, port, tmp_path):
    inc = tmp_path / "map.inc"
    inc.write_text(INCLUDED)
    return factory(CONF, GW=port(), INC=str(inc))


@pytest.fixture
def gw(portvakt, port, tmp_path):
    return start(portvakt, port, tmp_path)


@pytest.mark.parametrize("target,want", CASES)
def test_map_values(gw, target, want):
    r = http(gw.port, "GET", target)
    assert r.status == 200, r
    assert r.body.decode() == want + "\n"


def test_connection_upgrade_pattern(gw):
    r = http(gw.port, "GET", "/upgrade", headers=[("Upgrade", "websocket")])
    assert r.body == b"upgrade\n"


def test_same_answers_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = start(portvakt, port, tmp_path)
    theirs = start(nginx, port, tmp_path)
    diffs = []
    for target, _ in CASES:
        a, b = http(ours.port, "GET", target), http(theirs.port, "GET", target)
        if (a.status, a.body) != (b.status, b.body):
            diffs.append((target, a.status, a.body, b.status, b.body))
    assert not diffs, diffs


def check(tmp_path, text):
    path = tmp_path / "gw.conf"
    path.write_text(text)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode(), str(path)


@pytest.mark.parametrize("block,line,words", [
    ("    map $a b { }", 2, ['invalid variable name "b"']),
    ("    map $a $uri { }", 2, ['the duplicate "uri" variable']),
    ("    map $nosuch $x { }", 2, ['unknown "nosuch" variable']),
    ("    map $a $x {\n        k v w;\n    }", 3, ["invalid number of the map parameters"]),
    ("    map $a $x {\n        default 1;\n        default 2;\n    }", 4,
     ["duplicate default map parameter"]),
    ("    map $a $x {\n        k 1;\n        K 2;\n    }", 4, ['conflicting parameter "K"']),
    ("    map $a $x {\n        ~( 1;\n    }", 3, ["pcre2_compile() failed"]),
    ("    map $a $x {\n        k $nosuch;\n    }", 3, ['unknown "nosuch" variable']),
    ("    map $a $x {\n        hostnames;\n        a*b 1;\n    }", 4,
     ['invalid hostname or wildcard "a*b"']),
    ("    server {\n        map $a $x { }\n    }", 3, ['"map" directive is not allowed here']),
])
def test_check_errors(tmp_path, block, line, words):
    rc, out, path = check(tmp_path, "http {\n%s\n}\n" % block.replace("$a", "$arg_a"))
    assert rc == 1, out
    assert "in %s:%d" % (path, line) in out, out
    for w in words:
        assert w in out, out
