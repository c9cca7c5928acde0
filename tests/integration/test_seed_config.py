"""The gateway config from the design brief must load and serve as it stands.

SEED below is reference/seed-gateway.conf verbatim except the two upstream
addresses (10.10.0.x:8080 -> loopback test upstreams) and `listen 80`
(-> a free loopback port). It has no `events` block and no main-context
directives at all; portvakt must accept that.
"""

from conftest import Client, http

SEED = """\
# The gateway configuration from the design brief, verbatim.
# portvakt must load and serve this file as it stands (addresses aside in tests:
# use 127.0.0.x loopback addresses, never the private 10.x addresses).
http {
    # Optimize for high concurrency
    keepalive_timeout 65;
    keepalive_requests 100000;

    upstream auth_service {
        # The 'keepalive' directive is critical here.
        # It keeps 32 idle connections open to the upstream.
        server 127.0.0.1:@AUTH@;
        keepalive 32;
    }

    upstream inventory_service {
        server 127.0.0.1:@INV@;
        keepalive 32;
    }

    server {
        listen 127.0.0.1:@GW@;
        location /api/auth/ {
            proxy_pass http://auth_service/;
            # strict HTTP/1.1 is required for keepalive
            proxy_http_version 1.1;
            # Clear the Connection header to persist the link
            proxy_set_header Connection "";
            
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
"""


def start(gateway, upstream, port):
    auth = upstream()
    inv = upstream()
    gw = gateway(SEED, AUTH=auth.port, INV=inv.port, GW=port())
    return gw, auth, inv


def test_routes_prefix_and_strips_it(gateway, upstream, port):
    gw, auth, inv = start(gateway, upstream, port)
    r = http(gw.port, "GET", "/api/auth/login?next=%2Fhome")
    assert r.status == 200
    got = auth.last()
    assert got.method == "GET"
    assert got.target == "/login?next=%2Fhome"
    assert got.version == "HTTP/1.1"
    # The echo body is what the upstream saw: proof the response came back.
    assert r.json()["target"] == "/login?next=%2Fhome"
    assert inv.requests == []


def test_upstream_host_is_upstream_name(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    http(gw.port, "GET", "/api/auth/x", host="api.example.com")
    # proxy_set_header Host defaults to $proxy_host: the upstream block name.
    assert auth.last().header_all("Host") == ["auth_service"]


def test_nested_path_and_post_body(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    body = b'{"user":"ada","password":"secret"}'
    r = http(gw.port, "POST", "/api/auth/v1/login", body=body,
             headers=[("Content-Type", "application/json")])
    assert r.status == 200
    got = auth.last()
    assert got.target == "/v1/login"
    assert got.body == body
    assert got.header("Content-Length") == str(len(body))
    assert got.header("Content-Type") == "application/json"


def test_slashless_prefix_redirects(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    gwport = gw.port
    r = http(gwport, "GET", "/api/auth", host="localhost")
    assert r.status == 301
    assert r.header("Location") == "http://localhost:%d/api/auth/" % gwport
    r = http(gwport, "GET", "/api/auth?a=1", host="localhost")
    assert r.status == 301
    assert r.header("Location") == "http://localhost:%d/api/auth/?a=1" % gwport
    assert auth.requests == []


def test_unrouted_paths_are_404(gateway, upstream, port):
    gw, auth, inv = start(gateway, upstream, port)
    for target in ("/", "/api/", "/api/inventory/items", "/api/authx", "/favicon.ico"):
        r = http(gw.port, "GET", target)
        assert r.status == 404, target
    assert auth.requests == [] and inv.requests == []


def test_real_ip_and_forwarded_for(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    http(gw.port, "GET", "/api/auth/a")
    got = auth.last()
    assert got.header_all("X-Real-IP") == ["127.0.0.1"]
    assert got.header_all("X-Forwarded-For") == ["127.0.0.1"]

    http(gw.port, "GET", "/api/auth/b", headers=[("X-Forwarded-For", "203.0.113.7")])
    got = auth.last()
    assert got.header_all("X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]

    # Two client X-Forwarded-For fields are joined, as NGINX does.
    http(gw.port, "GET", "/api/auth/c", headers=[
        ("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.7")])
    got = auth.last()
    assert got.header_all("X-Forwarded-For") == ["198.51.100.1, 203.0.113.7, 127.0.0.1"]

    # A client-sent X-Real-IP is replaced, not passed along.
    http(gw.port, "GET", "/api/auth/d", headers=[("X-Real-IP", "6.6.6.6")])
    assert auth.last().header_all("X-Real-IP") == ["127.0.0.1"]


def test_connection_header_not_forwarded(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    http(gw.port, "GET", "/api/auth/a", headers=[("Connection", "keep-alive")])
    http(gw.port, "GET", "/api/auth/b", headers=[("Connection", "close")])
    for got in auth.wait_requests(2):
        assert not got.has("Connection"), got.headers
        assert not got.has("Keep-Alive"), got.headers


def test_other_client_headers_pass_through(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    http(gw.port, "GET", "/api/auth/a", headers=[
        ("Authorization", "Bearer abc.def"), ("Accept", "application/json"),
        ("X-Custom", "one"), ("X-Custom", "two"), ("User-Agent", "t/1")])
    got = auth.last()
    assert got.header("Authorization") == "Bearer abc.def"
    assert got.header("Accept") == "application/json"
    assert got.header_all("X-Custom") == ["one", "two"]
    assert got.header("User-Agent") == "t/1"


def test_response_passes_back(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    from conftest import Reply
    auth.reply = Reply(201, headers=[("X-Token", "t0k3n"), ("Content-Type", "text/plain"),
                                     ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
                       body=b"created\n")
    r = http(gw.port, "POST", "/api/auth/login", body=b"x")
    assert r.status == 201
    assert r.header("X-Token") == "t0k3n"
    assert r.header_all("Set-Cookie") == ["a=1", "b=2"]
    assert r.body == b"created\n"
    assert r.has("Date") and r.has("Server")


def test_upstream_keepalive_reuse(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    n = 30
    for i in range(n):
        # a new client connection each time: reuse must come from the pool
        r = http(gw.port, "GET", "/api/auth/r%d" % i)
        assert r.status == 200
    got = auth.wait_requests(n)
    assert all(g.version == "HTTP/1.1" for g in got)
    # Sequential requests: one pooled connection per worker at most.
    assert auth.connections <= 4, auth.connections
    assert max(g.seq_on_conn for g in got) >= n // 4


def test_client_keepalive(gateway, upstream, port):
    gw, auth, _ = start(gateway, upstream, port)
    with Client(gw.port) as c:
        for i in range(5):
            c.request("GET", "/api/auth/k%d" % i)
            r = c.read_response()
            assert r.status == 200
            assert r.header("Connection", "keep-alive").lower() == "keep-alive"
        assert not c.closed(0.3)
    assert len(auth.requests) == 5
