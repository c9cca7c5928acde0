"""The rewrite module (set, if, rewrite, return, break, rewrite_log,
uninitialized_variable_warn) and regex captures, as NGINX runs them.

Each test states what portvakt must answer; the differential tests run the
same config through NGINX and compare every answer (status, Location with
the ports named, body with the product token named) and what the upstream
received.
"""

import os
import re
import subprocess
import time

import pytest

from conftest import NGINX, PORTVAKT, http

# A chain of `rewrite ... last` through /c0 .. /c11: NGINX allows 10 URI
# changes per request, so /c1 (10 changes) ends at /c11 and /c0 (11) fails.
CHAIN = "\n".join("        location = /c%d { rewrite ^ /c%d last; }" % (i, i + 1)
                  for i in range(11))

CONF = """
http {
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:@GW@;
        set $s1 "srv";
        rewrite ^/old/(.*)$ /new/$1 last;
        if ($arg_srvret) { return 418; }
        location /new/ { return 200 "new uri=$uri s1=$s1 args=$args is_args=$is_args\\n"; }
        location ~ ^/cap/(?<word>[a-z]+)/(\\d+) { return 200 "cap 1=$1 2=$2 word=$word 3=$3\\n"; }
        location /if {
            if ($arg_a = 1) { return 201 "a1\\n"; }
            if ($arg_a != 1) { set $na "not1"; }
            if ($arg_b ~* ^x(\\d)) { return 202 "b $1\\n"; }
            if ($arg_c !~ ^[0-9]+$) { set $c "nondigit"; }
            if ($arg_d !~* ^Y) { set $dd "noY"; }
            if (-d /tmp) { set $d dir; }
            if (!-d /nonexistent) { set $nd nodir; }
            if (-f @FILE@) { set $f file; }
            if (!-f /tmp) { set $nf notfile; }
            if (-e /tmp) { set $e exists; }
            if (!-e /nonexistent) { set $ne gone; }
            if (-x @EXE@) { set $x exec; }
            if (!-x @FILE@) { set $nx noexec; }
            if ($arg_z) { set $z "z=$arg_z"; }
            return 200 "if na=$na c=$c dd=$dd d=$d nd=$nd f=$f nf=$nf e=$e ne=$ne x=$x nx=$nx z=$z\\n";
        }
        location /loop { rewrite ^ /loop last; }
@CHAIN@
        location = /c11 { return 200 "c11\\n"; }
        location /redir { rewrite ^/redir/(.*) /to/$1 redirect; }
        location /perm { rewrite ^ http://ex.test/p permanent; }
        location /impl { rewrite ^ http://ex.test/i?a=1; }
        location /implq { rewrite ^ http://ex.test/i?; }
        location /esc { rewrite ^/esc/(.*)$ /new/x?v=$1 last; }
        location /escr { rewrite ^/escr/(.*)$ http://ex.test/$1 redirect; }
        location /q { rewrite ^ /new/q?x=1; }
        location /drop { rewrite ^ /new/drop? last; }
        location /two { rewrite ^/two/(.*)$ /new/$1; rewrite ^/new/(.*)$ /new/again-$1; }
        location /miss { rewrite ^/nomatch(.*)$ /new/$1 last; return 200 "miss 1=$1\\n"; }
        location /ret1 { return 204; }
        location /ret2 { return 404; }
        location /ret3 { return 301 /elsewhere; }
        location /ret4 { return https://ex.test/abs; }
        location /ret5 { return 200 "text $request_method\\n"; }
        location /ret6 { return 403 "denied\\n"; }
        location /ret7 { return 301; }
        location /ret8 { return 200; }
        location /ret9 { return 307 "/rel?a=$arg_a"; }
        location /ret10 { return 500 "err\\n"; }
        location /ret11 { return 302 ""; }
        location /sethost { set $a "$host-$arg_v"; set $b "[$a]"; return 200 "$b\\n"; }
        location /setargs { set $args "n=1"; return 200 "$args $arg_n\\n"; }
        location /setcase { set $MiXed "v"; return 200 "$mixed\\n"; }
        location /internal-only { internal; return 200 "internal\\n"; }
        location /to-internal { rewrite ^ /internal-only last; }
        location /brk { rewrite ^ /new/brk break; return 200 "not reached\\n"; }
        location /stop { set $v 1; break; set $v 2; }
        location /ifret { if ($arg_x) { set $v x; } return 200 "v=$v\\n"; }
        location /proxy/ {
            rewrite ^/proxy/(.*)$ /up/$1 break;
            proxy_pass http://127.0.0.1:@UP@/base/;
        }
        location /plast/ { rewrite ^/plast/(.*)$ /pnew/$1 last; }
        location /pnew/ { proxy_pass http://127.0.0.1:@UP@/base/; }
        location /pplain { rewrite ^/pplain(.*)$ /rewritten$1; }
        location /rewritten { proxy_pass http://127.0.0.1:@UP@; }
        location /ifproxy {
            if ($arg_x) { proxy_pass http://127.0.0.1:@UP2@; }
            proxy_pass http://127.0.0.1:@UP@;
        }
        location ~ ^/pcap/(?<name>[a-z]+)/(\\d+) {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_set_header X-Cap "$2-$name-$arg_q";
        }
        location /private { auth_request /auth; proxy_pass http://127.0.0.1:@UP@; }
        location = /auth { internal; rewrite ^ /auth2 last; }
        location = /auth2 {
            internal;
            if ($http_x_token = good) { return 204; }
            if ($http_x_token = other) { return 401; }
            return 403;
        }
        location /ifkeep { proxy_pass http://127.0.0.1:@UP@; if ($arg_x) { set $foo bar; } }
        location /ifkept {
            if ($arg_a) { proxy_pass http://127.0.0.1:@UP@; }
            if ($arg_b) { set $foo bar; }
            if ($arg_c) { return 200 "c\\n"; }
        }
        location /ws {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name s2.test;
        if ($arg_mode = brk) { rewrite ^/s/(.*)$ /t/$1 break; }
        if ($arg_mode = last) { rewrite ^/s/(.*)$ /t/$1 last; }
        rewrite ^/s/(.*)$ /u/$1;
        set $after "ran";
        location /t/ { proxy_pass http://127.0.0.1:@UP@/base/; }
        location /u/ { return 200 "u uri=$uri after=$after\\n"; }
        location /s/ { return 200 "s\\n"; }
    }
}
""".replace("@CHAIN@", CHAIN)

# (method, target, headers): every request of the differential
REQUESTS = [
    ("/old/x?y=2", None), ("/cap/abc/42", None), ("/cap/abc/x", None),
    ("/if?a=1", None), ("/if?a=2&b=X7", None), ("/if?c=12&d=yes", None), ("/if?c=12&d=no", None),
    ("/if?c=1a&z=5", None), ("/if", None), ("/loop", None), ("/c1", None), ("/c0", None),
    ("/redir/a?z=1", None), ("/perm?z=1", None), ("/impl?b=2", None), ("/implq?b=2", None),
    ("/esc/a%20b+c", None), ("/esc/plain", None), ("/escr/a%2Fb%20c", None),
    ("/q?o=2", None), ("/drop?o=2", None), ("/two/t", None), ("/miss", None),
    ("/ret1", None), ("/ret2", None), ("/ret3", None), ("/ret4", None), ("/ret5", None),
    ("/ret6", None), ("/ret7", None), ("/ret8", None), ("/ret9?a=1", None), ("/ret10", None),
    ("/ret11", None), ("/sethost?v=9", None), ("/setargs?n=5", None), ("/setcase", None),
    ("/internal-only", None), ("/to-internal", None), ("/ifret?x=1", None),
    ("/ifret", None), ("/x?srvret=1", None), ("/proxy/a/b?q=1", None),
    ("/plast/p%20q?r=1", None), ("/pplain/z?k=v", None), ("/ifproxy?x=1", None),
    ("/ifproxy", None), ("/ifkeep?x=1", None),
    # proxy_if.t's "proxy_pass inside if": a later `if` without proxy_pass
    # keeps the proxy handler, which has no upstream (500)
    ("/ifkept?a=1", None), ("/ifkept?a=1&b=1", None), ("/ifkept?b=1", None), ("/ifkept?a=1&b=1&c=1", None), ("/pcap/abc/7?q=z", None),
    ("/ws", [("Upgrade", "websocket")]), ("/ws", None),
    ("/private", [("X-Token", "good")]), ("/private", [("X-Token", "bad")]),
    ("/private", [("X-Token", "other")]),
    ("s2.test/s/a?mode=brk", None), ("s2.test/s/a?mode=last", None), ("s2.test/s/a", None),
]


def start(factory, upstream, port, tmp_path):
    plain, exe = tmp_path / "plain.txt", tmp_path / "exe.sh"
    for path, mode in ((plain, 0o644), (exe, 0o755)):
        path.write_text("x\n")
        os.chmod(str(path), mode)
    up, up2 = upstream(), upstream()
    gw = factory(CONF, GW=port(), UP=up.port, UP2=up2.port, FILE=str(plain), EXE=str(exe))
    return gw, up, up2


def normalise(text, ports):
    for p, name in ports:
        text = text.replace(":%d" % p, ":" + name)
    return re.sub(r"(nginx|portvakt)(/[0-9.]+)?", "SERVER", text)


def observe(gw, up, up2, target, headers):
    n1, n2 = len(up.requests), len(up2.requests)
    host = "rw.test"
    if not target.startswith("/"):
        host, target = target.split("/", 1)
        target = "/" + target
    r = http(gw.port, "GET", target, headers=headers, host=host)
    ports = [(gw.port, "GW"), (up.port, "UP"), (up2.port, "UP2")]
    seen = {"status": r.status, "location": normalise(r.header("Location") or "", ports)}
    if len(up.requests) > n1 or len(up2.requests) > n2:
        which = "UP" if len(up.requests) > n1 else "UP2"
        got = (up if which == "UP" else up2).last()
        seen["upstream"] = (which, got.target, got.header("Connection"), got.header("Upgrade"),
                            got.header("X-Cap"))
    else:
        seen["body"] = normalise(r.body.decode(errors="replace"), ports)
    return seen


@pytest.fixture
def rw(portvakt, upstream, port, tmp_path):
    return start(portvakt, upstream, port, tmp_path)


def get(rw, target, headers=None):
    return observe(*rw, target, headers)


def test_server_rewrite_last_and_set(rw):
    assert get(rw, "/old/x?y=2") == {"status": 200, "location": "",
                                     "body": "new uri=/new/x s1=srv args=y=2 is_args=?\n"}


def test_location_regex_captures_and_named(rw):
    assert get(rw, "/cap/abc/42")["body"] == "cap 1=abc 2=42 word=abc 3=\n"


@pytest.mark.parametrize("target,want", [
    ("/if?a=1", (201, "a1\n")),
    ("/if?a=2&b=X7", (202, "b 7\n")),
    ("/if?c=12&d=no", (200, "if na=not1 c= dd=noY d=dir nd=nodir f=file nf=notfile e=exists "
                             "ne=gone x=exec nx=noexec z=\n")),
    ("/if?c=1a&z=5", (200, "if na=not1 c=nondigit dd=noY d=dir nd=nodir f=file nf=notfile "
                           "e=exists ne=gone x=exec nx=noexec z=z=5\n")),
])
def test_if_conditions(rw, target, want):
    got = get(rw, target)
    assert (got["status"], got["body"]) == want


def test_rewrite_cycle_limit(rw):
    assert get(rw, "/loop")["status"] == 500
    assert get(rw, "/c1")["body"] == "c11\n"      # 10 changes: allowed
    assert get(rw, "/c0")["status"] == 500        # 11: a cycle


@pytest.mark.parametrize("target,status,location", [
    ("/redir/a?z=1", 302, "http://rw.test:GW/to/a?z=1"),
    ("/perm?z=1", 301, "http://ex.test/p?z=1"),
    ("/impl?b=2", 302, "http://ex.test/i?a=1&b=2"),
    ("/implq?b=2", 302, "http://ex.test/i"),
    ("/ret3", 301, "http://rw.test:GW/elsewhere"),
    ("/ret4", 302, "https://ex.test/abs"),
])
def test_redirects(rw, target, status, location):
    got = get(rw, target)
    assert (got["status"], got["location"]) == (status, location)


@pytest.mark.parametrize("target,body", [
    ("/q?o=2", "new uri=/new/q s1=srv args=x=1&o=2 is_args=?\n"),
    ("/drop?o=2", "new uri=/new/drop s1=srv args= is_args=\n"),
    ("/two/t", "new uri=/new/again-t s1=srv args= is_args=\n"),
    ("/miss", "miss 1=\n"),
    ("/esc/plain", "new uri=/new/x s1=srv args=v=plain is_args=?\n"),
    ("/esc/a%20b+c", "new uri=/new/x s1=srv args=v=a%20b%2Bc is_args=?\n"),
    ("/sethost?v=9", "[rw.test-9]\n"),
    ("/setargs?n=5", "n=1 1\n"),
    ("/setcase", "v\n"),
    ("/ifret?x=1", "v=x\n"),
    ("/ifret", "v=\n"),
    ("/to-internal", "internal\n"),
])
def test_rewritten_values(rw, target, body):
    assert get(rw, target)["body"] == body


@pytest.mark.parametrize("target,status", [
    ("/ret1", 204), ("/ret2", 404), ("/ret6", 403), ("/internal-only", 404),
    ("/x?srvret=1", 418), ("/brk", 404),
])
def test_return_codes(rw, target, status):
    assert get(rw, target)["status"] == status


@pytest.mark.parametrize("target,want", [
    ("/proxy/a/b?q=1", ("UP", "/up/a/b?q=1")),        # break: the proxy_pass URI part is dropped
    ("/plast/p%20q?r=1", ("UP", "/base/p%20q?r=1")),  # last: the new location's rules
    ("/pplain/z?k=v", ("UP", "/rewritten/z?k=v")),
    ("/ifproxy?x=1", ("UP2", "/ifproxy?x=1")),        # the if block's proxy_pass
    ("/ifproxy", ("UP", "/ifproxy")),
    ("/ifkeep?x=1", ("UP", "/ifkeep?x=1")),           # the location's, inherited
])
def test_proxied_after_rewrite(rw, target, want):
    assert get(rw, target)["upstream"][:2] == want


@pytest.mark.parametrize("target,want", [
    # server level: break keeps the URI for the location search and drops
    # the proxy_pass URI part; last and no flag look the new URI up
    ("s2.test/s/a?mode=brk", {"upstream": ("UP", "/t/a?mode=brk", "close", None, None)}),
    ("s2.test/s/a?mode=last", {"upstream": ("UP", "/base/a?mode=last", "close", None, None)}),
    ("s2.test/s/a", {"body": "u uri=/u/a after=ran\n"}),
])
def test_server_level_flags(rw, target, want):
    got = get(rw, target)
    got.pop("status"), got.pop("location")
    assert got == want


@pytest.mark.parametrize("token,status", [("good", 200), ("bad", 403), ("other", 401)])
def test_auth_subrequest_runs_the_rewrite_module(rw, token, status):
    assert get(rw, "/private", [("X-Token", token)])["status"] == status


def test_map_connection_upgrade(rw):
    assert get(rw, "/ws", [("Upgrade", "websocket")])["upstream"][2:4] == ("upgrade", "websocket")
    assert get(rw, "/ws")["upstream"][2:4] == ("close", None)


def test_location_captures_in_proxied_headers(rw):
    assert get(rw, "/pcap/abc/7?q=z")["upstream"][4] == "7-abc-z"


def test_same_answers_as_nginx(portvakt, nginx, upstream, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = start(portvakt, upstream, port, tmp_path)
    theirs = start(nginx, upstream, port, tmp_path)
    diffs = []
    for target, headers in REQUESTS:
        a, b = observe(*ours, target, headers), observe(*theirs, target, headers)
        if target == "/brk":
            a.pop("body", None), b.pop("body", None)  # NGINX looks for a file
        if a != b:
            diffs.append((target, a, b))
    assert not diffs, "\n".join("%s\n  portvakt %r\n  nginx    %r" % d for d in diffs)


# ---- -t errors, with NGINX's wording and FILE:LINE ----

def check(tmp_path, body):
    path = tmp_path / "gw.conf"
    path.write_text("http {\n    server {\n        listen 127.0.0.1:1;\n%s\n    }\n}\n" % body)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode(), str(path)


@pytest.mark.parametrize("body,words", [
    ("        rewrite ^(/x /y;", ["pcre2_compile() failed", "missing closing parenthesis"]),
    ("        rewrite ^/x /y lastt;", ['invalid parameter "lastt"']),
    ("        rewrite ^/x \"\";", ["empty replacement"]),
    ("        rewrite ^/x /$nosuch;", ['unknown "nosuch" variable']),
    ("        set x 1;", ['invalid variable name "x"']),
    ("        set $uri 1;", ['the duplicate "uri" variable']),
    ("        set $a $nosuch;", ['unknown "nosuch" variable']),
    ("        if ($a = ) { }", ['invalid condition']),
    ("        if $a { }", ['invalid condition "$a"']),
    ("        if ($nosuch) { }", ['unknown "nosuch" variable']),
    ("        if ($host ~ \"(\") { }", ["pcre2_compile() failed"]),
    ("        if ($host <> 1) { }", ['unexpected "<>" in condition']),
    ("        if (-z /tmp) { }", ['invalid condition "-z"']),
    ("        return 1000;", ['invalid return code "1000"']),
    ("        return /relative;", ['invalid return code "/relative"']),
    ("        location / { if ($host) { proxy_set_header A b; } }",
     ['"proxy_set_header" directive is not allowed here']),
    ("        if ($host) { proxy_pass http://127.0.0.1:1; }",
     ['"proxy_pass" directive is not allowed here']),
    ("        location / { if ($host) { proxy_pass http://127.0.0.1:1/x; } }",
     ['"proxy_pass" cannot have URI part']),
    ("        rewrite_log maybe;", ['invalid value "maybe"']),
])
def test_check_errors(tmp_path, body, words):
    rc, out, path = check(tmp_path, body)
    assert rc == 1, out
    assert "in %s:4" % path in out, out
    for w in words:
        assert w in out, out


def test_variables_declared_later_are_known(tmp_path):
    rc, out, _ = check(tmp_path, "        return 200 \"$late $named\";\n"
                       "        location ~ (?<named>x) { set $late 1; }")
    assert rc == 0, out


def test_uninitialized_variable_warn(portvakt, port, tmp_path):
    conf = """
error_log @LOG@ warn;
http {
    server {
        listen 127.0.0.1:@GW@;
        location /on { return 200 "[$v]"; }
        location /off { uninitialized_variable_warn off; return 200 "[$v]"; }
        location /set { set $v 1; }
    }
}
"""
    log = tmp_path / "err.log"
    gw = portvakt(conf, GW=port(), LOG=str(log))
    assert http(gw.port, "GET", "/off").body == b"[]"
    assert http(gw.port, "GET", "/on").body == b"[]"
    gw.stop()
    text = log.read_text()
    assert text.count('using uninitialized "v" variable') == 1, text


def test_rewrite_log(portvakt, port, tmp_path):
    conf = """
error_log @LOG@ notice;
http {
    server {
        listen 127.0.0.1:@GW@;
        rewrite_log on;
        location /a { rewrite ^/a(.*)$ /b$1?k=1 last; }
        location /b { return 200 "b"; }
    }
}
"""
    log = tmp_path / "err.log"
    gw = portvakt(conf, GW=port(), LOG=str(log))
    assert http(gw.port, "GET", "/a/x").body == b"b"
    gw.stop()
    text = log.read_text()
    assert '"^/a(.*)$" matches "/a/x"' in text, text
    assert 'rewritten data: "/b/x", args: "k=1"' in text, text


CLOSE = """
http {
    log_format st "$request_uri $status";
    server {
        listen 127.0.0.1:@GW@;
        access_log @D@/st.log st;
        location /drop { return 444; }
        location /drop-if { if ($arg_x) { return 444; } return 200 "kept\\n"; }
        location /ok { return 200 "ok\\n"; }
    }
}
"""


def test_return_444_closes_the_connection(portvakt, nginx, port, tmp_path):
    """`return 444`, NGINX's special code: the connection closes with no
    answer at all, and the request is logged with 444; beside NGINX."""
    import socket
    kinds = [("portvakt", portvakt)] + ([("nginx", nginx)] if os.access(NGINX, os.X_OK) else [])
    seen = {}
    for name, factory in kinds:
        d = tmp_path / name
        d.mkdir()
        gw = factory(CLOSE, GW=port(), D=str(d))
        got = []
        for target in ("/drop", "/drop-if?x=1", "/drop-if"):
            with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
                s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if data.count(b"\r\n\r\n") >= 2 and b"ok\n" in data:
                        break
                got.append(data.split(b"\r\n", 1)[0])
        # The client has its answer just before the server logs the request:
        # wait for the line, so the stop does not race the log write.
        deadline = time.time() + 5
        while time.time() < deadline and (d / "st.log").read_text().count("\n") < 4:
            time.sleep(0.02)
        gw.stop()
        log = (d / "st.log").read_text().split("\n")
        seen[name] = (got, [line for line in log if line])
    assert seen["portvakt"][0] == [b"", b"", b"HTTP/1.1 200 OK"]
    assert seen["portvakt"][1][:3] == ["/drop 444", "/drop-if?x=1 444", "/drop-if 200"]
    if "nginx" in seen:
        assert seen["portvakt"] == seen["nginx"]
