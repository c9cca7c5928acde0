"""Data residency: the load-time check of every route out of a scope (a
table of configs with the exact error or acceptance), the refused reload,
the run-time 403 of a proxy_pass with variables, anonymised client
addresses in the access log, the map (`portvakt residency`) and the
connect round-trip check (`portvakt doctor --residency`, with delays
injected through the fault build's PV_FAULT_RTT_MS, as tc netem needs
root)."""

import json
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import (PORTVAKT, ROOT, EchoUpstream, Gateway, Reply, free_port, http, http_from,
                      wait_for)

pytestmark = pytest.mark.portvakt_only

FAULT = os.path.join(ROOT, "build", "fault", "portvakt")

# Lines 1-9; a case's body starts at line 10.
HEAD = """http {
    gateway_jurisdiction NO;
    upstream no { server 127.0.0.1:9001 jurisdiction=NO; }
    upstream se { server 127.0.0.1:9002 jurisdiction=SE; }
    upstream us { server 127.0.0.1:9003 jurisdiction=US; }
    upstream undeclared { server 127.0.0.1:9004; }
    upstream mixed { jurisdiction NO; server 127.0.0.1:9001; server 127.0.0.1:9003 jurisdiction=US backup; }
    server {
        listen 127.0.0.1:8080;
"""
TAIL = "    }\n}\n"

US_NOT_IN_NO = ('"residency NO" does not allow server 127.0.0.1:9003 of upstream "us" (US in {f}:5): '
                'US is not in NO; route: ')
UNDECLARED = ("the server declares no jurisdiction (jurisdiction=CC on its line, or jurisdiction in "
              "its upstream block)")

# (id, body from line 10, expected "[emerg]" message or None for acceptance)
CASES = [
    ("allowed", """        residency NO;
        location / { proxy_pass http://no; }""", None),
    ("proxy_pass", """        location / { residency NO; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:10) -> proxy_pass http://us ({f}:10) -> server 127.0.0.1:9003; '
     "the scope is in {f}:10"),
    ("undeclared", """        location / { residency NO; proxy_pass http://undeclared; }""",
     '"residency NO" does not allow server 127.0.0.1:9004 of upstream "undeclared" (no jurisdiction '
     "declared in {f}:6): " + UNDECLARED + '; route: location "/" ({f}:10) -> proxy_pass http://undeclared '
     "({f}:10) -> server 127.0.0.1:9004; the scope is in {f}:10"),
    ("backup", """        location / { residency NO; proxy_pass http://mixed; }""",
     '"residency NO" does not allow server 127.0.0.1:9003 of upstream "mixed" (US in {f}:7): US is not in '
     'NO; route: location "/" ({f}:10) -> proxy_pass http://mixed ({f}:10) -> server 127.0.0.1:9003 '
     "(backup); the scope is in {f}:10"),
    ("literal_address", """        location / { residency NO; proxy_pass http://127.0.0.1:9005; }""",
     '"residency NO" does not allow server 127.0.0.1:9005 of upstream "127.0.0.1:9005" (no jurisdiction '
     "declared in {f}:10): " + UNDECLARED + '; route: location "/" ({f}:10) -> proxy_pass '
     "http://127.0.0.1:9005 ({f}:10) -> server 127.0.0.1:9005; the scope is in {f}:10"),
    ("nested_scope_narrows", """        residency EEA;
        location / { proxy_pass http://se; }
        location /x { residency NO; proxy_pass http://se; }""",
     '"residency NO" does not allow server 127.0.0.1:9002 of upstream "se" (SE in {f}:4): SE is not in NO; '
     'route: location "/x" ({f}:12) -> proxy_pass http://se ({f}:12) -> server 127.0.0.1:9002; '
     "the scope is in {f}:12"),
    ("auth_request", """        residency NO;
        location / { auth_request /auth; proxy_pass http://no; }
        location /auth { internal; residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> auth_request "/auth" ({f}:11) -> location "/auth" ({f}:12) '
     "-> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("mirror", """        residency NO;
        location / { mirror /copy; proxy_pass http://no; }
        location /copy { internal; residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> mirror "/copy" ({f}:11) -> location "/copy" ({f}:12) '
     "-> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("mirror_inherited", """        residency NO;
        mirror /copy;
        location / { proxy_pass http://no; }
        location /copy { internal; mirror off; residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:12) -> mirror "/copy" ({f}:11) -> location "/copy" ({f}:13) '
     "-> proxy_pass http://us ({f}:13) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("mirror_second_of_two", """        residency NO;
        location / { mirror /a; mirror /b; proxy_pass http://no; }
        location /a { internal; proxy_pass http://no; }
        location /b { internal; residency off; proxy_pass http://se; }""",
     '"residency NO" does not allow server 127.0.0.1:9002 of upstream "se" (SE in {f}:4): SE is not in NO; '
     'route: location "/" ({f}:11) -> mirror "/b" ({f}:11) -> location "/b" ({f}:13) -> proxy_pass '
     "http://se ({f}:13) -> server 127.0.0.1:9002; the scope is in {f}:10"),
    ("mirror_off_stays", """        mirror /copy;
        location / { residency NO; mirror off; proxy_pass http://no; }
        location /copy { internal; proxy_pass http://us; }""", None),
    ("mirror_within_scope", """        residency NO SE;
        location / { mirror /copy; proxy_pass http://no; }
        location /copy { internal; proxy_pass http://se; }""", None),
    ("error_page_named", """        residency NO;
        location / { error_page 502 @fallback; proxy_pass http://no; }
        location @fallback { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> error_page 502 "@fallback" ({f}:11) -> location "@fallback" '
     "({f}:12) -> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("error_page_uri", """        residency NO;
        location / { error_page 404 /oops; }
        location = /oops { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> error_page 404 "/oops" ({f}:11) -> location "/oops" ({f}:12) '
     "-> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("try_files", """        residency NO;
        location / { try_files $uri /fallback/; }
        location /fallback/ { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> try_files "/fallback/" ({f}:11) -> location "/fallback/" '
     "({f}:12) -> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("rewrite_last", """        residency NO;
        location /a { rewrite ^ /b last; }
        location /b { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/a" ({f}:11) -> rewrite "^" "/b" last ({f}:11) -> location "/b" ({f}:12) '
     "-> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("rewrite_regex_unknown", """        residency NO;
        location /a { rewrite ^/a(.*)$ /c$1 last; }
        location /b { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/a" ({f}:11) -> rewrite "^/a(.*)$" "(with captures or variables)" last '
     '({f}:11), known only at run time: any location -> location "/b" ({f}:12) -> proxy_pass http://us '
     "({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("rewrite_break_stays", """        residency NO;
        location /a { rewrite ^/a(.*)$ /c$1 break; proxy_pass http://no; }
        location /b { residency off; proxy_pass http://us; }""", None),
    ("server_rewrite_makes_target_unknown", """        residency NO;
        rewrite ^/oops$ /b;
        location / { error_page 404 /oops; }
        location = /oops { proxy_pass http://no; }
        location /b { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:12) -> error_page 404 "/oops" ({f}:12), then the server\'s rewrite '
     '({f}:11) may change it, known only at run time: any location -> location "/b" ({f}:14) -> '
     "proxy_pass http://us ({f}:14) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("if_block", """        residency NO;
        location /a { if ($arg_x) { proxy_pass http://us; } proxy_pass http://no; }""",
     US_NOT_IN_NO + 'location "/a" ({f}:11) -> if ({f}:11) -> block in location "/a" ({f}:11) -> '
     "proxy_pass http://us ({f}:11) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("index_into_regex", """        residency NO;
        location / { root /nonexistent; }
        location ~ \\.php$ { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> index of location "/" ({f}:11) (a regex location may match '
     'the index file\'s URI) -> location "\\.php$" ({f}:12) -> proxy_pass http://us ({f}:12) -> server '
     "127.0.0.1:9003; the scope is in {f}:10"),
    ("add_before_body", """        residency NO;
        location / { add_before_body /head; proxy_pass http://no; }
        location /head { residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:11) -> add_before_body "/head" ({f}:11) -> location "/head" ({f}:12) '
     "-> proxy_pass http://us ({f}:12) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("add_after_body_inherited", """        residency NO;
        add_after_body /foot;
        location / { root /nonexistent; index none; }
        location /foot { add_after_body ""; residency off; proxy_pass http://us; }""",
     US_NOT_IN_NO + 'location "/" ({f}:12) -> add_after_body "/foot" ({f}:11) -> location "/foot" ({f}:13) '
     "-> proxy_pass http://us ({f}:13) -> server 127.0.0.1:9003; the scope is in {f}:10"),
    ("add_before_body_within_scope", """        residency NO SE;
        location / { add_before_body /head; proxy_pass http://no; }
        location /head { proxy_pass http://se; }""", None),
    ("off_lifts", """        residency NO;
        location / { proxy_pass http://no; }
        location /public { residency off; proxy_pass http://us; }""", None),
    ("groups", """        residency EEA;
        location / { proxy_pass http://se; }
        location /eu { residency EU NO; proxy_pass http://se; }
        location /m { residency EU NO; proxy_pass http://mixed; }""",
     '"residency EU NO" does not allow server 127.0.0.1:9003 of upstream "mixed" (US in {f}:7): US is not in '
     'EU NO; route: location "/m" ({f}:13) -> proxy_pass http://mixed ({f}:13) -> server 127.0.0.1:9003 '
     "(backup); the scope is in {f}:13"),
    ("unknown_group", """        residency NO NORDIC;
        location / { proxy_pass http://se; }""",
     'unknown jurisdiction or group "NORDIC" in "residency": not an ISO 3166-1 alpha-2 code, a '
     "residency_group or a built-in group (EEA, EU) in {f}:10"),
    ("not_iso", """        residency XX;
        location / { proxy_pass http://se; }""",
     'unknown jurisdiction or group "XX" in "residency": not an ISO 3166-1 alpha-2 code, a '
     "residency_group or a built-in group (EEA, EU) in {f}:10"),
    ("gateway_outside_scope", """        residency SE;
        location / { proxy_pass http://se; }""",
     '"residency SE" does not include the gateway\'s own jurisdiction NO (gateway_jurisdiction in {f}:2): '
     "the request is already there in {f}:10"),
    ("variables_need_targets", """        residency NO;
        location / { proxy_pass http://$arg_u; }""",
     '"proxy_pass" with variables in a residency scope needs "residency_targets": its target is known '
     'only at run time; the scope is "residency NO" ({f}:10) in {f}:11'),
    ("targets_checked", """        residency NO;
        location / { residency_targets no se; proxy_pass http://$arg_u; }""",
     '"residency NO" does not allow server 127.0.0.1:9002 of upstream "se" (SE in {f}:4): SE is not in NO; '
     'route: location "/" ({f}:11) -> proxy_pass http://$arg_u ({f}:11) limited by residency_targets '
     '({f}:11) to "se" -> server 127.0.0.1:9002; the scope is in {f}:10'),
    ("targets_allowed", """        residency NO SE;
        location / { residency_targets no se; proxy_pass http://$arg_u; }""", None),
    ("targets_unknown_upstream", """        location / { residency_targets nowhere; proxy_pass http://$arg_u; }""",
     'unknown upstream "nowhere" in "residency_targets" in {f}:10'),
    ("variables_outside_scope", """        location / { proxy_pass http://$arg_u; }""", None),
    ("require_tls", """        residency NO;
        location / { proxy_pass http://no; }
    }
    residency_require_tls on;
    server {
        listen 127.0.0.1:8081;""",
     'residency_require_tls: server 127.0.0.1:9001 of upstream "no" ({f}:3) is reached without TLS outside '
     'trusted_network; route: location "/" ({f}:11) -> proxy_pass http://no ({f}:11) -> server '
     "127.0.0.1:9001; the scope is in {f}:10"),
    ("require_tls_trusted", """        residency NO;
        location / { proxy_pass http://no; }
    }
    residency_require_tls on;
    trusted_network 127.0.0.0/8;
    server {
        listen 127.0.0.1:8081;""", None),
]

DIRECTIVE_ERRORS = [
    ("server 127.0.0.1:1 jurisdiction=XX;",
     'invalid jurisdiction "XX" in "server": not an ISO 3166-1 alpha-2 code'),
    ("server 127.0.0.1:1 jurisdiction=no;",
     'invalid jurisdiction "no" in "server": not an ISO 3166-1 alpha-2 code'),
    ("server 127.0.0.1:1; jurisdiction NO; jurisdiction SE;", '"jurisdiction" directive is duplicate'),
]


def run_t(path):
    p = subprocess.run([PORTVAKT, "-t", "-c", path], capture_output=True, text=True, timeout=30)
    emerg = [l.split("[emerg] ", 1)[1] for l in p.stderr.splitlines() if "[emerg] " in l]
    return p.returncode, emerg, p.stderr


@pytest.mark.parametrize("body,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_table(tmp_path, body, expected):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(HEAD + body + "\n" + TAIL)
    rc, emerg, err = run_t(path)
    if expected is None:
        assert (rc, emerg) == (0, []), err
    else:
        assert rc == 1, err
        assert emerg == [expected.format(f=path)]


@pytest.mark.parametrize("line,expected", DIRECTIVE_ERRORS)
def test_directive_errors(tmp_path, line, expected):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write("http {\n    upstream u {\n        %s\n    }\n}\n" % line)
    rc, emerg, err = run_t(path)
    assert (rc, emerg) == (1, [expected + " in %s:3" % path]), err


def test_http_level_directive_errors(tmp_path):
    cases = [
        ("gateway_jurisdiction EU;", 'invalid jurisdiction "EU" in "gateway_jurisdiction": not an ISO 3166-1 '
                                     "alpha-2 code"),
        ("residency_group NO SE;", 'invalid residency_group name "NO": it is a code'),
        ("residency_group N SE; residency_group N DK;", 'duplicate residency_group "N"'),
        ("trusted_network 10.0.0.0/33;", 'invalid network "10.0.0.0/33" in "trusted_network"'),
        ("residency_log_addr some;", 'invalid value "some" in "residency_log_addr", it must be "anon" or "full"'),
        ("residency off NO;", '"residency off" takes no other argument'),
        ("residency_require_tls maybe;",
         'invalid value "maybe" in "residency_require_tls" directive, it must be "on" or "off"'),
    ]
    for line, expected in cases:
        path = str(tmp_path / "gw.conf")
        with open(path, "w") as f:
            f.write("http {\n    %s\n}\n" % line)
        rc, emerg, err = run_t(path)
        assert (rc, emerg) == (1, [expected + " in %s:2" % path]), (line, err)


def test_user_group_overrides_builtin(tmp_path):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(HEAD.replace("    gateway_jurisdiction NO;\n", "    gateway_jurisdiction NO;\n"
                             "    residency_group EEA NO;\n", 1) +
                "        residency EEA;\n        location / { proxy_pass http://se; }\n" + TAIL)
    rc, emerg, err = run_t(path)
    assert rc == 1
    assert emerg[0].startswith('"residency EEA" does not allow server 127.0.0.1:9002 of upstream "se"'
                               ' (SE in %s:5): SE is not in EEA;' % path)


def test_includes_name_each_file(tmp_path):
    """The scope, the route and the server are in three files."""
    (tmp_path / "upstreams.conf").write_text(
        "upstream abroad {\n    server 127.0.0.1:9003 jurisdiction=US;\n}\n")
    (tmp_path / "fallback.conf").write_text(
        "location @fallback {\n    residency off;\n    proxy_pass http://abroad;\n}\n")
    main = tmp_path / "gw.conf"
    main.write_text("http {\n    gateway_jurisdiction NO;\n    include upstreams.conf;\n"
                    "    upstream home { server 127.0.0.1:9001 jurisdiction=NO; }\n"
                    "    server {\n        listen 127.0.0.1:8080;\n        residency NO;\n"
                    "        location / { error_page 502 @fallback; proxy_pass http://home; }\n"
                    "        include fallback.conf;\n    }\n}\n")
    rc, emerg, err = run_t(str(main))
    d = str(tmp_path)
    assert rc == 1
    assert emerg == [
        '"residency NO" does not allow server 127.0.0.1:9003 of upstream "abroad" (US in %s/upstreams.conf:2): '
        'US is not in NO; route: location "/" (%s/gw.conf:8) -> error_page 502 "@fallback" (%s/gw.conf:8) -> '
        'location "@fallback" (%s/fallback.conf:1) -> proxy_pass http://abroad (%s/fallback.conf:3) -> '
        "server 127.0.0.1:9003; the scope is in %s/gw.conf:7" % (d, d, d, d, d, d)]


def test_unencrypted_hop_is_a_warning(tmp_path):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(HEAD + "        residency NO;\n        location / { proxy_pass http://no; }\n" + TAIL)
    rc, emerg, err = run_t(path)
    assert rc == 0
    assert ('[warn] ' in err and 'residency: server 127.0.0.1:9001 of upstream "no" (%s:3) is reached without '
            "TLS outside trusted_network by proxy_pass in %s:11" % (path, path) in err)
    with open(path, "w") as f:
        f.write(HEAD.replace("    gateway_jurisdiction NO;\n",
                             "    gateway_jurisdiction NO;\n    trusted_network 127.0.0.0/8;\n") +
                "        residency NO;\n        location / { proxy_pass http://no; }\n" + TAIL)
    rc, emerg, err = run_t(path)
    assert rc == 0 and "[warn]" not in err, err


def test_every_address_of_a_line_has_its_jurisdiction(tmp_path):
    """A name resolving to several addresses (localhost: 127.0.0.1 and
    ::1 where the host has it) gives each the line's jurisdiction."""
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write("http {\n    gateway_jurisdiction NO;\n    upstream h { server localhost:9001 jurisdiction=NO; }\n"
                "    server {\n        listen 127.0.0.1:8080;\n        residency NO;\n"
                "        location / { proxy_pass http://h; }\n    }\n}\n")
    rc, emerg, err = run_t(path)
    assert (rc, emerg) == (0, []), err
    out = subprocess.run([PORTVAKT, "residency", "-c", path, "--json"], capture_output=True, text=True,
                         timeout=30)
    reaches = json.loads(out.stdout)["reaches"]
    assert reaches and {r["jurisdiction"] for r in reaches} == {"NO"}
    assert "127.0.0.1:9001" in {r["server"] for r in reaches}


RUN_CONF = """http {
    gateway_jurisdiction NO;
    trusted_network 127.0.0.0/8;
    log_format addr "$remote_addr $realip_remote_addr $status $uri";
    access_log /dev/stdout addr;
    upstream home { server 127.0.0.1:@HOME@ jurisdiction=NO; }
    upstream away { server 127.0.0.1:@AWAY@ jurisdiction=US; }
    upstream dead { server 127.0.0.1:@DEAD@ jurisdiction=NO; }
    server {
        listen 127.0.0.1:@GW@;
        residency NO;
        location /pick { residency_targets home; proxy_pass http://$arg_u; }
        location /full { residency_log_addr full; proxy_pass http://home; }
        location /open { residency off; proxy_pass http://away; }
        location /dead { proxy_pass http://dead; }
    }
}
"""


@pytest.fixture
def run_gw(portvakt):
    home, away = EchoUpstream(), EchoUpstream()
    gw = portvakt(RUN_CONF, GW=free_port(), HOME=home.port, AWAY=away.port, DEAD=free_port())
    yield gw, home, away
    home.stop()
    away.stop()


def test_variable_target_outside_targets_gets_403(run_gw):
    gw, home, away = run_gw
    r = http(gw.port, "GET", "/pick?u=home")
    assert r.status == 200 and len(home.requests) == 1
    r = http(gw.port, "GET", "/pick?u=away")
    assert r.status == 403
    r = http(gw.port, "GET", "/pick?u=nowhere")
    assert r.status == 403
    assert len(away.requests) == 0 and len(home.requests) == 1
    line = wait_for(lambda: [l for l in gw.stderr().splitlines() if 'target "away"' in l], what="403 log line")
    assert ('residency: proxy_pass target "away" is not in residency_targets (%s:12), scope "residency NO" '
            '(%s:11), request refused, client: 127.0.0.0, request: "/pick"' % (gw.conf_path, gw.conf_path)
            in line[0])


def test_variable_target_in_scope_is_never_an_address(run_gw):
    """In a scope the value must name a residency_targets upstream: the
    address of that very upstream's server, or its name with a port, is
    refused, as the path out is then not one the load-time check saw."""
    gw, home, away = run_gw
    for u in ("127.0.0.1:%d" % home.port, "home:%d" % home.port, "http://home"):
        assert http(gw.port, "GET", "/pick?u=" + u).status == 403, u
    assert len(home.requests) == 0 and len(away.requests) == 0
    assert http(gw.port, "GET", "/pick?u=HOME").status == 200 and len(home.requests) == 1


RESOLVE_CONF = """http {
    gateway_jurisdiction NO;
    resolver 127.0.0.1:%d;
    upstream svc { server localhost:9001 resolve %s; }
    server {
        listen 127.0.0.1:8080;
        residency NO;
        location / { proxy_pass http://svc; }
    }
}
"""


@pytest.mark.parametrize("params,ok", [("jurisdiction=NO", True), ("jurisdiction=US", False), ("", False)])
def test_resolve_line_keeps_its_jurisdiction(tmp_path, params, ok):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(RESOLVE_CONF % (free_port(), params))
    rc, emerg, err = run_t(path)
    if ok:
        assert (rc, emerg) == (0, []), err
    else:
        assert rc == 1, err
        assert len(emerg) == 1 and emerg[0].startswith(
            '"residency NO" does not allow server localhost:9001 of upstream "svc" (%s in %s:4)'
            % ("US" if params else "no jurisdiction declared", path)), emerg


def test_access_log_anonymises_in_scope(run_gw):
    gw, home, away = run_gw
    assert http_from("127.0.0.77", gw.port, "GET", "/pick?u=home").status == 200
    assert http_from("127.0.0.77", gw.port, "GET", "/full").status == 200
    assert http_from("127.0.0.77", gw.port, "GET", "/open").status == 200
    lines = gw.wait_access_log(3)
    assert lines == ["127.0.0.0 127.0.0.0 200 /pick", "127.0.0.77 127.0.0.77 200 /full",
                     "127.0.0.77 127.0.0.77 200 /open"]
    # the upstream still gets the real address where the config sends it
    assert home.requests[0].target == "/pick?u=home"


def test_error_log_anonymises_in_scope(run_gw):
    gw, home, away = run_gw
    assert http_from("127.0.0.77", gw.port, "GET", "/dead").status == 502
    lines = wait_for(lambda: [l for l in gw.stderr().splitlines() if "connect() failed" in l], what="error line")
    # the line ends with the request's id (README, "Logs and traces")
    assert re.search(r"client: 127\.0\.0\.0, request_id: [0-9a-f]{32}$", lines[0]), lines[0]
    assert "127.0.0.77" not in gw.stderr()


# Run-time routes no load-time check sees: an upstream's X-Accel-Redirect,
# an SSI include, and a proxy_pass with variables in a location that lifts
# the scope it was reached from.
PATHS_CONF = """http {
    gateway_jurisdiction NO;
    trusted_network 127.0.0.0/8;
    upstream home { server 127.0.0.1:@HOME@ jurisdiction=NO; }
    upstream sweden { server 127.0.0.1:@SWEDEN@ jurisdiction=SE; }
    upstream away { server 127.0.0.1:@AWAY@ jurisdiction=US; }
    server {
        listen 127.0.0.1:@GW@;
        location = /metrics { portvakt_metrics; }
        location /in/ { residency NO; proxy_pass http://home; }
        location /wide/ { residency NO SE; proxy_pass http://sweden; }
        location /public/ { proxy_pass http://away; }
        location /local/ { proxy_pass http://home; }
        location /ssi/ { residency NO; ssi on; root @ROOT@; }
        location /fb/ { residency NO; error_page 418 = @pick; return 418; }
        location @pick { residency off; residency_targets home; proxy_pass http://$arg_u; }
        location /nt/ { residency NO; error_page 418 = @free; return 418; }
        location @free { residency off; return 200 "free\\n"; }
    }
}
"""


def accel(rcv):
    """home answers /in/go-X with X-Accel-Redirect: /X (the rest of the path)."""
    if rcv.target.startswith("/in/go-"):
        return Reply(headers=[("X-Accel-Redirect", "/" + rcv.target[len("/in/go-"):].replace("~", "/"))],
                     body=b"redirected")
    return Reply(body=b"home " + rcv.target.encode())


@pytest.fixture
def paths_gw(portvakt, tmp_path):
    root = tmp_path / "www"
    (root / "ssi").mkdir(parents=True)
    (root / "ssi" / "out.html").write_text('[<!--# include virtual="/public/x" -->]')
    (root / "ssi" / "ok.html").write_text('[<!--# include virtual="/local/x" -->]')
    home, sweden, away = EchoUpstream(handler=accel), EchoUpstream(), EchoUpstream()
    gw = portvakt(PATHS_CONF, GW=free_port(), HOME=home.port, SWEDEN=sweden.port, AWAY=away.port, ROOT=str(root))
    yield gw, home, sweden, away
    for u in (home, sweden, away):
        u.stop()


def refused_total(gw):
    body = http(gw.port, "GET", "/metrics").body.decode()
    return int(re.search(r"^portvakt_residency_refused_total (\d+)$", body, re.M).group(1))


def test_x_accel_redirect_out_of_the_scope_gets_403(paths_gw):
    gw, home, sweden, away = paths_gw
    assert http(gw.port, "GET", "/public/direct").status == 200  # no scope: served
    assert len(away.requests) == 1
    before = refused_total(gw)
    r = http(gw.port, "GET", "/in/go-public~x")
    assert r.status == 403
    assert len(away.requests) == 1  # never reached
    line = wait_for(lambda: [l for l in gw.stderr().splitlines() if "leaves the request's scope" in l],
                    what="refusal log line")
    assert ('residency: proxy_pass in %s:12 to upstream "away", server 127.0.0.1:%d (US), leaves the '
            'request\'s scope, scope "residency NO" (%s:10), request refused, client: 127.0.0.0, request: '
            '"/public/x"' % (gw.conf_path, away.port, gw.conf_path)) in line[0]
    assert refused_total(gw) == before + 1
    # a redirect to a location whose servers are in the scope goes through
    r = http(gw.port, "GET", "/in/go-local~y")
    assert r.status == 200 and r.body == b"home /local/y"


def test_two_scopes_allow_where_both_allow(paths_gw):
    """A request of "residency NO" redirected into a "residency NO SE"
    location may still go only to NO."""
    gw, home, sweden, away = paths_gw
    assert http(gw.port, "GET", "/wide/direct").status == 200 and len(sweden.requests) == 1
    assert http(gw.port, "GET", "/in/go-wide~x").status == 403
    assert len(sweden.requests) == 1


def test_ssi_include_out_of_the_scope_is_refused(paths_gw):
    gw, home, sweden, away = paths_gw
    r = http(gw.port, "GET", "/ssi/ok.html")
    assert r.status == 200 and r.body == b"[home /local/x]"
    before = refused_total(gw)
    r = http(gw.port, "GET", "/ssi/out.html")
    assert r.status == 200 and b"home" not in r.body
    assert len(away.requests) == 0
    assert refused_total(gw) == before + 1


def test_targets_checked_where_the_scope_is_lifted(paths_gw):
    """@pick lifts the scope but is reached from one: its residency_targets
    hold per request as in the scope, and its other values get 403."""
    gw, home, sweden, away = paths_gw
    r = http(gw.port, "GET", "/fb/x?u=home")
    assert r.status == 200 and r.body == b"home /fb/x?u=home"
    for u in ("away", "127.0.0.1:%d" % away.port):
        assert http(gw.port, "GET", "/fb/x?u=" + u).status == 403, u
    assert len(away.requests) == 0
    line = wait_for(lambda: [l for l in gw.stderr().splitlines() if 'target "away"' in l], what="log line")
    assert ('residency: proxy_pass target "away" is not in residency_targets (%s:16), scope "residency NO" '
            '(%s:15), request refused' % (gw.conf_path, gw.conf_path)) in line[0]
    # a location reached from a scope with no proxy_pass answers as before
    assert http(gw.port, "GET", "/nt/x").body == b"free\n"


def test_start_is_refused(tmp_path):
    """The start runs the check as -t does: the gateway does not come up."""
    gw = free_port()
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(HEAD.replace("127.0.0.1:8080", "127.0.0.1:%d" % gw) +
                "        location / { residency NO; proxy_pass http://us; }\n" + TAIL)
    p = subprocess.run([PORTVAKT, "-c", path, "-g", "daemon off;"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert ("[emerg] " + US_NOT_IN_NO.format(f=path)) in p.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", gw), timeout=1).close()


MOVE_CONF = """http {
    gateway_jurisdiction NO;
    trusted_network 127.0.0.0/8;
    resolver 127.0.0.1:@DNS@ valid=1s;
    upstream home { server 127.0.0.1:@HOME@ jurisdiction=NO; }
    upstream svc { zone svc 64k; server app.test:@UP@ resolve jurisdiction=NO; }
    upstream far { zone far 64k; server far.test:@UP@ resolve jurisdiction=US; }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Up $upstream_addr always;
        location /in/ { residency NO; proxy_pass http://home; }
        location /svc/ { proxy_pass http://svc; }
        location /far/ { proxy_pass http://far; }
    }
}
"""


def test_moved_address_keeps_its_jurisdiction(portvakt):
    """A `resolve` line's addresses, first and later ones, are where its
    jurisdiction= says: a request of a scope that an X-Accel-Redirect
    sends to it goes to each new address, and to the US line's never."""
    from dns_stub import A, DnsStub
    dns = DnsStub()
    port = free_port()
    ups = [EchoUpstream(host="127.0.0.%d" % i, port=port) for i in (1, 2)]
    home = EchoUpstream(handler=accel)
    try:
        dns.set("app.test", (A, "127.0.0.1", 1))
        dns.set("far.test", (A, "127.0.0.1", 1))
        gw = portvakt(MOVE_CONF, GW=free_port(), DNS=dns.port, UP=port, HOME=home.port)
        r = http(gw.port, "GET", "/in/go-svc~a")
        assert r.status == 200 and r.header("X-Up").endswith("127.0.0.1:%d" % port)
        dns.set("app.test", (A, "127.0.0.2", 1))
        wait_for(lambda: http(gw.port, "GET", "/svc/").header("X-Up") == "127.0.0.2:%d" % port, timeout=15,
                 what="the new address")
        r = http(gw.port, "GET", "/in/go-svc~b")
        assert r.status == 200 and r.header("X-Up").endswith("127.0.0.2:%d" % port)
        assert http(gw.port, "GET", "/far/").status == 200  # no scope: served
        n = len(ups[0].requests)
        assert http(gw.port, "GET", "/in/go-far~c").status == 403
        assert len(ups[0].requests) == n
    finally:
        for u in ups + [home]:
            u.stop()
        dns.stop()


def test_refused_reload_keeps_the_old_config(run_gw, tmp_path):
    gw, home, away = run_gw
    good = open(gw.conf_path).read()
    with open(gw.conf_path, "w") as f:
        f.write(good.replace("residency off; proxy_pass http://away;", "proxy_pass http://away;"))
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in gw.stderr(), what="reload refused")
    assert '"residency NO" does not allow server 127.0.0.1:%d of upstream "away"' % away.port in gw.stderr()
    assert http(gw.port, "GET", "/open").status == 200  # the old config: /open is out of the scope
    assert http(gw.port, "GET", "/pick?u=home").status == 200


def test_map_text_json_dot():
    ex = os.path.join(ROOT, "examples", "residency.conf")
    out = subprocess.run([PORTVAKT, "residency", "-c", ex], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "gateway: NO (%s:8)" % ex in out.stdout
    assert 'scope "residency NORDIC" (%s:35)' % ex in out.stdout
    assert ("127.0.0.1:9102 SE backup upstream \"customers_oslo\" (%s:15): SE is in residency_group NORDIC "
            "(%s:10)" % (ex, ex)) in out.stdout
    assert 'lifted: location "/status" (%s:59): residency off (%s:60)' % (ex, ex) in out.stdout
    js = json.loads(subprocess.run([PORTVAKT, "residency", "-c", ex, "--json"], capture_output=True,
                                   text=True, timeout=30).stdout)
    got = {(r["location"], r["server"], r["jurisdiction"]) for r in js["reaches"]}
    assert got == {("/api/customers/", "127.0.0.1:9101", "NO"), ("/api/customers/", "127.0.0.1:9102", "SE"),
                   ("/api/customers/", "127.0.0.1:9103", "NO"), ("/_auth", "127.0.0.1:9103", "NO"),
                   ("/api/catalogue/", "127.0.0.1:9104", "DE")}
    assert all(r["allowed"] for r in js["reaches"])
    assert js["lifted"][0]["location"] == "/status"
    dot = subprocess.run([PORTVAKT, "residency", "-c", ex, "--dot"], capture_output=True, text=True,
                         timeout=30).stdout
    assert dot.startswith("digraph residency {") and dot.rstrip().endswith("}")
    assert 'subgraph "cluster_SE"' in dot and '[label="via location /_auth"]' in dot
    assert dot.count("{") == dot.count("}")


def test_map_of_a_refused_config_is_the_error(tmp_path):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(HEAD + "        location / { residency NO; proxy_pass http://us; }\n" + TAIL)
    out = subprocess.run([PORTVAKT, "residency", "-c", path], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and '"residency NO" does not allow' in out.stderr


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def test_doctor_rtt(tmp_path):
    if not os.access(FAULT, os.X_OK):
        pytest.fail("%s is not built (make fault)" % FAULT, pytrace=False)
    socks = [listener() for _ in range(3)]
    ports = [s.getsockname()[1] for s in socks]
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write("http {\n    gateway_jurisdiction NO;\n"
                "    upstream near { server 127.0.0.1:%d jurisdiction=NO; }\n"
                "    upstream far { server 127.0.0.1:%d jurisdiction=US; }\n"
                "    upstream slow { server 127.0.0.1:%d jurisdiction=NO; }\n"
                "    server { listen 127.0.0.1:8080; location / { proxy_pass http://near; } }\n}\n"
                % tuple(ports))
    env = dict(os.environ, PV_FAULT_RTT_MS="127.0.0.1:%d=60" % ports[2])
    try:
        p = subprocess.run([FAULT, "doctor", "--residency", "-c", path, "--json"], capture_output=True,
                           text=True, timeout=60, env=env)
    finally:
        for s in socks:
            s.close()
    assert p.returncode == 1, p.stderr
    checks = {c["upstream"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["near"]["status"] == "OK"
    assert checks["far"]["status"] == "WARN"
    assert checks["far"]["why"].startswith("connect RTT ")
    assert "is too fast for US from a gateway in NO" in checks["far"]["why"]
    assert checks["far"]["min_ms"] > 20  # NO to US: thousands of km
    assert checks["slow"]["status"] == "WARN" and checks["slow"]["rtt_ms"] >= 60
    assert "is slow for NO from a gateway in NO" in checks["slow"]["why"]


def test_doctor_rtt_measures_resolve_lines(tmp_path):
    """A `resolve` line is measured at the address its name had at load;
    a name with none is a WARN that says so, once per line."""
    sock = listener()
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write("http {\n    gateway_jurisdiction NO;\n    resolver 127.0.0.1:%d;\n"
                "    upstream dyn { zone dyn 64k; server localhost:%d resolve jurisdiction=NO;\n"
                "                   server nosuch.invalid:80 resolve jurisdiction=NO; }\n"
                "    server { listen 127.0.0.1:%d; location / { proxy_pass http://dyn; } }\n}\n"
                % (free_port(), sock.getsockname()[1], free_port()))
    try:
        p = subprocess.run([PORTVAKT, "doctor", "--residency", "-c", path, "--json"], capture_output=True,
                           text=True, timeout=60)
    finally:
        sock.close()
    checks = json.loads(p.stdout)["checks"]
    local = [c for c in checks if c["server"].startswith("localhost:")]
    gone = [c for c in checks if c["server"].startswith("nosuch.invalid:")]
    assert len(local) + len(gone) == len(checks), checks
    # localhost may also name ::1, where nothing listens: 127.0.0.1's slot answers
    assert any(c["status"] == "OK" and c["rtt_ms"] >= 0 for c in local), local
    assert all(c["status"] == "OK" or c["why"].startswith("no handshake completed") for c in local), local
    assert len(gone) == 1 and gone[0]["status"] == "WARN", gone
    assert gone[0]["why"] == "nosuch.invalid resolved to no address: not measured"
    assert p.returncode == 1


def test_doctor_rtt_needs_the_gateway(tmp_path):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write("http {\n    upstream u { server 127.0.0.1:9 jurisdiction=NO; }\n}\n")
    p = subprocess.run([PORTVAKT, "doctor", "--residency", "-c", path], capture_output=True, text=True, timeout=30)
    assert p.returncode == 3 and "needs gateway_jurisdiction" in p.stderr


def test_map_shows_mirror_routes(tmp_path):
    path = str(tmp_path / "gw.conf")
    with open(path, "w") as f:
        f.write(HEAD + """        residency NO SE;
        location / { mirror /copy; proxy_pass http://no; }
        location /copy { internal; proxy_pass http://se; }
""" + TAIL)
    route = ('location "/" ({f}:11) -> mirror "/copy" ({f}:11) -> location "/copy" ({f}:12) -> proxy_pass '
             "http://se ({f}:12) -> server 127.0.0.1:9002").format(f=path)
    text = subprocess.run([PORTVAKT, "residency", "-c", path], capture_output=True, text=True, timeout=30)
    assert text.returncode == 0, text.stderr
    assert "      route: " + route + "\n" in text.stdout
    assert "; a mirror's copy of the request\n      route: " + route in text.stdout
    js = json.loads(subprocess.run([PORTVAKT, "residency", "-c", path, "--json"], capture_output=True,
                                   text=True, timeout=30).stdout)
    got = {(r["location"], r["server"], r["mirror"], r["route"]) for r in js["reaches"]}
    assert ("/", "127.0.0.1:9002", True, route) in got
    assert ("/copy", "127.0.0.1:9002", False) in {g[:3] for g in got}  # /copy in the scope, asked directly
    dot = subprocess.run([PORTVAKT, "residency", "-c", path, "--dot"], capture_output=True, text=True,
                         timeout=30).stdout
    assert '[label="mirror via location /copy"' in dot
