"""allow / deny (NGINX's access module), satisfy with the auth checks, and
limit_except, each answer compared with NGINX's on the same config. The
locations proxy: a `return` would answer in the rewrite phase, before
the access phase runs (as in NGINX)."""

import base64
import hashlib
import os

import pytest

from conftest import check_conf, free_port, NGINX, http_from, wait_for

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        allow 127.0.0.2;
        allow 127.0.1.0/24;
        deny 127.0.0.0/16;
        location / { proxy_pass http://127.0.0.1:@UP@; }
        location /open { allow all; proxy_pass http://127.0.0.1:@UP@; }
        location /closed { deny all; proxy_pass http://127.0.0.1:@UP@; }
        location /masked { allow 127.0.0.9/8; deny all; proxy_pass http://127.0.0.1:@UP@; }
        location /v6only { allow ::1; deny all; proxy_pass http://127.0.0.1:@UP@; }
        location /unix { allow unix:; deny all; proxy_pass http://127.0.0.1:@UP@; }
        location /any {
            satisfy any;
            allow 127.0.0.3;
            deny all;
            auth_basic "zone";
            auth_basic_user_file @USERS@;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /all {
            allow 127.0.0.3;
            deny all;
            auth_basic "zone";
            auth_basic_user_file @USERS@;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /nomatch {
            satisfy any;
            allow 127.0.0.3;
            auth_basic "zone";
            auth_basic_user_file @USERS@;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /lmt {
            limit_except GET {
                allow 127.0.0.3;
                deny all;
            }
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /lmtauth {
            limit_except GET POST {
                auth_basic "write";
                auth_basic_user_file @USERS@;
            }
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /lmtproxy {
            limit_except GET { proxy_pass http://127.0.0.1:@UP2@; }
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""

GOOD = "Basic " + base64.b64encode(b"u:pw").decode()
BAD = "Basic " + base64.b64encode(b"u:nope").decode()

# (source address, method, target, Authorization)
CASES = [
    ("127.0.0.2", "GET", "/", None), ("127.0.1.7", "GET", "/", None),
    ("127.0.0.5", "GET", "/", None), ("127.1.0.1", "GET", "/", None),
    ("127.0.0.5", "GET", "/open", None), ("127.0.0.2", "GET", "/closed", None),
    ("127.0.0.5", "GET", "/masked", None), ("127.0.0.2", "GET", "/v6only", None),
    ("127.0.0.2", "GET", "/unix", None),
    ("127.0.0.3", "GET", "/any", None), ("127.0.0.4", "GET", "/any", None),
    ("127.0.0.4", "GET", "/any", GOOD), ("127.0.0.4", "GET", "/any", BAD),
    ("127.0.0.3", "GET", "/all", None), ("127.0.0.3", "GET", "/all", GOOD),
    ("127.0.0.4", "GET", "/all", GOOD),
    ("127.0.0.3", "GET", "/nomatch", None), ("127.0.0.4", "GET", "/nomatch", None),
    ("127.0.0.4", "GET", "/nomatch", GOOD),
    ("127.0.0.4", "GET", "/lmt", None), ("127.0.0.2", "GET", "/lmt", None),
    ("127.0.0.2", "HEAD", "/lmt", None), ("127.0.0.2", "POST", "/lmt", None),
    ("127.0.0.4", "POST", "/lmt", None), ("127.0.0.3", "POST", "/lmt", None),
    ("127.0.0.4", "DELETE", "/lmt", None),
    ("127.0.0.2", "POST", "/lmtauth", None), ("127.0.0.2", "PUT", "/lmtauth", None),
    ("127.0.0.2", "PUT", "/lmtauth", GOOD), ("127.0.0.4", "PUT", "/lmtauth", GOOD),
    ("127.0.0.2", "GET", "/lmtproxy", None), ("127.0.0.2", "POST", "/lmtproxy", None),
]


def start(factory, upstream, port, tmp_path):
    users = tmp_path / "users.htpasswd"
    users.write_text("u:{SHA}%s\n" % base64.b64encode(hashlib.sha1(b"pw").digest()).decode())
    up, up2 = upstream(), upstream()
    gw = factory(CONF, GW=port(), UP=up.port, UP2=up2.port, USERS=str(users))
    return gw, up, up2


def observe(gw, up, up2, case):
    src, method, target, auth = case
    n1, n2 = len(up.requests), len(up2.requests)
    headers = [("Authorization", auth)] if auth else None
    body = b"x" if method in ("POST", "PUT") else None
    r = http_from(src, gw.port, method, target, headers=headers, body=body)
    seen = {"status": r.status, "www": r.header("WWW-Authenticate")}
    if len(up.requests) > n1:
        seen["up"] = "UP"
    elif len(up2.requests) > n2:
        seen["up"] = "UP2"
    elif method != "HEAD" and r.status == 200:
        seen["body"] = r.body
    return seen


@pytest.fixture
def acc(portvakt, upstream, port, tmp_path):
    return start(portvakt, upstream, port, tmp_path)


@pytest.mark.parametrize("case,want", [
    (("127.0.0.2", "GET", "/", None), 200),
    (("127.0.0.5", "GET", "/", None), 403),
    (("127.1.0.1", "GET", "/", None), 200),      # no rule matches: allowed
    (("127.0.0.2", "GET", "/closed", None), 403),
    (("127.0.0.5", "GET", "/masked", None), 200),  # 127.0.0.9/8 is 127.0.0.0/8
    (("127.0.0.3", "GET", "/any", None), 200),
    (("127.0.0.4", "GET", "/any", None), 401),     # 401 wins over the rule's 403
    (("127.0.0.4", "GET", "/any", GOOD), 200),
    (("127.0.0.3", "GET", "/all", None), 401),
    (("127.0.0.4", "GET", "/all", GOOD), 403),
    (("127.0.0.4", "GET", "/lmt", None), 403),    # the server's rules, inherited
    (("127.0.0.2", "GET", "/lmt", None), 200),
    (("127.0.0.2", "POST", "/lmt", None), 403),   # the block's own rules replace them
    (("127.0.0.3", "POST", "/lmt", None), 200),
    (("127.0.0.2", "PUT", "/lmtauth", None), 401),
    (("127.0.0.2", "PUT", "/lmtauth", GOOD), 200),
])
def test_rules(acc, case, want):
    assert observe(*acc, case)["status"] == want


def test_limit_except_proxy_pass_of_its_own(acc):
    assert observe(*acc, ("127.0.0.2", "GET", "/lmtproxy", None))["up"] == "UP"
    assert observe(*acc, ("127.0.0.2", "POST", "/lmtproxy", None))["up"] == "UP2"


def test_deny_logged(acc):
    gw = acc[0]
    observe(*acc, ("127.0.0.5", "GET", "/", None))
    # the log writer thread writes the line after the answer went out
    wait_for(lambda: "access forbidden by rule, client: 127.0.0.5" in gw.stderr(), what="the log line")


def test_same_answers_as_nginx(portvakt, nginx, upstream, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours = start(portvakt, upstream, port, tmp_path)
    theirs = start(nginx, upstream, port, tmp_path)
    diffs = []
    for case in CASES:
        a, b = observe(*ours, case), observe(*theirs, case)
        if a != b:
            diffs.append((case, a, b))
    assert not diffs, "\n".join("%r\n  portvakt %r\n  nginx    %r" % d for d in diffs)


def check(tmp_path, body):
    path = tmp_path / "gw.conf"
    # NGINX binds even under -t: a free port, not a privileged one
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n  listen 127.0.0.1:%d;\n%s\n }\n}\n"
                    % (tmp_path, free_port(), body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("allow 1.2.3.4/33;", 'invalid parameter "1.2.3.4/33"'),
    ("allow foo;", 'invalid parameter "foo"'),
    ("deny ::1/129;", 'invalid parameter "::1/129"'),
    ("allow unix:/x;", 'invalid parameter "unix:/x"'),
    ("deny all 1;", 'invalid number of arguments in "deny" directive'),
    ("location / { limit_except FOO { deny all; } }", 'invalid method "FOO"'),
    ("location / { limit_except { deny all; } }", 'invalid number of arguments in "limit_except"'),
    ("location / { limit_except GET { } limit_except POST { } }",
     '"limit_except" directive is duplicate'),
    ("limit_except GET { }", '"limit_except" directive is not allowed here'),
    ("location / { limit_except GET { return 200; } }", '"return" directive is not allowed here'),
    ("location / { limit_except GET { satisfy any; } }", '"satisfy" directive is not allowed here'),
    ("location / { limit_except GET { proxy_pass http://127.0.0.1:1/x; } }",
     '"proxy_pass" cannot have URI part'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


def test_low_bits_warning_as_nginx(tmp_path):
    for name, (rc, text) in check(tmp_path, "allow 10.0.0.1/8; allow unix:; deny all;").items():
        assert rc == 0, (name, text)
        assert "low address bits of 10.0.0.1/8 are meaningless" in text, (name, text)
