"""Authentication: auth_request, auth_basic, satisfy (as NGINX 1.22 does
them; these tests also run against NGINX with PV_TARGET=nginx), and
auth_jwt (NGINX Plus syntax) and API keys, which stock NGINX does not have
(portvakt_only).

What a check let through is seen at the echo upstream: the variables the
check sets ($remote_user, $jwt_claim_*, $consumer, auth_request_set) are
forwarded with proxy_set_header and read back there.
"""

import base64
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import (FIXTURES, Client, JwtKey, Reply, b64url, http, jwks_text,
                      make_jwt)

AUTH_FIXTURES = os.path.join(FIXTURES, "auth")

jwt_only = pytest.mark.portvakt_only("auth_jwt is NGINX Plus syntax; stock NGINX has no such module")
apikey_only = pytest.mark.portvakt_only("API keys are a portvakt extension")


def basic(user, password):
    return ("Authorization", "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode())


def bearer(token):
    return ("Authorization", "Bearer " + token)


def echo(resp):
    """The request the echo upstream saw, from its JSON answer."""
    assert resp.status == 200, resp
    return json.loads(resp.body)


def echo_header(resp, name):
    got = [v for k, v in echo(resp)["headers"] if k.lower() == name.lower()]
    return got[0] if got else None


# ================================================================ auth_request

AUTH_REQUEST = """
worker_processes 1;
http {
    upstream authsvc {
        server 127.0.0.1:@AUTH@;
        keepalive 4;
    }
    server {
        listen 127.0.0.1:@GW@;

        location /api/ {
            auth_request /_auth;
            auth_request_set $auth_user $upstream_http_x_auth_user;
            proxy_set_header X-Auth-User $auth_user;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /api/public/ {
            auth_request off;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /nokeep/ {
            auth_request /_auth_nokeep;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /down/ {
            auth_request /_auth_down;
            proxy_pass http://127.0.0.1:@APP@;
        }

        # The subrequest targets. As NGINX's documentation recommends, the
        # body is not passed and Content-Length is cleared.
        location = /_auth {
            internal;
            proxy_pass http://authsvc/check;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }
        location = /_auth_nokeep {
            internal;
            proxy_pass http://127.0.0.1:@AUTH@/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
        location = /_auth_down {
            internal;
            proxy_pass http://127.0.0.1:@DOWN@/check;
        }
    }
}
"""

# The body and headers of a refusal from the auth service, which must never
# reach the client (only WWW-Authenticate of a 401 does).
AUTH_SECRET_BODY = b"auth-service-internal-details"


def auth_service(req):
    """Decides by the bearer token the client sent (forwarded as is)."""
    token = (req.header("authorization") or "").replace("Bearer ", "")
    secret = [("X-Auth-Secret", "s3cret")]
    if token == "good":
        return Reply(200, headers=[("X-Auth-User", "ada")] + secret, body=AUTH_SECRET_BODY)
    if token == "pooled":
        # No body: NGINX does not read an auth response's body, so only a
        # bodiless answer leaves its connection reusable.
        return Reply(200, headers=[("X-Auth-User", "ada")])
    if token == "nocontent":
        return Reply(204, headers=[("X-Auth-User", "bob")])
    if token == "forbidden":
        return Reply(403, headers=secret, body=AUTH_SECRET_BODY)
    if token == "notfound":
        return Reply(404, body=AUTH_SECRET_BODY)
    if token == "redirect":
        return Reply(302, headers=[("Location", "http://login.test/")], body=AUTH_SECRET_BODY)
    if token == "broken":
        return Reply(500, body=AUTH_SECRET_BODY)
    return Reply(401, headers=[("WWW-Authenticate", 'Bearer realm="svc"')] + secret,
                 body=AUTH_SECRET_BODY)


@pytest.fixture
def authreq(gateway, upstream, port):
    auth = upstream(handler=auth_service)
    app = upstream()
    gw = gateway(AUTH_REQUEST, GW=port(), AUTH=auth.port, APP=app.port, DOWN=port())
    return gw.port, auth, app


def test_auth_request_2xx_lets_the_request_through(authreq):
    gw, auth, app = authreq
    r = http(gw, "GET", "/api/items?x=1", headers=[bearer("good")])
    seen = echo(r)
    assert seen["target"] == "/api/items?x=1"
    # auth_request_set took the auth response's header into a variable.
    assert echo_header(r, "X-Auth-User") == "ada"
    # The subrequest went to the auth location's own URI, carrying the
    # client's headers and the original request line in variables.
    a = auth.last()
    assert a.target == "/check"
    assert a.header("authorization") == "Bearer good"
    assert a.header("x-original-uri") == "/api/items?x=1"
    # Nothing of the auth service's response reaches the client.
    assert AUTH_SECRET_BODY not in r.body
    assert not r.has("X-Auth-Secret") and not r.has("X-Auth-User")


def test_auth_request_any_2xx_passes(authreq):
    gw, auth, app = authreq
    r = http(gw, "GET", "/api/x", headers=[bearer("nocontent")])
    assert echo_header(r, "X-Auth-User") == "bob"


def test_auth_request_subrequest_has_no_body(authreq):
    gw, auth, app = authreq
    body = b"p" * 5000
    r = http(gw, "POST", "/api/upload", headers=[bearer("good")], body=body)
    assert echo(r)["body_len"] == len(body)
    a = auth.last()
    # The subrequest is a GET without a body; the original method is still
    # there in $request_method.
    assert a.method == "GET"
    assert a.body_len == 0 and not a.has("content-length") and not a.chunked
    assert a.header("x-original-method") == "POST"
    assert app.last().body == body


def test_auth_request_401_is_passed_with_its_challenge(authreq):
    gw, auth, app = authreq
    r = http(gw, "GET", "/api/items")
    assert r.status == 401
    assert r.header_all("WWW-Authenticate") == ['Bearer realm="svc"']
    assert not r.has("X-Auth-Secret")
    assert AUTH_SECRET_BODY not in r.body
    assert len(auth.requests) == 1 and app.requests == []


def test_auth_request_403_is_passed(authreq):
    gw, auth, app = authreq
    r = http(gw, "GET", "/api/items", headers=[bearer("forbidden")])
    assert r.status == 403
    assert not r.has("WWW-Authenticate") and not r.has("X-Auth-Secret")
    assert AUTH_SECRET_BODY not in r.body
    assert app.requests == []


@pytest.mark.parametrize("token", ["notfound", "redirect", "broken"])
def test_auth_request_other_statuses_are_500(authreq, token):
    gw, auth, app = authreq
    r = http(gw, "GET", "/api/items", headers=[bearer(token)])
    assert r.status == 500
    assert not r.has("Location") and AUTH_SECRET_BODY not in r.body
    assert app.requests == []


def test_auth_request_unreachable_auth_service_is_500(authreq):
    gw, auth, app = authreq
    r = http(gw, "GET", "/down/x", headers=[bearer("good")])
    assert r.status == 500
    assert app.requests == []


AUTH_BY_RETURN = """
worker_processes 1;
http {
    server {
        listen 127.0.0.1:@GW@;
        location /denied/ {
            auth_request /_deny;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /allowed/ {
            auth_request /_allow;
            auth_request_set $auth_status $upstream_status;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location = /_deny { internal; return 401; }
        location = /_allow { internal; return 204; }
    }
}
"""


def test_auth_request_to_a_return_location(gateway, upstream, port):
    # The subrequest's location answers by itself (no proxy_pass): its
    # status decides, with no upstream response to read variables from.
    app = upstream()
    gw = gateway(AUTH_BY_RETURN, GW=port(), APP=app.port)
    r = http(gw.port, "GET", "/denied/x")
    assert r.status == 401
    assert app.requests == []
    r = http(gw.port, "GET", "/allowed/x")
    assert echo(r)["target"] == "/allowed/x"


def test_auth_request_off_in_a_location(authreq):
    gw, auth, app = authreq
    r = http(gw, "GET", "/api/public/page")
    assert echo(r)["target"] == "/api/public/page"
    assert auth.requests == []


def test_internal_location_is_404_from_outside(authreq):
    gw, auth, app = authreq
    for path in ("/_auth", "/_auth_nokeep"):
        r = http(gw, "GET", path, headers=[bearer("good")])
        assert r.status == 404
    assert auth.requests == []


def test_auth_request_keeps_the_client_connection(authreq):
    gw, auth, app = authreq
    with Client(gw) as c:
        for token, want in (("good", 200), ("none", 401), ("forbidden", 403), ("good", 200)):
            c.request("GET", "/api/k", headers=[bearer(token)])
            r = c.read_response()
            assert r.status == want
            assert r.header("Connection", "").lower() != "close"
        # A 500 ends the connection, as NGINX does for its own 500 pages.
        c.request("GET", "/api/k", headers=[bearer("broken")])
        r = c.read_response()
        assert r.status == 500 and r.header("Connection", "").lower() == "close"
        assert c.closed()
    assert len(app.requests) == 2


def test_auth_subrequests_use_the_upstream_keepalive_pool(authreq):
    gw, auth, app = authreq
    n = 20
    with Client(gw) as c:
        for i in range(n):
            c.request("GET", "/api/k%d" % i, headers=[bearer("pooled")])
            assert c.read_response().status == 200
    assert len(auth.requests) == n
    # One pooled connection carries them all (a second one at most, should
    # a reuse race force a fresh connection).
    assert auth.connections <= 2
    # The same subrequests through a location without a pool: one
    # connection each (shows the count above measures pooling).
    before = auth.connections
    for i in range(5):
        assert http(gw, "GET", "/nokeep/%d" % i, headers=[bearer("pooled")]).status == 200
    assert auth.connections - before == 5


# ================================================================ auth_basic

# Users of fixtures/auth/users.htpasswd, one per hash format.
USERS = {
    "alice": "bcrypt pass",   # $2y$ (bcrypt)
    "bob": "sha512-pass",     # $6$ (SHA-512 crypt)
    "carol": "apr1-pass",     # $apr1$ (Apache MD5), with a comment field
    "dave": "sha1-pass",      # {SHA}
    "erin": "plain-pass",     # {PLAIN}
}

AUTH_BASIC = """
http {
    server {
        listen 127.0.0.1:@GW@;
        auth_basic "Staff only";
        auth_basic_user_file @USERS@;
        proxy_set_header X-Remote-User $remote_user;

        location / {
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /open/ {
            auth_basic off;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /other/ {
            auth_basic "Other $host";
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /nothing/ {
        }
    }
}
"""


@pytest.fixture
def basicgw(gateway, upstream, port):
    app = upstream()
    gw = gateway(AUTH_BASIC, GW=port(), APP=app.port,
                 USERS=os.path.join(AUTH_FIXTURES, "users.htpasswd"))
    return gw.port, app


def test_basic_runs_before_a_location_without_content(basicgw):
    # The access phase comes before content: a location with nothing to
    # serve asks for credentials first, and only then has nothing (404).
    gw, app = basicgw
    r = http(gw, "GET", "/nothing/x")
    assert r.status == 401
    assert r.header_all("WWW-Authenticate") == ['Basic realm="Staff only"']
    user = "erin"
    r = http(gw, "GET", "/nothing/x", headers=[basic(user, USERS[user])])
    assert r.status == 404
    assert app.requests == []


def test_basic_challenge_without_credentials(basicgw):
    gw, app = basicgw
    r = http(gw, "GET", "/x")
    assert r.status == 401
    assert r.header_all("WWW-Authenticate") == ['Basic realm="Staff only"']
    assert app.requests == []


@pytest.mark.parametrize("user", sorted(USERS))
def test_basic_every_hash_format(basicgw, user):
    gw, app = basicgw
    r = http(gw, "GET", "/x", headers=[basic(user, USERS[user])])
    seen = echo(r)
    assert echo_header(r, "X-Remote-User") == user
    # The credentials are forwarded upstream, as NGINX does.
    assert echo_header(r, "Authorization") == basic(user, USERS[user])[1]
    assert seen["target"] == "/x"


@pytest.mark.parametrize("user", sorted(USERS))
def test_basic_wrong_password(basicgw, user):
    gw, app = basicgw
    r = http(gw, "GET", "/x", headers=[basic(user, USERS[user] + "x")])
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Staff only"'
    assert app.requests == []


@pytest.mark.parametrize("header", [
    basic("mallory", "plain-pass"),                 # unknown user
    basic("erin", ""),                              # empty password
    ("Authorization", "Basic !!!notbase64"),
    ("Authorization", "Basic " + base64.b64encode(b"no-colon").decode()),
    ("Authorization", "Bearer plain-pass"),
    ("Authorization", "Basic"),
], ids=["unknown-user", "empty-password", "bad-base64", "no-colon", "other-scheme", "no-credentials"])
def test_basic_refuses_bad_credentials(basicgw, header):
    gw, app = basicgw
    r = http(gw, "GET", "/x", headers=[header])
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Staff only"'
    assert app.requests == []


def test_basic_comment_line_is_not_a_user(basicgw):
    gw, app = basicgw
    r = http(gw, "GET", "/x", headers=[basic("# users for test_auth.py", "x")])
    assert r.status == 401


def test_basic_off_and_realm_with_variable(basicgw):
    gw, app = basicgw
    assert echo(http(gw, "GET", "/open/x"))["target"] == "/open/x"
    r = http(gw, "GET", "/other/x", host="realm.test")
    assert r.status == 401
    assert r.header("WWW-Authenticate") == 'Basic realm="Other realm.test"'


def test_basic_hashes_made_now(gateway, upstream, port, tmp_path):
    # Fresh salts from openssl, not only the committed ones.
    sha512 = subprocess.check_output(["openssl", "passwd", "-6", "n3w-pass"]).decode().strip()
    apr1 = subprocess.check_output(["openssl", "passwd", "-apr1", "other pass"]).decode().strip()
    sha1 = "{SHA}" + base64.b64encode(hashlib.sha1(b"s1").digest()).decode()
    users = tmp_path / "fresh.htpasswd"
    users.write_text("u6:%s\r\nuapr:%s\r\n\r\nusha:%s\r\n" % (sha512, apr1, sha1))
    app = upstream()
    gw = gateway(AUTH_BASIC, GW=port(), APP=app.port, USERS=users)
    for user, pw in (("u6", "n3w-pass"), ("uapr", "other pass"), ("usha", "s1")):
        assert http(gw.port, "GET", "/", headers=[basic(user, pw)]).status == 200
        assert http(gw.port, "GET", "/", headers=[basic(user, pw[:-1])]).status == 401


# ================================================================ satisfy

SATISFY = """
http {
    server {
        listen 127.0.0.1:@GW@;
        auth_basic "Staff";
        auth_basic_user_file @USERS@;

        location /all/ {
            satisfy all;
            auth_request /_auth;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /any/ {
            satisfy any;
            auth_request /_auth;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location = /_auth {
            internal;
            auth_basic off;
            proxy_pass http://127.0.0.1:@AUTH@/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
    }
}
"""


def satisfy_auth_service(req):
    # The auth service looks at X-Token; Authorization is the basic auth's.
    token = req.header("x-token")
    if token == "good":
        return Reply(200)
    if token == "forbidden":
        return Reply(403)
    return Reply(401, headers=[("WWW-Authenticate", 'Bearer realm="svc"')])


@pytest.fixture
def satisfygw(gateway, upstream, port):
    auth = upstream(handler=satisfy_auth_service)
    app = upstream()
    gw = gateway(SATISFY, GW=port(), APP=app.port, AUTH=auth.port,
                 USERS=os.path.join(AUTH_FIXTURES, "users.htpasswd"))
    return gw.port, auth, app


GOOD_BASIC = basic("erin", "plain-pass")
BAD_BASIC = basic("erin", "wrong")
BASIC_CHALLENGE = 'Basic realm="Staff"'
SVC_CHALLENGE = 'Bearer realm="svc"'


# (client headers, status, challenges sent, whether the auth service was
# asked). auth_basic runs before auth_request, so under `satisfy all` a
# basic failure ends the check without a subrequest.
@pytest.mark.parametrize("headers,status,challenges,asked", [
    ([GOOD_BASIC, ("X-Token", "good")], 200, [], True),
    ([GOOD_BASIC, ("X-Token", "forbidden")], 403, [], True),
    ([GOOD_BASIC], 401, [SVC_CHALLENGE], True),
    ([("X-Token", "good")], 401, [BASIC_CHALLENGE], False),
    ([BAD_BASIC, ("X-Token", "good")], 401, [BASIC_CHALLENGE], False),
], ids=["both", "basic-then-403", "basic-then-401", "request-only", "bad-basic"])
def test_satisfy_all_needs_every_check(satisfygw, headers, status, challenges, asked):
    gw, auth, app = satisfygw
    r = http(gw, "GET", "/all/x", headers=headers)
    assert r.status == status
    assert r.header_all("WWW-Authenticate") == challenges
    assert len(auth.requests) == (1 if asked else 0)
    assert len(app.requests) == (1 if status == 200 else 0)


@pytest.mark.parametrize("headers,status,challenges", [
    ([GOOD_BASIC, ("X-Token", "good")], 200, []),
    ([GOOD_BASIC], 200, []),
    ([GOOD_BASIC, ("X-Token", "forbidden")], 200, []),
    # A check that failed before another passed leaves no challenge.
    ([("X-Token", "good")], 200, []),
    ([BAD_BASIC, ("X-Token", "good")], 200, []),
    # Both refuse: a 401 wins over a 403, and every 401's challenge is
    # sent, in the order the checks ran.
    ([("X-Token", "forbidden")], 401, [BASIC_CHALLENGE]),
    ([BAD_BASIC], 401, [BASIC_CHALLENGE, SVC_CHALLENGE]),
    ([], 401, [BASIC_CHALLENGE, SVC_CHALLENGE]),
], ids=["both", "basic-only", "basic-and-403", "request-only", "bad-basic-good-request",
        "none-403", "none-401", "nothing"])
def test_satisfy_any_needs_one_check(satisfygw, headers, status, challenges):
    gw, auth, app = satisfygw
    r = http(gw, "GET", "/any/x", headers=headers)
    assert r.status == status
    assert r.header_all("WWW-Authenticate") == challenges
    assert len(app.requests) == (1 if status == 200 else 0)


# ================================================================ auth_jwt

HS_SECRET = bytes(range(64))  # long enough for HS512 (RFC 7518 3.2)

AUTH_JWT = """
http {
    server {
        listen 127.0.0.1:@GW@;
        auth_jwt "api";
        auth_jwt_key_file @JWKS@;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_set_header X-Count $jwt_claim_count;
        proxy_set_header X-Roles $jwt_claim_roles;
        proxy_set_header X-Alg $jwt_header_alg;
        proxy_set_header X-Kid $jwt_header_kid;

        location / {
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /leeway/ {
            auth_jwt_leeway 60s;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /admin/ {
            auth_jwt_require $jwt_claim_admin $jwt_claim_sub;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /query/ {
            auth_jwt "query realm" token=$arg_access_token;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /header/ {
            auth_jwt "header realm" token=$http_x_jwt;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /public/ {
            auth_jwt off;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /fixed/ {
            # The committed key set alone.
            auth_jwt_key_file @FIXED_JWKS@;
            proxy_pass http://127.0.0.1:@APP@;
        }
    }
}
"""


@pytest.fixture(scope="module")
def jwt_keys(tmp_path_factory):
    """Signing keys: the committed RSA key, EC keys made now, an HMAC
    secret, and an RSA key that is not in the key set."""
    d = tmp_path_factory.mktemp("jwtkeys")
    keys = {
        "rsa": JwtKey.rsa(os.path.join(AUTH_FIXTURES, "rsa_private.pem"), kid="fixed-rsa"),
        "p256": JwtKey.ec(JwtKey.generate_ec(d / "p256.pem", "P-256"), "P-256", kid="ec256"),
        "p384": JwtKey.ec(JwtKey.generate_ec(d / "p384.pem", "P-384"), "P-384", kid="ec384"),
        "hmac": JwtKey.hmac(HS_SECRET, kid="hs"),
    }
    jwks = d / "jwks.json"
    jwks.write_text(jwks_text(*keys.values()))
    # Same kid as the real RSA key, different key material: an impostor.
    keys["impostor"] = JwtKey.rsa(JwtKey.generate_rsa(d / "impostor.pem"), kid="fixed-rsa")
    keys["jwks"] = str(jwks)
    return keys


@pytest.fixture
def jwtgw(gateway, upstream, port, jwt_keys):
    app = upstream()
    gw = gateway(AUTH_JWT, GW=port(), APP=app.port, JWKS=jwt_keys["jwks"],
                 FIXED_JWKS=os.path.join(AUTH_FIXTURES, "rsa.jwks.json"))
    return gw.port, app


def claims(**extra):
    now = int(time.time())
    c = {"sub": "user-42", "iat": now, "exp": now + 300}
    c.update(extra)
    return c


def assert_invalid_token(r, realm="api"):
    """401 with an RFC 6750 challenge naming the realm and invalid_token."""
    assert r.status == 401, r
    (chal,) = r.header_all("WWW-Authenticate")
    assert chal.startswith("Bearer "), chal
    assert 'realm="%s"' % realm in chal
    assert 'error="invalid_token"' in chal


def test_committed_jwks_matches_the_committed_key():
    # The fixture pair must stay consistent, else every RSA test fails for
    # the wrong reason.
    with open(os.path.join(AUTH_FIXTURES, "rsa.jwks.json")) as f:
        committed = json.load(f)["keys"]
    key = JwtKey.rsa(os.path.join(AUTH_FIXTURES, "rsa_private.pem"), kid="fixed-rsa")
    assert committed == [key.jwk()]


@jwt_only
@pytest.mark.parametrize("alg,key", [
    ("HS256", "hmac"), ("HS384", "hmac"), ("HS512", "hmac"),
    ("RS256", "rsa"), ("RS384", "rsa"), ("RS512", "rsa"), ("PS256", "rsa"),
    ("ES256", "p256"), ("ES384", "p384"),
])
def test_jwt_algorithms(jwtgw, jwt_keys, alg, key):
    gw, app = jwtgw
    k = jwt_keys[key]
    token = make_jwt(claims(count=7, roles=["read", "write"]), k, alg)
    r = http(gw, "GET", "/x", headers=[bearer(token)])
    assert echo_header(r, "X-Sub") == "user-42"
    assert echo_header(r, "X-Count") == "7"
    assert echo_header(r, "X-Roles") == "read,write"
    assert echo_header(r, "X-Alg") == alg
    assert echo_header(r, "X-Kid") == k.kid
    # The token is forwarded as it came.
    assert echo_header(r, "Authorization") == "Bearer " + token


@jwt_only
def test_jwt_without_kid_tries_the_fitting_keys(jwtgw, jwt_keys):
    gw, app = jwtgw
    for key, alg in (("rsa", "RS256"), ("p256", "ES256"), ("hmac", "HS256")):
        token = make_jwt(claims(), jwt_keys[key], alg, kid=False)
        r = http(gw, "GET", "/x", headers=[bearer(token)])
        assert echo_header(r, "X-Sub") == "user-42", (key, alg)
        # An empty value makes proxy_set_header send no field at all.
        assert echo_header(r, "X-Kid") is None


@jwt_only
def test_jwt_committed_key_set(jwtgw, jwt_keys):
    gw, app = jwtgw
    good = make_jwt(claims(), jwt_keys["rsa"], "RS256")
    assert echo_header(http(gw, "GET", "/fixed/x", headers=[bearer(good)]), "X-Sub") == "user-42"
    # The EC key is not in the committed set.
    other = make_jwt(claims(), jwt_keys["p256"], "ES256")
    assert_invalid_token(http(gw, "GET", "/fixed/x", headers=[bearer(other)]))


@jwt_only
def test_jwt_missing_token_has_no_error_attribute(jwtgw):
    gw, app = jwtgw
    for headers in ([], [("Authorization", "Basic " + base64.b64encode(b"a:b").decode())]):
        r = http(gw, "GET", "/x", headers=headers)
        assert r.status == 401
        (chal,) = r.header_all("WWW-Authenticate")
        assert chal.startswith("Bearer ") and 'realm="api"' in chal
        assert "error=" not in chal
    assert app.requests == []


def _tamper(token):
    h, p, s = token.split(".")
    c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    c["sub"] = "admin"
    return h + "." + b64url(json.dumps(c, separators=(",", ":"))) + "." + s


def _bad_tokens(keys):
    """(name, token) pairs that must all be refused as invalid."""
    rsa, hm = keys["rsa"], keys["hmac"]
    good_rs = make_jwt(claims(), rsa, "RS256")
    good_hs = make_jwt(claims(), hm, "HS256")
    h, p, s = good_rs.split(".")
    pub_pem = rsa.public_pem()
    out = [
        ("tampered-claims-rs", _tamper(good_rs)),
        ("tampered-claims-hs", _tamper(good_hs)),
        ("signature-of-other-token", h + "." + p + "." + make_jwt(claims(sub="x"), rsa, "RS256").split(".")[2]),
        ("empty-signature", h + "." + p + "."),
        ("wrong-key-same-kid", make_jwt(claims(), keys["impostor"], "RS256")),
        ("unknown-kid", make_jwt(claims(), rsa, "RS256", kid="nobody")),
        ("wrong-hmac-secret", make_jwt(claims(), JwtKey.hmac(b"x" * 64, kid="hs"), "HS256")),
        # alg confusion: an HS256 token keyed with the RSA key's public
        # material, pointing at the RSA key.
        ("hs-with-rsa-public-pem", make_jwt(claims(), JwtKey.hmac(pub_pem, kid="fixed-rsa"), "HS256")),
        ("hs-with-rsa-public-pem-no-kid", make_jwt(claims(), JwtKey.hmac(pub_pem), "HS256", kid=False)),
        # An ES token claiming the RSA key, an RS token claiming the EC key.
        ("es-on-rsa-kid", make_jwt(claims(), keys["p256"], "ES256", kid="fixed-rsa")),
        ("rs-on-ec-kid", make_jwt(claims(), rsa, "RS256", kid="ec256")),
        ("es384-with-p256", make_jwt(claims(), keys["p256"], "ES256", header={"alg": "ES384"})),
        ("alg-mismatch-rs384", make_jwt(claims(), rsa, "RS256", header={"alg": "RS384"})),
        # alg none, in its spellings, with and without a signature.
        ("alg-none", make_jwt(claims(), None, "none")),
        ("alg-None", make_jwt(claims(), None, "None")),
        ("alg-NONE", make_jwt(claims(), None, "NONE")),
        ("alg-none-with-sig", make_jwt(claims(), None, "none", sign=lambda d: b"sig")),
        ("alg-none-kid", make_jwt(claims(), None, "none", kid="fixed-rsa")),
        ("alg-missing", make_jwt(claims(), hm, "HS256", header=b'{"typ":"JWT","kid":"hs"}')),
        ("alg-unknown", make_jwt(claims(), hm, "HS256", header={"alg": "HS1"})),
        # Time.
        ("expired", make_jwt(claims(exp=int(time.time()) - 3600), rsa, "RS256")),
        ("not-yet-valid", make_jwt(claims(nbf=int(time.time()) + 3600), rsa, "RS256")),
        ("exp-not-a-number", make_jwt(claims(exp="tomorrow"), rsa, "RS256")),
        # Malformed encodings and structure.
        ("two-parts", h + "." + p),
        ("four-parts", good_rs + ".x"),
        ("five-parts-jwe", "a.b.c.d.e"),
        ("bad-base64-header", "!!!" + h[3:] + "." + p + "." + s),
        ("bad-base64-signature", h + "." + p + "." + s[:-4] + "*$*$"),
        ("padded-base64", h + "=." + p + "." + s),
        ("header-not-json", make_jwt(claims(), hm, "HS256", header=b'{"alg":"HS256",')),
        ("claims-not-json", make_jwt(b"not json", hm, "HS256")),
        ("claims-not-object", make_jwt(b'["sub"]', hm, "HS256")),
        ("header-not-object", make_jwt(claims(), hm, "HS256", header=b'"HS256"')),
        ("empty", ""),
        ("garbage", "hello"),
    ]
    return out


@jwt_only
def test_jwt_invalid_tokens_are_refused(jwtgw, jwt_keys):
    gw, app = jwtgw
    failures = []
    for name, token in _bad_tokens(jwt_keys):
        r = http(gw, "GET", "/x", headers=[("Authorization", "Bearer " + token)])
        if name == "empty":
            # "Bearer " with nothing after it is a missing token or an
            # invalid one; either way a 401 Bearer challenge.
            ok = r.status == 401 and r.header("WWW-Authenticate", "").startswith("Bearer ")
        else:
            ok = (r.status == 401
                  and 'error="invalid_token"' in r.header("WWW-Authenticate", "")
                  and 'realm="api"' in r.header("WWW-Authenticate", ""))
        if not ok:
            failures.append((name, r.status, r.header("WWW-Authenticate")))
    assert failures == []
    assert app.requests == []


@jwt_only
def test_jwt_leeway(jwtgw, jwt_keys):
    gw, app = jwtgw
    rsa = jwt_keys["rsa"]
    now = int(time.time())
    just_expired = make_jwt(claims(exp=now - 20), rsa, "RS256")
    almost_valid = make_jwt(claims(nbf=now + 20), rsa, "RS256")
    long_expired = make_jwt(claims(exp=now - 120), rsa, "RS256")
    for token in (just_expired, almost_valid):
        assert_invalid_token(http(gw, "GET", "/x", headers=[bearer(token)]))
        r = http(gw, "GET", "/leeway/x", headers=[bearer(token)])
        assert echo_header(r, "X-Sub") == "user-42"
    assert_invalid_token(http(gw, "GET", "/leeway/x", headers=[bearer(long_expired)]))


@jwt_only
@pytest.mark.parametrize("admin,status", [
    (True, 200), ("yes", 200), (1, 200),
    (None, 401), ("", 401), ("0", 401), (0, 401), ("missing", 401),
])
def test_jwt_require(jwtgw, jwt_keys, admin, status):
    gw, app = jwtgw
    extra = {} if admin == "missing" else {"admin": admin}
    token = make_jwt(claims(**extra), jwt_keys["hmac"], "HS256")
    r = http(gw, "GET", "/admin/x", headers=[bearer(token)])
    assert r.status == status
    if status == 401:
        assert r.header("WWW-Authenticate", "").startswith("Bearer ")
        assert app.requests == []
    # An empty sub fails the second variable even with admin set.
    if admin is True:
        token = make_jwt(claims(admin=True, sub=""), jwt_keys["hmac"], "HS256")
        assert http(gw, "GET", "/admin/x", headers=[bearer(token)]).status == 401


@jwt_only
def test_jwt_token_from_a_variable(jwtgw, jwt_keys):
    gw, app = jwtgw
    token = make_jwt(claims(), jwt_keys["p256"], "ES256")
    r = http(gw, "GET", "/query/x?access_token=" + token)
    assert echo_header(r, "X-Sub") == "user-42"
    # Only the configured source counts: a header token is not looked at.
    r = http(gw, "GET", "/query/x", headers=[bearer(token)])
    assert r.status == 401
    assert r.header("WWW-Authenticate").startswith('Bearer realm="query realm"')
    assert "error=" not in r.header("WWW-Authenticate")
    r = http(gw, "GET", "/query/x?access_token=" + _tamper(token))
    assert_invalid_token(r, realm="query realm")

    r = http(gw, "GET", "/header/x", headers=[("X-JWT", token)])
    assert echo_header(r, "X-Sub") == "user-42"
    r = http(gw, "GET", "/header/x", headers=[bearer(token)])
    assert r.status == 401 and 'realm="header realm"' in r.header("WWW-Authenticate")


@jwt_only
def test_jwt_off_in_a_location(jwtgw):
    gw, app = jwtgw
    r = http(gw, "GET", "/public/x")
    assert echo(r)["target"] == "/public/x"
    assert echo_header(r, "X-Sub") is None


@jwt_only
def test_jwt_claim_values_cannot_inject_headers(jwtgw, jwt_keys):
    # A claim holding CR LF must not become a second header line upstream.
    gw, app = jwtgw
    token = make_jwt(claims(sub="x\r\nX-Injected: 1"), jwt_keys["hmac"], "HS256")
    # The token is valid: the request passes, and proxy_set_header turns
    # CR and LF into spaces, so the claim stays inside its one field.
    r = http(gw, "GET", "/x", headers=[bearer(token)])
    assert echo_header(r, "X-Sub") == "x  X-Injected: 1"
    assert echo_header(r, "X-Injected") is None
    (q,) = app.requests
    assert q.header_all("X-Sub") == ["x  X-Injected: 1"] and not q.has("X-Injected")


@jwt_only
def test_jwt_two_authorization_fields_are_refused(jwtgw, jwt_keys):
    # auth_jwt checks one token; a backend reading the other would trust a
    # token nobody verified. NGINX refuses the second field (400) before
    # any access check, whichever comes first.
    gw, app = jwtgw
    good = make_jwt(claims(), jwt_keys["hmac"], "HS256")
    forged = make_jwt(claims(sub="admin"), jwt_keys["impostor"], "RS256")
    for fields in ([bearer(good), bearer(forged)], [bearer(forged), bearer(good)],
                   [bearer(good), bearer(good)]):
        r = http(gw, "GET", "/x", headers=fields)
        assert r.status == 400, r
        assert (r.header("Connection") or "").lower() == "close", r.headers
    assert http(gw, "GET", "/x", headers=[bearer(good)]).status == 200
    assert [q.target for q in app.requests] == ["/x"]


# ================================================================ API keys

API_KEYS = """\
# key                              consumer
k-1f0c2a9e8d7b6a5f4e3d2c1b0a99   billing
k-7e6d5c4b3a2918f7e6d5c4b3a291   reports

\tk-tabbed-key-000000000000000\tops
"""

AUTH_API_KEY = """
http {
    server {
        listen 127.0.0.1:@GW@;
        proxy_set_header X-Consumer $consumer;

        location / {
            auth_api_key_file @KEYS@;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /token/ {
            auth_api_key_file @KEYS@;
            auth_api_key_header X-Token;
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /open/ {
            proxy_pass http://127.0.0.1:@APP@;
        }
    }
}
"""


@pytest.fixture
def apikeygw(gateway, upstream, port, tmp_path):
    keys = tmp_path / "api_keys.txt"
    keys.write_text(API_KEYS)
    app = upstream()
    gw = gateway(AUTH_API_KEY, GW=port(), APP=app.port, KEYS=keys)
    return gw.port, app


@apikey_only
@pytest.mark.parametrize("key,consumer", [
    ("k-1f0c2a9e8d7b6a5f4e3d2c1b0a99", "billing"),
    ("k-7e6d5c4b3a2918f7e6d5c4b3a291", "reports"),
    ("k-tabbed-key-000000000000000", "ops"),
])
def test_api_key_names_the_consumer(apikeygw, key, consumer):
    gw, app = apikeygw
    # Header names are case-insensitive.
    for name in ("X-API-Key", "x-api-key"):
        r = http(gw, "GET", "/orders", headers=[(name, key)])
        assert echo_header(r, "X-Consumer") == consumer
        # The key itself never travels upstream.
        assert not [v for k, v in echo(r)["headers"] if k.lower() == "x-api-key"]
        assert key not in r.body.decode()


@apikey_only
@pytest.mark.parametrize("headers", [
    [],
    [("X-API-Key", "")],
    [("X-API-Key", "k-unknown")],
    [("X-API-Key", "k-1f0c2a9e8d7b6a5f4e3d2c1b0a9")],     # a prefix of a key
    [("X-API-Key", "k-1f0c2a9e8d7b6a5f4e3d2c1b0a99x")],   # a key plus one
    [("X-API-Key", "billing")],                           # a consumer name
    [("X-Token", "k-1f0c2a9e8d7b6a5f4e3d2c1b0a99")],      # not the configured header
], ids=["missing", "empty", "unknown", "prefix", "longer", "consumer-name", "other-header"])
def test_api_key_refused(apikeygw, headers):
    gw, app = apikeygw
    r = http(gw, "GET", "/orders", headers=headers)
    assert r.status == 401
    assert app.requests == []


@apikey_only
def test_api_key_custom_header(apikeygw):
    gw, app = apikeygw
    key = "k-7e6d5c4b3a2918f7e6d5c4b3a291"
    r = http(gw, "GET", "/token/x", headers=[("X-Token", key)])
    assert echo_header(r, "X-Consumer") == "reports"
    assert echo_header(r, "X-Token") is None
    assert http(gw, "GET", "/token/x", headers=[("X-API-Key", key)]).status == 401


@apikey_only
def test_api_key_not_configured_in_a_location(apikeygw):
    gw, app = apikeygw
    r = http(gw, "GET", "/open/x")
    assert echo(r)["target"] == "/open/x"
    assert echo_header(r, "X-Consumer") is None


SATISFY_JWT_OR_KEY = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / {
            satisfy any;
            auth_jwt "api";
            auth_jwt_key_file @JWKS@;
            auth_api_key_file @KEYS@;
            proxy_set_header X-Who "$jwt_claim_sub|$consumer";
            proxy_pass http://127.0.0.1:@APP@;
        }
        location /both/ {
            auth_jwt "api";
            auth_jwt_key_file @JWKS@;
            auth_api_key_file @KEYS@;
            proxy_set_header X-Who "$jwt_claim_sub|$consumer";
            proxy_pass http://127.0.0.1:@APP@;
        }
    }
}
"""


@pytest.mark.portvakt_only("auth_jwt and API keys are not in stock NGINX")
def test_satisfy_with_jwt_and_api_keys(gateway, upstream, port, tmp_path, jwt_keys):
    keys = tmp_path / "api_keys.txt"
    keys.write_text(API_KEYS)
    app = upstream()
    gw = gateway(SATISFY_JWT_OR_KEY, GW=port(), APP=app.port, KEYS=keys,
                 JWKS=jwt_keys["jwks"]).port
    token = make_jwt(claims(), jwt_keys["hmac"], "HS256")
    key = ("X-API-Key", "k-1f0c2a9e8d7b6a5f4e3d2c1b0a99")
    assert echo_header(http(gw, "GET", "/x", headers=[bearer(token)]), "X-Who") == "user-42|"
    assert echo_header(http(gw, "GET", "/x", headers=[key]), "X-Who") == "|billing"
    assert http(gw, "GET", "/x").status == 401
    # satisfy all (the default): both are needed.
    assert http(gw, "GET", "/both/x", headers=[bearer(token)]).status == 401
    assert http(gw, "GET", "/both/x", headers=[key]).status == 401
    r = http(gw, "GET", "/both/x", headers=[bearer(token), key])
    assert echo_header(r, "X-Who") == "user-42|billing"
