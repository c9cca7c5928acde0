"""auth_request to a location with proxy_cache, beside NGINX: the auth
subrequest is looked up in and stored into the cache as any request, so a
second check is answered from the entry without reaching the auth server
(it sees one request), and the access decision follows the cached answer
(the server would answer otherwise the second time): a cached 200 with its
fields for auth_request_set, a cached 401 (proxy_cache_valid any) with its
WWW-Authenticate. Without proxy_cache_key, the key is made of the URI
the subrequest sends upstream (NGINX's), so every protected URI shares
the entry. The stored entry is whole: a plain request for the same
key gets its body. A chunked answer is stored too; proxy_buffering off
stores nothing, as NGINX stores only what it buffers. A check carrying
the client's Authorization is not cached under a key that does not name
it (a deliberate difference, pinned on both servers)."""

import os

import pytest

from conftest import NGINX, Closed, EchoUpstream, Reply, http

CONF = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=auth:1m;
    server {
        listen 127.0.0.1:@GW@;
        location /p/ {
            auth_request /auth-ok;
            auth_request_set $user $upstream_http_x_user;
            add_header X-User $user always;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-ok {
            internal;
            proxy_pass http://@UP@/ok;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_cache auth;
            proxy_cache_key ok;
            proxy_cache_valid 1m;
        }
        location = /peek {
            proxy_cache auth;
            proxy_cache_key ok;
            add_header X-Cache $upstream_cache_status always;
            proxy_pass http://@UP@/ok;
        }
        location /d/ {
            auth_request /auth-deny;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-deny {
            internal;
            proxy_pass http://@UP@/deny;
            proxy_cache auth;
            proxy_cache_key deny;
            proxy_cache_valid any 1m;
        }
        location /c/ {
            auth_request /auth-chunked;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-chunked {
            internal;
            proxy_pass http://@UP@/chunked;
            proxy_cache auth;
            proxy_cache_key chunked;
            proxy_cache_valid 1m;
        }
        location /u/ {
            auth_request /auth-unbuffered;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-unbuffered {
            internal;
            proxy_pass http://@UP@/unbuffered;
            proxy_buffering off;
            proxy_cache auth;
            proxy_cache_key unbuffered;
            proxy_cache_valid 1m;
        }
        location /s/ {
            auth_request /auth-shared;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-shared {
            internal;
            proxy_pass http://@UP@/shared;
            proxy_cache auth;
            proxy_cache_valid 1m;
        }
        location /in { return 200 "in\\n"; }
    }
}
"""


def handler(q):
    """The auth server: each check is allowed (or refused) the first time
    only; asked again, it answers the other way."""
    first = not any(r.target == q.target for r in handler.seen)
    handler.seen.append(q)
    if q.target == "/ok":
        if first:
            return Reply(200, headers=[("X-User", "alice")], body=b"ok-body\n")
        return Reply(403)
    if q.target == "/deny":
        if first:
            return Reply(401, headers=[("WWW-Authenticate", 'Basic realm="x"')], body=b"no\n")
        return Reply(204)
    if q.target == "/chunked":
        return Reply(200, body=b"chunked-body\n", chunked=True) if first else Reply(403)
    if q.target == "/shared":
        return Reply(200) if first else Reply(403)
    if q.target == "/unbuffered":
        return Reply(200, body=b"u\n") if first else Reply(403)
    return Reply(404)


def observe(start, tmp_path, name):
    handler.seen = []
    up = EchoUpstream(handler=handler)
    try:
        port = __import__("conftest").free_port()
        start(CONF, GW=port, UP=up.addr, CACHE=str(tmp_path / ("cache-" + name)))
        out = []
        for t in ["/p/1", "/p/2", "/d/1", "/d/2", "/c/1", "/c/2", "/u/1", "/u/2", "/s/1", "/s/2?a=1"]:
            r = http(port, "GET", t)
            out.append((t, r.status, r.header("x-user"), r.header("www-authenticate")))
        peek = http(port, "GET", "/peek")
        out.append(("/peek", peek.status, peek.header("x-cache"), peek.body))
        return out, [q.target for q in up.requests]
    finally:
        up.stop()


EXPECTED = [
    ("/p/1", 200, "alice", None),
    ("/p/2", 200, "alice", None),              # the cached 200, its X-User
    ("/d/1", 401, None, 'Basic realm="x"'),
    ("/d/2", 401, None, 'Basic realm="x"'),    # the cached 401, its challenge
    ("/c/1", 200, None, None),
    ("/c/2", 200, None, None),
    ("/u/1", 200, None, None),
    ("/u/2", 403, None, None),                 # nothing stored: asked again
    # the default key is made of the URI sent upstream, the subrequest's:
    # one entry answers every protected URI
    ("/s/1", 200, None, None),
    ("/s/2?a=1", 200, None, None),
    ("/peek", 200, "HIT", b"ok-body\n"),       # the entry the subrequest stored, whole
]
SEEN = ["/ok", "/deny", "/chunked", "/unbuffered", "/unbuffered", "/shared"]


def test_auth_answer_from_cache(portvakt, tmp_path):
    got, seen = observe(portvakt, tmp_path, "pv")
    assert got == EXPECTED
    assert seen == SEEN


def test_same_as_nginx(nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got, seen = observe(nginx, tmp_path, "ng")
    assert got == EXPECTED
    assert seen == SEEN


EDGE = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=auth:1m;
    server {
        listen 127.0.0.1:@GW@;
        location /h/ { auth_request /auth-head; proxy_pass http://127.0.0.1:@GW@/in; }
        location = /auth-head {
            internal;
            proxy_pass http://@UP@/head;
            proxy_cache auth;
            proxy_cache_key head;
            proxy_cache_valid 1m;
        }
        location = /peek-head {
            proxy_cache auth;
            proxy_cache_key head;
            add_header X-Cache $upstream_cache_status always;
            proxy_pass http://@UP@/head;
        }
        location /v/ { auth_request /auth-vary; proxy_pass http://127.0.0.1:@GW@/in; }
        location = /auth-vary {
            internal;
            proxy_pass http://@UP@/vary;
            proxy_cache auth;
            proxy_cache_valid 1m;
        }
        location /e/ { auth_request /auth-error; proxy_pass http://127.0.0.1:@GW@/in; }
        location = /auth-error {
            internal;
            proxy_pass http://@UP@/error;
            proxy_cache auth;
            proxy_cache_valid 502 1m;
        }
        location /a/ { auth_request /auth-cut; proxy_pass http://127.0.0.1:@GW@/in; }
        location = /auth-cut {
            internal;
            proxy_pass http://@UP@/cut;
            proxy_cache auth;
            proxy_cache_valid 1m;
        }
        location /in { return 200 "in\\n"; }
    }
}
"""


def edge_handler(q):
    """Allowed the first time only, as handler(); /error and /cut fail
    the first time (a reset; a body cut short by a close)."""
    first = not any(r.target == q.target for r in edge_handler.seen)
    edge_handler.seen.append(q)
    if q.target == "/head":
        return Reply(200, body=b"head-body\n") if first else Reply(403)
    if q.target == "/vary":
        return Reply(200, headers=[("Vary", "X-Team")], body=b"v\n") if first else Reply(403)
    if q.target == "/error":
        return Reply(reset=True) if first else Reply(200)
    if q.target == "/cut":
        if first:
            return Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close=True)
        return Reply(200, body=b"whole\n")
    return Reply(404)


def observe_edges(start, tmp_path, name):
    edge_handler.seen = []
    up = EchoUpstream(handler=edge_handler)
    try:
        port = __import__("conftest").free_port()
        start(EDGE, GW=port, UP=up.addr, CACHE=str(tmp_path / ("cache-" + name)))
        out = [("HEAD /h/1", http(port, "HEAD", "/h/1").status)]
        peek = http(port, "GET", "/peek-head")
        out.append(("/peek-head", peek.status, peek.header("x-cache"), peek.body))
        for t, team in [("/v/1", "a"), ("/v/2", "a"), ("/v/3", "b")]:
            out.append((t, team, http(port, "GET", t, headers=[("X-Team", team)]).status))
        # a failure's 502 is stored (proxy_cache_valid 502): the auth
        # answer stays 502, which auth_request turns into 500
        out += [(t, http(port, "GET", t).status) for t in ("/e/1", "/e/2")]
        # an answer cut short is not stored (the client gets no answer
        # from NGINX, a 500 from portvakt: not compared)
        try:
            http(port, "GET", "/a/1")
        except Closed:
            pass
        out += [(t, http(port, "GET", t).status) for t in ("/a/2", "/a/3")]
        return out, [q.target for q in edge_handler.seen]
    finally:
        up.stop()


EDGE_EXPECTED = [
    ("HEAD /h/1", 200),
    ("/peek-head", 200, "HIT", b"head-body\n"),  # the subrequest's GET answer, whole
    ("/v/1", "a", 200),
    ("/v/2", "a", 200),                          # its variant, from the entry
    ("/v/3", "b", 403),                          # another variant: asked
    ("/e/1", 500),
    ("/e/2", 500),                               # the stored 502
    ("/a/2", 200),                               # asked again, stored
    ("/a/3", 200),
]
EDGE_SEEN = ["/head", "/vary", "/vary", "/error", "/cut", "/cut"]


def test_auth_cache_edges(portvakt, tmp_path):
    assert observe_edges(portvakt, tmp_path, "pv") == (EDGE_EXPECTED, EDGE_SEEN)


def test_edges_same_as_nginx(nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    assert observe_edges(nginx, tmp_path, "ng") == (EDGE_EXPECTED, EDGE_SEEN)


# ---- credentials: personal answers (a deliberate difference) -------------------------

CREDS = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=auth:1m;
    server {
        listen 127.0.0.1:@GW@;
        location /b/ {
            auth_request /auth-basic;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-basic {
            internal;
            proxy_pass http://@UP@/basic;
            proxy_cache auth;
            proxy_cache_valid 1m;
        }
        location /k/ {
            auth_request /auth-user;
            proxy_pass http://127.0.0.1:@GW@/in;
        }
        location = /auth-user {
            internal;
            proxy_pass http://@UP@/user;
            proxy_cache auth;
            proxy_cache_key $http_authorization;
            proxy_cache_valid 1m;
        }
        location /in { return 200 "in\\n"; }
    }
}
"""
ALICE = [("Authorization", "Basic YWxpY2U6c2VjcmV0")]


def observe_creds(start, tmp_path, name):
    """Statuses for: /b/ with credentials, then twice without (the default
    key); /k/ with credentials, without, and with them again (a key naming
    them); and the auth server's log."""
    up = EchoUpstream(handler=lambda q: Reply(200) if q.header("authorization") else Reply(401))
    try:
        port = __import__("conftest").free_port()
        start(CREDS, GW=port, UP=up.addr, CACHE=str(tmp_path / ("cache-" + name)))
        out = [http(port, "GET", t, headers=h).status
               for t, h in [("/b/1", ALICE), ("/b/2", None), ("/b/3", None),
                            ("/k/1", ALICE), ("/k/2", None), ("/k/3", ALICE)]]
        return out, [q.target for q in up.requests]
    finally:
        up.stop()


def test_credentials_never_admit_another_client(portvakt, tmp_path):
    """A check that came with Authorization is not stored under a key that
    does not name it, so it never admits a client without credentials
    (README: personal answers); a key naming the credentials keeps each
    client's answer its own, and answers that client's next check."""
    got, seen = observe_creds(portvakt, tmp_path, "pv")
    assert got == [200, 401, 401, 200, 401, 200]
    assert seen == ["/basic", "/basic", "/basic", "/user", "/user"]


def test_credentials_nginx_admits_from_the_cache(nginx, tmp_path):
    """NGINX stores the credentialed check under the default key, and the
    stored 200 then admits requests without credentials (auth_request.t's
    'proxy auth cached'): the difference the README lists."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got, seen = observe_creds(nginx, tmp_path, "ng")
    assert got == [200, 200, 200, 200, 401, 200]
    assert seen == ["/basic", "/user", "/user"]
