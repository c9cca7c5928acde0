"""The response cache's counters in portvakt_metrics (per zone, by
$upstream_cache_status), proxy_cache with variables,
proxy_cache_background_update and proxy_cache_purge. Where NGINX has the
feature, the $upstream_cache_status sequences are compared with NGINX's on
the same config; purge (NGINX Plus) is checked against its documented
answers. Counts are taken at the upstream."""

import json
import os
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families as prom_families

from conftest import NGINX, EchoUpstream, Reply, http

CT = [("Content-Type", "text/plain")]


def counting(extra=None):
    n = [0]

    def h(req):
        n[0] += 1
        fields = CT + [("X-N", str(n[0]))] + (extra(req) if extra else [])
        return Reply(headers=fields, body=b"payload %d\n" % n[0])
    return h


def cache_counts(port):
    r = http(port, target="/metrics")
    assert r.status == 200
    out = {}
    for fam in prom_families(r.body.decode()):
        if fam.name == "portvakt_proxy_cache_requests":
            for s in fam.samples:
                out[(s.labels["zone"], s.labels["status"])] = s.value
    return out


METRICS = """
http {
    proxy_cache_path @CACHE@/one keys_zone=one:1m;
    proxy_cache_path @CACHE@/two keys_zone=two:1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        location = /metrics { portvakt_metrics; }
        location = /status { portvakt_status; }
        location / {
            proxy_cache one; proxy_cache_valid 200 1s;
            proxy_cache_bypass $arg_nocache;
            proxy_cache_use_stale http_500;
            proxy_cache_revalidate on;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_counters_per_zone_and_status(portvakt, port, tmp_path):
    state = {"mode": "ok"}
    ok = counting(lambda req: [("ETag", '"e1"')])

    def h(req):
        if state["mode"] == "500":
            return Reply(status=500, headers=CT, body=b"broken\n")
        if state["mode"] == "304" and req.header("If-None-Match") == '"e1"':
            return Reply(status=304, headers=[("ETag", '"e1"')], body=b"")
        return ok(req)
    up = EchoUpstream(handler=h)
    try:
        gw = portvakt(METRICS, GW=port(), UP=up.port, CACHE=str(tmp_path))
        seen = [http(gw.port, "GET", "/a").header("X-Cache") for _ in range(3)]
        seen.append(http(gw.port, "GET", "/a?nocache=1").header("X-Cache"))
        time.sleep(2.2)
        seen.append(http(gw.port, "GET", "/a").header("X-Cache"))        # EXPIRED, stored again
        time.sleep(2.2)
        state["mode"] = "500"
        seen.append(http(gw.port, "GET", "/a").header("X-Cache"))        # STALE
        state["mode"] = "304"
        seen.append(http(gw.port, "GET", "/a").header("X-Cache"))        # REVALIDATED
        assert seen == ["MISS", "HIT", "HIT", "BYPASS", "EXPIRED", "STALE", "REVALIDATED"]
        c = cache_counts(gw.port)
        statuses = ("miss", "bypass", "expired", "stale", "updating", "revalidated", "hit")
        assert set(c) == {(z, s) for z in ("one", "two") for s in statuses}
        assert {s: c[("one", s)] for s in statuses} == {
            "miss": 1, "bypass": 1, "expired": 1, "stale": 1, "updating": 0, "revalidated": 1, "hit": 2}
        assert all(c[("two", s)] == 0 for s in statuses)
        # the status document's http.caches, in NGINX Plus's shape
        doc = json.loads(http(gw.port, "GET", "/status").body)["http"]["caches"]
        assert set(doc) == {"one", "two"}
        assert {s: doc["one"][s]["responses"] for s in statuses} == {s: c[("one", s)] for s in statuses}
        assert doc["one"]["size"] > 0 and doc["two"]["size"] == 0
        assert "max_size" not in doc["one"]
    finally:
        up.stop()


# ---- proxy_cache with variables (beside NGINX) --------------------------------------

VARS = """
http {
    proxy_cache_path @CACHE@/one keys_zone=one:1m;
    proxy_cache_path @CACHE@/two keys_zone=two:1m;
    map $arg_z $zone { default $arg_z; both one; }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache "[$upstream_cache_status]" always;
        proxy_cache_valid 200 1h;
        proxy_cache_key $uri;
        location / { proxy_cache $zone; proxy_pass http://127.0.0.1:@UP@; }
        location /lit/ { proxy_cache one; proxy_pass http://127.0.0.1:@UP@; }
        location /inh/ {
            proxy_cache $arg_z;
            location /inh/in/ { proxy_pass http://127.0.0.1:@UP@; }
        }
    }
}
"""

VAR_SEQ = ["/v?z=one", "/v?z=one", "/v?z=two", "/v?z=two", "/v?z=both", "/v?z=off", "/v",
           "/v?z=nope", "/lit/v", "/lit/v", "/v?z=one", "/inh/in/x?z=two", "/inh/in/x?z=two", "/inh/in/x",
           "/w?z=two", "/w?z=one", "/w?z=one"]


def body_of(req):
    return Reply(headers=CT, body=b"body of " + req.target.split("?")[0].encode() + b"\n")


def test_variables_same_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    runs = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        up = EchoUpstream(handler=body_of)
        try:
            (tmp_path / name).mkdir()
            gw = factory(VARS, GW=port(), UP=up.port, CACHE=str(tmp_path / name))
            runs[name] = ([(r.status, r.header("X-Cache"), r.body if r.status == 200 else b"")
                           for r in (http(gw.port, "GET", t) for t in VAR_SEQ)], len(up.requests))
        finally:
            up.stop()
    assert runs["portvakt"] == runs["nginx"], runs
    seq = runs["portvakt"][0]
    assert [s[1] for s in seq[:5]] == ["[MISS]", "[HIT]", "[MISS]", "[HIT]", "[HIT]"]
    assert seq[5][1] == seq[6][1] == "[]" and seq[7][0] == 500


# ---- proxy_cache_purge (NGINX Plus; portvakt alone) --------------------------------

PURGE = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=one:1m;
    map $request_method $purge { PURGE 1; default 0; }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache one;
        proxy_cache_valid 200 1h;
        proxy_cache_key $arg_k;
        location /rw/ { proxy_cache_purge $purge; proxy_pass http://127.0.0.1:@UP@; }
        location /ro/ { allow 127.0.0.2; deny all; proxy_cache_purge $purge; proxy_pass http://127.0.0.1:@UP@; }
        location /no/ { proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


def entry_files(cache):
    return sorted(f for _, _, fs in os.walk(cache) for f in fs)


@pytest.fixture
def purging(portvakt, port, tmp_path):
    up = EchoUpstream(handler=counting())
    cache = tmp_path / "cache"
    gw = portvakt(PURGE, GW=port(), UP=up.port, CACHE=str(cache))
    yield gw, up, cache
    up.stop()


def test_purge_one_entry(purging):
    gw, up, cache = purging
    assert [http(gw.port, "GET", "/rw/x?k=a").header("X-Cache") for _ in range(2)] == ["MISS", "HIT"]
    assert len(entry_files(cache)) == 1
    r = http(gw.port, "PURGE", "/rw/x?k=a")
    assert r.status == 204 and r.body == b""
    assert entry_files(cache) == []
    r = http(gw.port, "GET", "/rw/x?k=a")
    assert r.header("X-Cache") == "MISS" and r.header("X-N") == "2"
    assert http(gw.port, "GET", "/rw/x?k=a").header("X-Cache") == "HIT"
    assert http(gw.port, "PURGE", "/rw/x?k=a").status == 204
    assert http(gw.port, "PURGE", "/rw/x?k=a").status == 404
    assert http(gw.port, "PURGE", "/rw/x?k=never").status == 404
    # a location without proxy_cache_purge passes PURGE on as a request
    assert http(gw.port, "PURGE", "/no/x?k=a").header("X-N") == "3"
    assert len(up.requests) == 3


def test_purge_by_prefix(purging):
    gw, up, cache = purging
    for k in ("wa", "wb", "xc"):
        assert http(gw.port, "GET", "/rw/?k=" + k).header("X-Cache") == "MISS"
    assert len(entry_files(cache)) == 3
    assert http(gw.port, "PURGE", "/rw/?k=w*").status == 204
    assert http(gw.port, "GET", "/rw/?k=xc").header("X-Cache") == "HIT"
    assert http(gw.port, "GET", "/rw/?k=wa").header("X-Cache") == "MISS"
    assert http(gw.port, "GET", "/rw/?k=wa").header("X-Cache") == "HIT"
    # the zone's thread removes the other matching file, stored before the purge
    deadline = time.time() + 30
    while len(entry_files(cache)) != 2 and time.time() < deadline:
        time.sleep(0.2)
    assert len(entry_files(cache)) == 2
    assert http(gw.port, "GET", "/rw/?k=wb").header("X-Cache") == "MISS"
    assert len(up.requests) == 5
    # an entry stored after a wildcard purge stays
    assert http(gw.port, "PURGE", "/rw/?k=*").status == 204
    assert http(gw.port, "GET", "/rw/?k=n").header("X-Cache") == "MISS"
    assert http(gw.port, "GET", "/rw/?k=n").header("X-Cache") == "HIT"


def test_purge_limited_by_access_rules(purging):
    gw, up, _ = purging
    assert http(gw.port, "GET", "/rw/?k=a").header("X-Cache") == "MISS"
    assert http(gw.port, "PURGE", "/ro/?k=a").status == 403
    assert http(gw.port, "GET", "/rw/?k=a").header("X-Cache") == "HIT"
    assert http(gw.port, "PURGE", "/rw/?k=a").status == 204
    assert len(up.requests) == 1


# ---- proxy_cache_background_update (beside NGINX) ----------------------------------

BG = """
http {
    proxy_cache_path @CACHE@ keys_zone=one:1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache one;
        proxy_cache_valid 200 1s;
        proxy_cache_use_stale updating;
        location /bg/ { proxy_cache_background_update on; proxy_pass http://127.0.0.1:@UP@; }
        location /fg/ { proxy_cache_background_update off; proxy_pass http://127.0.0.1:@UP@; }
        location /bgnostale/ {
            proxy_cache_background_update on; proxy_cache_use_stale off;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""


def test_background_update_same_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    from conftest import Client
    runs = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        up = EchoUpstream(handler=counting())
        try:
            gw = factory(BG, GW=port(), UP=up.port, CACHE=str(tmp_path / name))
            seen = []
            for loc in ("/bg/", "/fg/", "/bgnostale/"):
                with Client(gw.port) as c:
                    for pause in (0, 2.2, 0, 0):
                        time.sleep(pause)
                        c.request("GET", loc + "x")
                        r = c.read_response("GET")
                        seen.append((loc, r.status, r.header("X-Cache"), r.body))
            runs[name] = (seen, len(up.requests))
        finally:
            up.stop()
    assert runs["portvakt"] == runs["nginx"], runs
    seen = runs["portvakt"][0]
    # the expired entry answers at once (STALE, the old body), and the
    # update it started is what the next request gets
    assert [s[2] for s in seen[:4]] == ["MISS", "STALE", "HIT", "HIT"]
    assert seen[1][3] == seen[0][3] and seen[2][3] != seen[0][3]
    assert [s[2] for s in seen[4:8]] == ["MISS", "EXPIRED", "HIT", "HIT"]
    assert [s[2] for s in seen[8:12]] == ["MISS", "EXPIRED", "HIT", "HIT"]


def test_background_update_that_fails_or_revalidates(portvakt, port, tmp_path):
    from conftest import Client
    seq = ["ok", "500", "500", "304"]   # the upstream's answers in turn

    def h(req):
        mode = seq[min(len(up.requests), len(seq)) - 1]
        if mode == "500":
            return Reply(status=500, headers=CT, body=b"broken\n")
        if mode == "304":
            return Reply(status=304, headers=[("ETag", '"e"')], body=b"")
        return Reply(headers=CT + [("ETag", '"e"')], body=b"payload\n")
    up = EchoUpstream(handler=h)
    conf = BG.replace("proxy_cache_use_stale updating;", "proxy_cache_use_stale updating; proxy_cache_revalidate on;")
    try:
        gw = portvakt(conf, GW=port(), UP=up.port, CACHE=str(tmp_path / "c"))
        with Client(gw.port) as c:
            def get():
                c.request("GET", "/bg/x")
                r = c.read_response("GET")
                return r.status, r.header("X-Cache"), r.body
            assert get() == (200, "MISS", b"payload\n")
            time.sleep(2.2)
            # two updates fail (500): the stale answers stand, the entry
            # stays expired; the third revalidates it (304); the next
            # request on the connection waits for the update, as NGINX's
            for _ in range(3):
                assert get() == (200, "STALE", b"payload\n")
            assert get() == (200, "HIT", b"payload\n")
            assert len(up.requests) == 4
            assert up.requests[-1].header("If-None-Match") == '"e"'
    finally:
        up.stop()
