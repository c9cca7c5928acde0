"""Balancing methods, differentially against NGINX: the same upstream
block, the same upstream servers (same addresses, so the consistent-hash
ring is the same) and the same sequence of requests go to NGINX (one
worker) and then to portvakt, and the access logs' $upstream_addr lists,
every server tried for each request in order, must be identical.

Servers that cannot be reached are free ports nobody listens on: a
connect() there is refused at once, so retries, max_fails, fail windows
and the effective weight after a failure are part of what is compared.
Requests held in progress on the upstream make least_conn, max_conns and
`random two` decide by the servers' loads; those picks are compared too.
Random methods promise no sequence: with two servers `random two` is fixed
up to its first draw, and `random`'s shares by weight are checked on both."""

import socket
import threading

import pytest

from conftest import EchoUpstream, free_port, start_server, wait_for

CONF = """\
http {
    log_format pick '$upstream_addr $status';
    access_log @LOG@ pick;
    upstream u {
@UPSTREAM@
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://u;
@LOCATION@
        }
    }
}
"""


@pytest.fixture(scope="module")
def ups():
    """Three live upstream servers (a, b, c) and two addresses that refuse
    connections (x, y), shared by both sides of every test."""
    live = [EchoUpstream() for _ in range(3)]
    addrs = {n: u.addr for n, u in zip("abc", live)}
    addrs["x"] = "127.0.0.1:%d" % free_port()
    addrs["y"] = "127.0.0.1:%d" % free_port()
    yield addrs
    for u in live:
        u.stop()


def get(port, target, src="127.0.0.1"):
    """One GET on a new connection from source address src; the status."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1])
    finally:
        s.close()


def run(kind, tmp_path, ups, upstream, requests, location=""):
    """Start kind on the block, send the requests ((target, source) pairs),
    stop it and return the log lines with addresses named a, b, c, x, y."""
    wd = tmp_path / kind
    wd.mkdir()
    log = wd / "pick.log"
    port = free_port()
    block = upstream
    for n, a in ups.items():
        block = block.replace("@%s@" % n.upper(), a)
    srv = start_server(kind, CONF, wd, PORT=port, LOG=str(log), UPSTREAM=block, LOCATION=location)
    try:
        for target, src in requests:
            get(port, target, src)
    finally:
        srv.stop()
    names = {a: n for n, a in ups.items()}
    lines = []
    for line in log.read_text().splitlines():
        addrs, status = line.rsplit(" ", 1)
        picked = [names.get(a.strip(), a.strip()) for a in addrs.split(",")]
        lines.append("%s %s" % (",".join(picked), status))
    return lines


def differ(tmp_path, ups, upstream, requests, location=""):
    """The pick sequences of NGINX and portvakt for the same requests."""
    want = run("nginx", tmp_path, ups, upstream, requests, location)
    got = run("portvakt", tmp_path, ups, upstream, requests, location)
    assert len(want) == len(requests)
    assert got == want
    return got


def seq(n, target="/", src="127.0.0.1"):
    return [(target, src)] * n


CASES = {
    "weighted_rr": ("server @A@ weight=3; server @B@; server @C@ weight=2;", seq(24)),
    "rr_failures": ("server @A@; server @X@ max_fails=2 fail_timeout=30s; server @B@ weight=2;", seq(16)),
    "rr_weight_after_failure": ("server @A@ weight=5; server @X@ weight=5 max_fails=3 fail_timeout=60s; "
                                "server @B@ weight=2;", seq(20)),
    "rr_max_fails_zero": ("server @A@; server @X@ max_fails=0;", seq(8)),
    "down": ("server @A@; server @B@ down; server @C@;", seq(8)),
    "backup": ("server @X@; server @A@ backup; server @Y@; server @B@ backup weight=2;", seq(9)),
    "all_dead": ("server @X@; server @Y@ weight=2;", seq(4)),
    "all_down_then_backup": ("server @X@ max_fails=1; server @A@ backup;", seq(5)),
    "least_conn": ("least_conn; server @A@ weight=2; server @X@ max_fails=2; server @B@; server @C@ backup;",
                   seq(12)),
    "hash_uri": ("hash $request_uri; server @A@; server @B@ weight=3; server @X@; server @C@;",
                 [("/k%d" % i, "127.0.0.1") for i in range(30)]),
    "hash_consistent": ("hash $arg_k consistent; server @A@; server @B@ weight=2; server @X@; server @C@;",
                        [("/?k=%d" % i, "127.0.0.1") for i in range(40)]),
    "hash_empty_key": ("hash $arg_none; server @A@; server @B@;", seq(6)),
    "ip_hash": ("ip_hash; server @A@; server @B@ weight=2; server @X@; server @C@ down;",
                [("/", "127.0.%d.%d" % (i % 7, i)) for i in range(1, 30)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_picks_as_nginx(case, tmp_path, ups):
    upstream, requests = CASES[case]
    differ(tmp_path, ups, upstream, requests)


def test_next_upstream_tries_as_nginx(tmp_path, ups):
    got = differ(tmp_path, ups, "server @X@; server @Y@; server @A@; server @B@;", seq(6),
                 location="proxy_next_upstream_tries 2;")
    # two tries at most: a request that meets both dead servers fails
    assert any(line.endswith(" 502") for line in got)
    assert all(len(line.split(" ")[0].split(",")) <= 2 for line in got)


def test_weighted_rr_shape(tmp_path, ups):
    """Smooth weighted round robin spreads a heavy server's turns: for
    weights 5,1,1 the sequence is NGINX's documented a a b a c a a."""
    got = run("portvakt", tmp_path, ups, "server @A@ weight=5; server @B@; server @C@;", seq(7))
    assert [line.split(" ")[0] for line in got] == list("aabacaa")


def test_random_picks_only_usable(tmp_path, ups):
    for method in ("random", "random two", "random two least_conn"):
        wd = tmp_path / method.replace(" ", "_")
        wd.mkdir()
        got = run("portvakt", wd, ups, "%s; server @A@; server @B@ weight=3; server @C@ down;" % method,
                  seq(40))
        first = [line.split(" ")[0].split(",")[0] for line in got]
        assert set(first) == {"a", "b"}
        assert all(line.endswith(" 200") for line in got)


def test_least_conn_prefers_idle_server(portvakt, tmp_path):
    """With a request held open on one server, least_conn sends the next
    ones to the others; round robin would not skip it."""
    release = threading.Event()

    def slow(req):
        if req.target.startswith("/slow"):
            release.wait(10)
        return None

    a, b = EchoUpstream(handler=slow), EchoUpstream(handler=slow)
    try:
        port = free_port()
        portvakt(CONF, PORT=port, LOG=str(tmp_path / "l.log"), LOCATION="",
                 UPSTREAM="least_conn; server %s; server %s;" % (a.addr, b.addr))
        t = threading.Thread(target=get, args=(port, "/slow"))
        t.start()
        held = a if a.wait_heads(1, timeout=10) else b
        other = b if held is a else a
        for _ in range(4):
            assert get(port, "/fast") == 200
        assert other.wait_requests(4)
        assert len([r for r in held.requests if r.target == "/fast"]) == 0
        release.set()
        t.join(10)
    finally:
        release.set()
        a.stop()
        b.stop()


def test_max_conns_spills_over(portvakt, tmp_path):
    """max_conns=1: while a request holds the server, the next ones go to
    the other one (round robin alone would alternate)."""
    release = threading.Event()

    def slow(req):
        if req.target.startswith("/slow"):
            release.wait(10)
        return None

    a, b = EchoUpstream(handler=slow), EchoUpstream(handler=slow)
    try:
        port = free_port()
        portvakt(CONF, PORT=port, LOG=str(tmp_path / "l.log"), LOCATION="",
                 UPSTREAM="server %s max_conns=1; server %s;" % (a.addr, b.addr))
        # equal weights: the first pick is a, and the request stays there
        t = threading.Thread(target=get, args=(port, "/slow"))
        t.start()
        assert a.wait_heads(1, timeout=10)
        for _ in range(5):
            assert get(port, "/fast") == 200
        assert b.wait_requests(5)
        assert not [r for r in a.heads if r.target == "/fast"]
        release.set()
        t.join(10)
    finally:
        release.set()
        a.stop()
        b.stop()


# -- requests in progress: least_conn, max_conns and `random two` decide by
# the requests each server holds, which sequential requests leave at zero.
# Requests to /slow are held by the upstream until the test lets them go;
# the picks of the requests sent meanwhile must be NGINX's.

HELD_CONF = CONF.replace("log_format pick '$upstream_addr $status';",
                         "log_format pick '$request_uri $upstream_addr $status';")


@pytest.fixture(scope="module")
def held_ups():
    """Three live servers (a, b, c) that hold /slow requests until
    release is set, and a refusing address (x)."""
    release = threading.Event()

    def slow(req):
        if req.target.startswith("/slow"):
            release.wait(20)
        return None

    live = [EchoUpstream(handler=slow) for _ in range(3)]
    addrs = {n: u.addr for n, u in zip("abc", live)}
    addrs["x"] = "127.0.0.1:%d" % free_port()
    yield addrs, live, release
    release.set()
    for u in live:
        u.stop()


def run_held(kind, tmp_path, held_ups, upstream, nheld, fast):
    """Start kind on the block; hold nheld /slow requests, one after the
    other (each once a server has it); then send the fast targets one by
    one; let the held ones go. Returns the picks of the fast requests and
    of the held ones, each in the order sent, servers named a, b, c, x."""
    addrs, live, release = held_ups
    release.clear()
    wd = tmp_path / kind
    wd.mkdir()
    log = wd / "pick.log"
    port = free_port()
    block = upstream
    for n, a in addrs.items():
        block = block.replace("@%s@" % n.upper(), a)
    srv = start_server(kind, HELD_CONF, wd, PORT=port, LOG=str(log), UPSTREAM=block, LOCATION="")
    threads = []
    try:
        for i in range(nheld):
            before = sum(len(u.heads) for u in live)
            t = threading.Thread(target=get, args=(port, "/slow%d" % i))
            t.start()
            threads.append(t)
            wait_for(lambda: sum(len(u.heads) for u in live) > before, what="held request %d" % i)
        for target in fast:
            get(port, target)
    finally:
        release.set()
        for t in threads:
            t.join(20)
        srv.stop()
    names = {a: n for n, a in addrs.items()}
    fast_picks, held_picks = [], []
    for line in log.read_text().splitlines():
        uri, rest = line.split(" ", 1)
        addrs_text, status = rest.rsplit(" ", 1)
        picked = ",".join(names.get(a.strip(), a.strip()) for a in addrs_text.split(","))
        if uri.startswith("/slow"):
            held_picks.append((int(uri[5:]), "%s %s" % (picked, status)))
        else:
            fast_picks.append("%s %s" % (picked, status))
    assert len(fast_picks) == len(fast) and len(held_picks) == nheld
    return fast_picks, [p for _, p in sorted(held_picks)]


def by_role(picks):
    """Servers renamed s1, s2, ... in the order they first appear: for
    picks that are fixed up to which server a random draw took first."""
    roles = {}
    out = []
    for line in picks:
        names, status = line.split(" ")
        out.append(",".join(roles.setdefault(n, "s%d" % (len(roles) + 1)) for n in names.split(",")) + " " + status)
    return out


HELD_CASES = {
    "least_conn": ("least_conn; server @A@ weight=3; server @B@; server @C@;", 6, 10, False),
    "least_conn_failure": ("least_conn; server @X@ max_fails=1; server @A@; server @B@;", 1, 6, False),
    "rr_max_conns": ("server @A@ max_conns=1; server @B@ weight=2; server @C@ max_conns=2;", 4, 8, False),
    "least_conn_max_conns": ("least_conn; server @A@ max_conns=1; server @B@ weight=2; server @C@;", 3, 8, False),
    "hash_max_conns": ("hash $request_uri; server @A@ max_conns=1; server @B@ max_conns=1; server @C@;", 2, 12, False),
    "ip_hash_max_conns": ("ip_hash; server @A@ max_conns=1; server @B@; server @C@;", 1, 6, False),
    # two servers: every pair is both, and the one holding the request loses
    "random_two": ("random two; server @A@; server @B@;", 1, 6, True),
    "random_two_least_conn": ("random two least_conn; server @A@ weight=2; server @B@;", 1, 6, True),
}


@pytest.mark.parametrize("case", sorted(HELD_CASES))
def test_same_picks_as_nginx_with_requests_in_progress(case, tmp_path, held_ups):
    upstream, nheld, nfast, random_first = HELD_CASES[case]
    fast = ["/f%d" % i for i in range(nfast)]
    want_fast, want_held = run_held("nginx", tmp_path, held_ups, upstream, nheld, fast)
    got_fast, got_held = run_held("portvakt", tmp_path, held_ups, upstream, nheld, fast)
    if random_first:
        # which server the held request drew is random; the rest follows
        want = by_role(want_held + want_fast)
        got = by_role(got_held + got_fast)
        assert got == want
        assert len(set(line.split(" ")[0] for line in got)) == 2
    else:
        assert (got_fast, got_held) == (want_fast, want_held)


def test_random_shares_as_nginx(tmp_path, ups):
    """`random` promises no sequence, only shares by weight: over 200
    requests b (weight 3) takes about three quarters on both, and a
    refused server fails out after its one failure on both."""
    block = "random; server @A@; server @B@ weight=3; server @X@ max_fails=1 fail_timeout=60s;"
    for kind in ("nginx", "portvakt"):
        wd = tmp_path / ("shares-" + kind)
        wd.mkdir()
        got = run(kind, wd, ups, block, seq(200))
        firsts = [line.split(" ")[0].split(",") for line in got]
        tried_x = [f for f in firsts if "x" in f]
        assert len(tried_x) <= 1, kind
        served = [f[-1] for f in firsts]
        assert all(line.endswith(" 200") for line in got), kind
        # binomial(200, 1/4) for a: mean 50, sd 6.1; the bounds are 5 sd
        assert 20 <= served.count("a") <= 80, (kind, served.count("a"))
        assert served.count("a") + served.count("b") == 200


KEEP_CONF = """\
http {
    access_log off;
    upstream u {
        server @A@;
        server @B@;
        keepalive 1;
@EXTRA@
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://u;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


@pytest.mark.parametrize("keep", [1, 2])
def test_keepalive_counts_across_the_upstream_as_nginx(tmp_path, keep):
    """`keepalive N` is N idle connections for the whole upstream, not per
    server: with two servers taking turns and keepalive 1, the one idle
    connection is always to the other server, so every request opens a
    connection (NGINX closes the older idle one for the newer); with
    keepalive 2 both stay. portvakt with keepalive_grace off (NGINX's
    strict cap) opens as many as NGINX."""
    opened = {}
    for kind in ("nginx", "portvakt"):
        a, b = EchoUpstream(), EchoUpstream()
        try:
            extra = "keepalive_grace off;" if kind == "portvakt" else ""
            port = free_port()
            srv = start_server(kind, KEEP_CONF.replace("keepalive 1;", "keepalive %d;" % keep), tmp_path / kind,
                               PORT=port, A=a.addr, B=b.addr, EXTRA=extra)
            try:
                for i in range(8):
                    assert get(port, "/%d" % i) == 200
            finally:
                srv.stop()
            opened[kind] = (a.connections, b.connections)
        finally:
            a.stop()
            b.stop()
    assert opened["portvakt"] == opened["nginx"]
    assert opened["nginx"] == ((4, 4) if keep == 1 else (1, 1))
