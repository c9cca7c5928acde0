"""Variables in proxy_pass and the resolver: the evaluated host matched
against upstream blocks, address literals, names resolved on the
worker's loop through `resolver` (a DNS responder in the test, whose
answers change while it runs), TTL and valid=, failures and their log
lines, the URI rules with variables, and the `-t` errors, compared with
NGINX where NGINX has the same behaviour."""

import os
import socket

import pytest

from conftest import NGINX, EchoUpstream, check_conf, free_port, http, wait_for
from dns_stub import A, AAAA, CNAME, DnsStub

CONF = """
http {
    upstream backend { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        location /named/ { proxy_pass http://$arg_to; }
        location /lit/ { proxy_pass http://127.0.0.1:$arg_port; }
        location /fixed/ { proxy_pass http://$arg_to/base/path; }
        location /full/ { proxy_pass http://$arg_to$request_uri; }
        location /query/ { proxy_pass http://$arg_to?x=1; }
        location /noresolver/ { proxy_pass http://$arg_to; }
        location /dns/ {
            resolver 127.0.0.1:@DNS@;
            proxy_pass http://$arg_to:@UP@;
        }
        location /dnsvalid/ {
            resolver 127.0.0.1:@DNS@ valid=1s ipv6=off;
            proxy_pass http://$arg_to:@UP@;
        }
        location /slow/ {
            resolver 127.0.0.1:@SILENT@;
            resolver_timeout 1s;
            proxy_pass http://$arg_to:@UP@;
        }
        location /bad/ { proxy_pass $arg_to; }
        location /backend { proxy_pass http:/$uri; }
    }
}
"""


@pytest.fixture
def dns():
    d = DnsStub()
    yield d
    d.stop()


@pytest.fixture
def silent():
    """A UDP socket that never answers: every lookup times out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def start(factory, up, dns, silent):
    return factory(CONF, GW=free_port(), UP=up.port, DNS=dns.port, SILENT=silent)


def observe(gw, up, target):
    n = len(up.requests)
    r = http(gw.port, "GET", target)
    seen = {"status": r.status}
    if len(up.requests) > n:
        req = up.requests[-1]
        seen["target"] = req.target
        seen["host"] = req.header("Host")
    return seen


def test_upstream_block_by_name(portvakt, upstream, dns, silent):
    up = upstream()
    gw = start(portvakt, up, dns, silent)
    assert observe(gw, up, "/named/a?to=backend") == {
        "status": 200, "target": "/named/a?to=backend", "host": "backend"}


def test_scheme_completed_by_a_variable(portvakt, upstream, dns, silent):
    """"http:/$uri": the URL is whole only once evaluated ("http://backend")."""
    up = upstream()
    gw = start(portvakt, up, dns, silent)
    assert observe(gw, up, "/backend") == {"status": 200, "target": "/backend", "host": "backend"}
    assert observe(gw, up, "/backend/x?y") == {"status": 200, "target": "/x", "host": "backend"}


def test_literal_address_and_uri_rules(portvakt, upstream, dns, silent):
    up = upstream()
    gw = start(portvakt, up, dns, silent)
    got = observe(gw, up, "/lit/x?port=%d" % up.port)
    assert got == {"status": 200, "target": "/lit/x?port=%d" % up.port, "host": "127.0.0.1:%d" % up.port}
    # a URI part is sent as it evaluated, without the request's arguments
    to = "127.0.0.1:%d" % up.port
    assert observe(gw, up, "/fixed/y?to=" + to)["target"] == "/base/path"
    assert observe(gw, up, "/full/z?to=" + to)["target"] == "/full/z?to=" + to
    assert observe(gw, up, "/query/q?to=" + to)["target"] == "/?x=1"


def test_no_resolver_is_502(portvakt, upstream, dns, silent):
    up = upstream()
    gw = start(portvakt, up, dns, silent)
    assert observe(gw, up, "/noresolver/?to=svc.test") == {"status": 502}
    wait_for(lambda: "no resolver defined to resolve svc.test" in gw.stderr(), what="the log line")


def test_resolved_name_and_failures(portvakt, upstream, dns, silent):
    up = upstream()
    dns.set("svc.test", (A, "127.0.0.1", 60))
    gw = start(portvakt, up, dns, silent)
    assert observe(gw, up, "/dns/a?to=svc.test") == {
        "status": 200, "target": "/dns/a?to=svc.test", "host": "svc.test:%d" % up.port}
    # cached for the TTL: the next request asks nothing
    before = dns.count("svc.test", A)
    assert observe(gw, up, "/dns/b?to=svc.test")["status"] == 200
    assert dns.count("svc.test", A) == before
    assert observe(gw, up, "/dns/c?to=gone.test") == {"status": 502}
    wait_for(lambda: "gone.test could not be resolved (3: Host not found)" in gw.stderr(),
             what="the NXDOMAIN line")
    assert observe(gw, up, "/slow/d?to=svc.test") == {"status": 502}
    wait_for(lambda: "svc.test could not be resolved (110: Operation timed out)" in gw.stderr(),
             what="the timeout line")
    assert observe(gw, up, "/bad/?to=ftp://x") == {"status": 500}
    wait_for(lambda: 'invalid URL prefix in "ftp://x"' in gw.stderr(), what="the prefix line")


def test_answer_change_is_followed(portvakt, upstream, dns, silent):
    """The name moves to another address: once its TTL (valid=1s) is
    over, requests go to the new one, with no reload."""
    a = upstream(host="127.0.0.1")
    b = EchoUpstream(host="127.0.0.2", port=a.port)
    try:
        dns.set("move.test", (A, "127.0.0.1", 1), (AAAA, "::1", 1))
        gw = start(portvakt, a, dns, silent)
        assert observe(gw, a, "/dnsvalid/1?to=move.test")["status"] == 200
        assert dns.count("move.test", AAAA) == 0  # ipv6=off
        dns.set("move.test", (A, "127.0.0.2", 1))

        def moved():
            return http(gw.port, "GET", "/dnsvalid/2?to=move.test").status == 200 and len(b.requests) > 0

        wait_for(moved, timeout=10, what="traffic to the new address")
        assert b.requests[-1].target == "/dnsvalid/2?to=move.test"
    finally:
        b.stop()


def test_cname_ttl_bounds_the_answer(portvakt, upstream, dns, silent):
    """A CNAME and its target's address in one answer: the answer is kept
    no longer than the CNAME's TTL (1 s) even though the address's is an
    hour, so the name is asked again, as NGINX does."""
    up = upstream(host="127.0.0.1")
    dns.set("alias.test", (CNAME, "real.test", 1))
    dns.set("real.test", (A, "127.0.0.1", 3600))
    gw = start(portvakt, up, dns, silent)
    assert observe(gw, up, "/dns/1?to=alias.test")["status"] == 200
    asked = dns.count("alias.test", A)
    assert asked == 1

    def asked_again():
        assert http(gw.port, "GET", "/dns/2?to=alias.test").status == 200
        return dns.count("alias.test", A) > asked

    wait_for(asked_again, timeout=10, what="the name asked again once the CNAME's TTL ran out")


def cname_world(dns):
    """Names whose CNAME comes alone (no record of its target with it),
    as from a server that does not hold the target: NGINX asks the
    target itself."""
    dns.set("svc.test", (A, "127.0.0.1", 60))
    dns.set("hop1.test", (CNAME, "hop2.test", 60))
    dns.set("hop2.test", (CNAME, "svc.test", 60))
    dns.set("loop1.test", (CNAME, "loop2.test", 60))
    dns.set("loop2.test", (CNAME, "loop1.test", 60))
    dns.set("dangling.test", (CNAME, "nowhere.test", 60))
    dns.set("half.test", (A, "127.0.0.1", 60))
    dns.errors[("half.test", AAAA)] = 2  # SERVFAIL for its AAAA question
    dns.flat.update({"hop1.test", "hop2.test", "loop1.test", "loop2.test", "dangling.test"})


DNS_CASES = [
    ("/dns/1?to=hop1.test", 200, None),
    ("/dns/2?to=svc.test.", 200, None),  # one final dot is left out
    ("/dns/3?to=loop1.test", 502, "loop1.test could not be resolved (3: Host not found)"),
    ("/dns/4?to=dangling.test", 502, "dangling.test could not be resolved (3: Host not found)"),
    ("/dns/5?to=half.test", 502, "half.test could not be resolved (2: Server failure)"),
]


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_cname_alone_and_failures(kind, portvakt, nginx, upstream, dns, silent):
    """A CNAME answered alone is followed to its target (through two
    of them here); a CNAME loop ends as "Host not found" (NGINX's bound
    of 50); an error answer to the AAAA question fails the name though
    its A question was answered: the same statuses and log lines from
    portvakt and NGINX."""
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    cname_world(dns)
    up = upstream(host="127.0.0.1")
    gw = start(portvakt if kind == "portvakt" else nginx, up, dns, silent)
    for target, status, line in DNS_CASES:
        assert observe(gw, up, target)["status"] == status, target
        if line:
            wait_for(lambda: line in gw.stderr(), what=line)


def test_cname_alone_is_cached(portvakt, upstream, dns, silent):
    """The chain's links are each kept for their TTL: a second request
    through them asks the DNS server nothing."""
    cname_world(dns)
    up = upstream(host="127.0.0.1")
    gw = start(portvakt, up, dns, silent)
    assert observe(gw, up, "/dns/1?to=hop1.test")["status"] == 200
    asked = [dns.count(n) for n in ("hop1.test", "hop2.test", "svc.test")]
    assert all(asked), asked
    assert observe(gw, up, "/dns/2?to=hop1.test")["status"] == 200
    assert [dns.count(n) for n in ("hop1.test", "hop2.test", "svc.test")] == asked


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_failure_is_not_cached(kind, portvakt, nginx, upstream, dns, silent):
    """A server failure is not remembered: once the server answers, the
    next request goes through, as in NGINX."""
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    dns.set("flaky.test", (A, "127.0.0.1", 60))
    dns.errors[("flaky.test", A)] = 2
    up = upstream(host="127.0.0.1")
    gw = start(portvakt if kind == "portvakt" else nginx, up, dns, silent)
    assert observe(gw, up, "/dns/1?to=flaky.test")["status"] == 502
    del dns.errors[("flaky.test", A)]
    assert observe(gw, up, "/dns/2?to=flaky.test")["status"] == 200


TWO_CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / {
            resolver 127.0.0.1:@SILENT@ 127.0.0.1:@DNS@ ipv6=off;
            resolver_timeout 6s;
            proxy_pass http://$arg_to:@UP@;
        }
    }
}
"""


def test_unanswered_question_goes_to_the_next_server(portvakt, upstream, dns, silent):
    """Each name's questions go to the servers in turn; one unanswered
    goes on to the next server, within resolver_timeout, as NGINX's
    resend: both names resolve though the first server never answers."""
    up = upstream(host="127.0.0.1")
    dns.set("one.test", (A, "127.0.0.1", 60))
    dns.set("two.test", (A, "127.0.0.1", 60))
    gw = portvakt(TWO_CONF, GW=free_port(), UP=up.port, DNS=dns.port, SILENT=silent)
    assert observe(gw, up, "/?to=one.test")["status"] == 200
    assert observe(gw, up, "/?to=two.test")["status"] == 200
    assert dns.count("one.test", A) == 1 and dns.count("two.test", A) == 1


MANY_CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / {
            resolver 127.0.0.1:@DNS@ ipv6=off;
            proxy_pass http://$arg_to:@UP@;
            add_header X-Up $upstream_addr always;
        }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_failed_addresses_are_tried_by_the_next_request(kind, portvakt, nginx, dns):
    """A resolved name's servers are the request's own, as NGINX makes
    them per request: both refused addresses are tried by the first
    request, and again by the next one (not "no live upstreams")."""
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    port = free_port()
    dns.set("many.test", (A, "127.0.0.201", 60), (A, "127.0.0.202", 60))
    gw = (portvakt if kind == "portvakt" else nginx)(MANY_CONF, GW=free_port(), UP=port, DNS=dns.port)
    both = {"127.0.0.201:%d, 127.0.0.202:%d" % (port, port), "127.0.0.202:%d, 127.0.0.201:%d" % (port, port)}
    for _ in range(2):
        r = http(gw.port, "GET", "/?to=many.test")
        assert r.status == 502 and r.header("X-Up") in both, (r.status, r.header("X-Up"))


CASES = ["/backend", "/backend/x?y", "/named/a?to=backend", "/noresolver/?to=svc.test", "/dns/a?to=svc.test",
         "/dns/c?to=gone.test", "/bad/?to=ftp://x"]


def test_same_answers_as_nginx(portvakt, nginx, upstream, dns, silent):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    dns.set("svc.test", (A, "127.0.0.1", 60))
    up1, up2 = upstream(), upstream()
    ours, theirs = start(portvakt, up1, dns, silent), start(nginx, up2, dns, silent)
    diffs = []
    for t in CASES + ["/lit/x?port=%d", "/fixed/y?to=127.0.0.1:%d", "/full/z?to=127.0.0.1:%d",
                      "/query/q?to=127.0.0.1:%d"]:
        a = observe(ours, up1, t.replace("%d", str(up1.port)))
        b = observe(theirs, up2, t.replace("%d", str(up2.port)))
        for s in (a, b):
            for k in ("target", "host"):
                if k in s:
                    s[k] = s[k].replace(str(up1.port), "UP").replace(str(up2.port), "UP")
        if a != b:
            diffs.append((t, a, b))
    assert not diffs, "\n".join("%r\n  portvakt %r\n  nginx    %r" % d for d in diffs)


def check(tmp_path, body):
    path = tmp_path / "gw.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n  listen 127.0.0.1:%d;\n%s\n }\n}\n"
                    % (tmp_path, free_port(), body))
    return check_conf(path, tmp_path)


@pytest.mark.parametrize("body,words", [
    ("resolver 127.0.0.1 valid=x;", "invalid parameter: valid=x"),
    ("resolver 127.0.0.1 ipv6=maybe;", "invalid parameter: ipv6=maybe"),
    ("resolver 127.0.0.1:99999;", 'invalid port in resolver "127.0.0.1:99999"'),
    ("resolver 127.0.0.1; resolver 127.0.0.2;", '"resolver" directive is duplicate'),
    ("resolver_timeout x;", '"resolver_timeout" directive invalid value'),
    ("resolver;", 'invalid number of arguments in "resolver" directive'),
    ("location / { proxy_pass http://$host; proxy_redirect default; }",
     '"proxy_redirect default" cannot be used with "proxy_pass" directive with variables'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


@pytest.mark.parametrize("body,words", [
    ("resolver 127.0.0.1 ipv4=off ipv6=off;", '"ipv4" and "ipv6" cannot both be "off"'),
    ("location / { proxy_pass ftp://$host; }", 'invalid URL prefix in "ftp://$host"'),
])
def test_check_errors(tmp_path, body, words):
    rc, text = check(tmp_path, body)["portvakt"]
    assert rc == 1 and words in text, text


def test_accepted_forms(tmp_path):
    body = ("resolver 127.0.0.1 [::1]:5353 valid=30s ipv4=on ipv6=off status_zone=dns;\n"
            "resolver_timeout 5s;\nlocation / { proxy_pass http://$host$request_uri; }")
    rc, text = check(tmp_path, body)["portvakt"]
    assert rc == 0, text
