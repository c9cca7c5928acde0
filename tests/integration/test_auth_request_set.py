"""auth_request_set beside NGINX: the URI the auth subrequest sends
upstream (its own, not the client's), values kept across an internal
redirect and replaced by a later location's subrequest, and the
built-ins it may set ($args, whose new value goes upstream, as after
`set $args`)."""

import os

import pytest

from conftest import NGINX, EchoUpstream, Reply, free_port, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location = /t1 {
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            proxy_pass http://127.0.0.1:@GW@/ok;
            add_header X-User $user;
        }
        location = /t2 {
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            error_page 404 = /fallback;
            proxy_intercept_errors on;
            proxy_pass http://127.0.0.1:@GW@/missing;
        }
        location = /fallback { add_header X-User "$user"; return 204; }
        location = /t3 {
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            error_page 404 = /second;
            proxy_intercept_errors on;
            proxy_pass http://127.0.0.1:@GW@/missing;
        }
        location = /second {
            auth_request /auth2;
            auth_request_set $user $upstream_http_x_user;
            add_header X-User "$user";
            proxy_pass http://127.0.0.1:@GW@/ok;
        }
        location = /t4 {
            auth_request /auth;
            auth_request_set $args "set=$upstream_http_x_user";
            proxy_pass http://@UP@;
        }
        location = /t5 { set $args "s=1"; proxy_pass http://@UP@; }
        location = /auth { internal; proxy_pass http://@UP@; }
        location = /auth2 { internal; proxy_pass http://127.0.0.1:@GW@/u2; }
        location = /u2 { add_header X-User "second"; return 204; }
        location = /ok { return 200 "ok\\n"; }
        location = /missing { return 404; }
    }
}
"""

CASES = ["/t1?a=1", "/t2", "/t3", "/t4?orig=1", "/t5?orig=2"]


def answers(start):
    up = EchoUpstream(reply=Reply(204, headers=[("X-User", "first")]))
    try:
        port = free_port()
        start(CONF, GW=port, UP=up.addr)
        out = [(r.status, r.header("x-user")) for r in (http(port, "GET", t) for t in CASES)]
        return out, [(q.method, q.target) for q in up.requests]
    finally:
        up.stop()


def test_auth_request_set(gateway):
    got, seen = answers(gateway)
    assert got == [(200, "first"), (204, "first"), (200, "second"), (204, "first"), (204, "first")]
    # the subrequest's URI goes upstream, not the client's target
    assert ("GET", "/auth") in seen and all(t in ("/auth", "/t4?set=first", "/t5?s=1") for _, t in seen)
    # $args set from the subrequest's answer is what the main request passes on
    assert ("GET", "/t4?set=first") in seen
    # so does `set $args` of the rewrite module
    assert ("GET", "/t5?s=1") in seen


def test_same_as_nginx(portvakt, nginx):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    assert answers(portvakt) == answers(nginx)
