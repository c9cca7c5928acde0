"""The access phase after an internal redirect, as NGINX runs it: the new
location's allow/deny and authentication apply (error_page, try_files
and named locations cannot reach a protected location unchecked), while
limit_req and limit_conn count a request once. Compared with NGINX."""

import base64
import hashlib
import os

import pytest

from conftest import NGINX, http

# `return` runs in the rewrite phase, before access, in NGINX as here: the
# locations serve files, and the redirects come from the content phase.
CONF = """
http {
    limit_req_zone $binary_remote_addr zone=once:1m rate=1r/m;
    server {
        listen 127.0.0.1:@GW@;
        root @ROOT@;
        location = /open { allow all; error_page 404 = /protected; }
        location = /protected {
            auth_basic "inner";
            auth_basic_user_file @USERS@;
        }
        location = /to-denied { allow all; try_files /nothing-here /denied; }
        location = /denied { deny all; }
        location = /to-named { allow all; try_files /nothing-here @named; }
        location @named { deny 127.0.0.0/8; }
        location = /lim { limit_req zone=once; error_page 404 = /lim2; }
        location = /lim2 { limit_req zone=once; }
        location = /outer-auth {
            auth_basic "outer";
            auth_basic_user_file @USERS@;
            error_page 404 = /plain;
        }
        location = /plain { }
    }
}
"""

GOOD = "Basic " + base64.b64encode(b"u:pw").decode()


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    users = tmp_path / ("users-" + request.param)
    users.write_text("u:{SHA}%s\n" % base64.b64encode(hashlib.sha1(b"pw").digest()).decode())
    root = tmp_path / ("root-" + request.param)
    root.mkdir()
    for name in ("protected", "denied", "lim2", "plain"):
        (root / name).write_text(name + "\n")
    return (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), ROOT=str(root),
                                                                USERS=str(users))


def get(gw, target, auth=None):
    r = http(gw.port, "GET", target, headers=[("Authorization", auth)] if auth else None)
    return r.status, r.header("WWW-Authenticate"), r.body if r.status == 200 else None


def test_error_page_into_a_protected_location_asks_for_credentials(gw):
    assert get(gw, "/open") == (401, 'Basic realm="inner"', None)
    assert get(gw, "/open", GOOD) == (200, None, b"protected\n")


def test_try_files_fallback_meets_deny(gw):
    assert get(gw, "/to-denied")[0] == 403
    assert get(gw, "/to-named")[0] == 403


def test_limits_count_a_request_once(gw):
    assert get(gw, "/lim") == (200, None, b"lim2\n")
    assert get(gw, "/lim")[0] == 503


def test_authentication_passed_outside_is_not_asked_again_where_there_is_none(gw):
    assert get(gw, "/outer-auth")[0] == 401
    assert get(gw, "/outer-auth", GOOD) == (200, None, b"plain\n")
