"""The response cache (proxy_cache_path, proxy_cache and its directives):
HIT after MISS with the upstream asked once, expiry, bypass and
proxy_no_cache, the response fields that forbid or time an entry, stale
answers when the upstream fails, the lock (concurrent misses make one
upstream request), Vary, persistence across a restart, eviction by
max_size, and the $upstream_cache_status sequences and fields compared
with NGINX on the same config. Counts are taken at the upstream.
"""

import os
import subprocess
import threading
import time

import pytest

from conftest import NGINX, PORTVAKT, Client, EchoUpstream, Reply, http, wait_for

CONF = """
http {
    proxy_cache_path @CACHE@ levels=1:2 keys_zone=one:1m inactive=10m max_size=@MAX@ use_temp_path=off;
    upstream u { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache one;
        proxy_cache_valid 200 1h;
        location / { proxy_pass http://u; }
        location /bypass/ { proxy_cache_bypass $arg_nocache; proxy_no_cache $arg_nostore; proxy_pass http://u; }
        location /min2/ { proxy_cache_min_uses 2; proxy_pass http://u; }
        location /maxr/ { proxy_cache_max_range_offset 4; proxy_pass http://u; }
        location /maxr0/ { proxy_cache_max_range_offset 0; proxy_pass http://u; }
        location /post/ { proxy_cache_methods POST; proxy_pass http://u; }
        location /any/ { proxy_cache_valid any 1h; proxy_pass http://u; }
        location /off/ { proxy_cache off; proxy_pass http://u; }
        location /ign/ { proxy_ignore_headers Set-Cookie Cache-Control; proxy_pass http://u; }
        location /stale/ {
            proxy_cache_valid 200 1s;
            proxy_cache_use_stale error timeout http_500 updating;
            proxy_connect_timeout 1s; proxy_read_timeout 1s;
            proxy_pass http://u;
        }
        location /lock/ { proxy_cache_lock on; proxy_cache_lock_timeout 30s; proxy_pass http://u; }
        location /key/ { proxy_cache_key $uri; proxy_pass http://u; }
        location /bypkey/ { proxy_cache_key $uri; proxy_cache_bypass $arg_nocache; proxy_pass http://u; }
        location /reval/ { proxy_cache_revalidate on; proxy_cache_valid 200 1s; proxy_pass http://u; }
        location /sf/ { sendfile on; sendfile_max_chunk 16k; tcp_nopush on; proxy_pass http://u; }
    }
}
"""

CT = [("Content-Type", "text/plain")]


def start(factory, port, tmp_path, name, handler, max_size="10m"):
    up = EchoUpstream(handler=handler)
    cache = tmp_path / ("cache-" + name)
    gw = factory(CONF, GW=port(), UP=up.port, CACHE=str(cache), MAX=max_size)
    return gw, up, cache


def counting(extra=None, body=b"payload\n"):
    """A handler answering 200 with the request count in a field, plus
    the fields `extra(target)` gives."""
    n = [0]

    def h(req):
        n[0] += 1
        fields = CT + [("X-N", str(n[0]))] + (extra(req.target) if extra else [])
        return Reply(headers=fields, body=body + b"%d\n" % n[0])
    return h


def statuses(gw, target, count, method="GET", headers=None):
    return [http(gw.port, method, target, headers=headers).header("X-Cache") for _ in range(count)]


def test_hit_after_miss(portvakt, port, tmp_path):
    gw, up, cache = start(portvakt, port, tmp_path, "p", counting())
    try:
        first = http(gw.port, "GET", "/a")
        assert first.status == 200 and first.header("X-Cache") == "MISS"
        for _ in range(3):
            r = http(gw.port, "GET", "/a")
            assert r.header("X-Cache") == "HIT" and r.body == first.body and r.header("X-N") == "1"
        assert len(up.requests) == 1
        r = http(gw.port, "HEAD", "/a")
        assert r.status == 200 and r.header("X-Cache") == "HIT" and r.body == b""
        r = http(gw.port, "GET", "/a", headers=[("Range", "bytes=0-2")])
        assert r.header("X-Cache") == "HIT"
        files = [f for _, _, fs in os.walk(cache) for f in fs]
        assert len(files) == 1 and len(files[0]) == 32
        assert len(up.requests) == 1
        assert http(gw.port, "GET", "/b").header("X-Cache") == "MISS"
        assert len(up.requests) == 2
    finally:
        up.stop()


def test_validators_on_a_hit(portvakt, port, tmp_path):
    extra = lambda t: [("ETag", '"v1"'), ("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
                       ("Accept-Ranges", "bytes")]
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting(extra))
    try:
        http(gw.port, "GET", "/v")
        r = http(gw.port, "GET", "/v", headers=[("If-None-Match", '"v1"')])
        assert r.status == 304 and r.header("X-Cache") == "HIT"
        r = http(gw.port, "GET", "/v", headers=[("Range", "bytes=0-2")])
        assert r.status == 206 and r.body == b"pay" and r.header("Content-Range") == "bytes 0-2/10"
        assert len(up.requests) == 1
    finally:
        up.stop()


def test_bypass_and_no_cache(portvakt, port, tmp_path):
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting())
    try:
        assert statuses(gw, "/bypass/x?nostore=1", 2) == ["MISS", "MISS"]
        assert http(gw.port, "GET", "/bypass/x").header("X-Cache") == "MISS"
        assert http(gw.port, "GET", "/bypass/x").header("X-Cache") == "HIT"
        r = http(gw.port, "GET", "/bypass/x?nocache=1")
        assert r.header("X-Cache") == "BYPASS" and r.header("X-N") == "4"
        assert len(up.requests) == 4
        # the bypassing request stored its response (the same key: $args differ,
        # so a key of its own)
        assert http(gw.port, "GET", "/bypass/x?nocache=1").header("X-Cache") == "BYPASS"
        assert http(gw.port, "GET", "/off/x").header("X-Cache") is None
        # as NGINX: a bypassing request's response replaces a fresh entry
        first = http(gw.port, "GET", "/bypkey/y").header("X-N")
        assert http(gw.port, "GET", "/bypkey/y").header("X-N") == first
        fresh = http(gw.port, "GET", "/bypkey/y?nocache=1").header("X-N")
        assert fresh != first
        r = http(gw.port, "GET", "/bypkey/y")
        assert r.header("X-Cache") == "HIT" and r.header("X-N") == fresh
    finally:
        up.stop()


FORBIDDING = [
    ("set-cookie", [("Set-Cookie", "a=b")]),
    ("private", [("Cache-Control", "private, max-age=60")]),
    ("no-store", [("Cache-Control", "no-store")]),
    ("max-age-0", [("Cache-Control", "max-age=0")]),
    ("accel-0", [("X-Accel-Expires", "0"), ("Cache-Control", "max-age=60")]),
    ("expires-past", [("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")]),
    ("vary-star", [("Vary", "*")]),
]


@pytest.mark.parametrize("name,fields", FORBIDDING, ids=[f[0] for f in FORBIDDING])
def test_responses_not_stored(portvakt, port, tmp_path, name, fields):
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting(lambda t: fields))
    try:
        assert statuses(gw, "/f", 3) == ["MISS", "MISS", "MISS"]
        assert len(up.requests) == 3
    finally:
        up.stop()


def test_authorization_not_shared(portvakt, port, tmp_path):
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting())
    try:
        auth = [("Authorization", "Basic dTpw")]
        assert statuses(gw, "/p", 2, headers=auth) == ["BYPASS", "BYPASS"]
        assert statuses(gw, "/p", 2) == ["MISS", "HIT"]
        assert len(up.requests) == 3
    finally:
        up.stop()


def test_expiry(portvakt, port, tmp_path):
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting(lambda t: [("Cache-Control", "max-age=1")]))
    try:
        assert statuses(gw, "/e", 2) == ["MISS", "HIT"]
        time.sleep(2.2)
        assert statuses(gw, "/e", 2) == ["EXPIRED", "HIT"]
        assert len(up.requests) == 2
    finally:
        up.stop()


def test_a_new_file_replaces_the_kept_one(portvakt, port, tmp_path):
    """A worker keeps the descriptor of an entry it served; once the entry
    is stored again, the hits answer with the new file."""
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting(lambda t: [("Cache-Control", "max-age=1")]))
    try:
        first = [http(gw.port, "GET", "/k") for _ in range(4)]
        assert [r.header("X-Cache") for r in first] == ["MISS", "HIT", "HIT", "HIT"]
        assert {r.body for r in first} == {b"payload\n1\n"}
        time.sleep(2.2)
        again = [http(gw.port, "GET", "/k") for _ in range(4)]
        assert [r.header("X-Cache") for r in again] == ["EXPIRED", "HIT", "HIT", "HIT"]
        assert {r.body for r in again} == {b"payload\n2\n"}
        assert len(up.requests) == 2
    finally:
        up.stop()


BIGBODY = bytes((i * 13 + i // 253) & 0xFF for i in range(200000))


def test_hits_with_sendfile(portvakt, port, tmp_path):
    """sendfile on: a hit's body leaves the entry file by sendfile(2),
    in sendfile_max_chunk pieces, whole, in ranges and to a slow reader."""
    gw, up, _ = start(portvakt, port, tmp_path, "p",
                      lambda req: Reply(headers=CT + [("Accept-Ranges", "bytes")], body=BIGBODY))
    try:
        assert statuses(gw, "/sf/big", 1) == ["MISS"]
        for _ in range(2):
            r = http(gw.port, "GET", "/sf/big")
            assert r.header("X-Cache") == "HIT" and r.body == BIGBODY
        r = http(gw.port, "GET", "/sf/big", headers=[("Range", "bytes=1000-150000")])
        assert r.status == 206 and r.body == BIGBODY[1000:150001]
        r = http(gw.port, "GET", "/sf/big", headers=[("Range", "bytes=0-9,100000-100009")])
        assert r.status == 206 and BIGBODY[100000:100010] in r.body
        r = http(gw.port, "HEAD", "/sf/big")
        assert r.status == 200 and r.body == b"" and r.header("Content-Length") == str(len(BIGBODY))
        # a client that reads late: the socket fills, the rest follows
        import socket
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", gw.port))
        s.sendall(b"GET /sf/big HTTP/1.1\r\nHost: x\r\n\r\nGET /sf/big HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)
        data = b""
        s.settimeout(30)
        while data.count(BIGBODY) < 2:
            chunk = s.recv(65536)
            assert chunk, data[:200]
            data += chunk
        s.close()
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert len(up.requests) == 1
    finally:
        up.stop()


def test_stale_when_the_upstream_fails(portvakt, port, tmp_path):
    state = {"mode": "ok"}
    ok = counting()

    def h(req):
        if state["mode"] == "500":
            return Reply(status=500, headers=CT, body=b"broken\n")
        return ok(req)
    gw, up, _ = start(portvakt, port, tmp_path, "p", h)
    try:
        first = http(gw.port, "GET", "/stale/s")
        assert first.header("X-Cache") == "MISS"
        time.sleep(2.2)
        state["mode"] = "500"
        r = http(gw.port, "GET", "/stale/s")
        assert r.status == 200 and r.header("X-Cache") == "STALE" and r.body == first.body
        up.stop()
        r = http(gw.port, "GET", "/stale/s")
        assert r.status == 200 and r.header("X-Cache") == "STALE" and r.body == first.body
        assert http(gw.port, "GET", "/stale/other").status == 502
    finally:
        up.stop()


def test_lock_makes_one_upstream_request(portvakt, port, tmp_path):
    n = [0]

    def h(req):
        n[0] += 1
        return Reply(headers=CT, body=b"slow %d\n" % n[0], delay=1.0)
    gw, up, _ = start(portvakt, port, tmp_path, "p", h)
    try:
        out = []

        def ask():
            out.append(http(gw.port, "GET", "/lock/l"))
        ts = [threading.Thread(target=ask) for _ in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert len(out) == 5 and all(r.status == 200 and r.body == b"slow 1\n" for r in out)
        assert len(up.requests) == 1
        assert sorted(r.header("X-Cache") for r in out) == ["HIT", "HIT", "HIT", "HIT", "MISS"]
    finally:
        up.stop()


def test_vary(portvakt, port, tmp_path):
    def extra(t):
        return [("Vary", "Accept-Language")]
    n = [0]

    def h(req):
        n[0] += 1
        lang = dict((k.lower(), v) for k, v in req.headers).get("accept-language", "none")
        return Reply(headers=CT + extra(req.target), body=("%s %d\n" % (lang, n[0])).encode())
    gw, up, _ = start(portvakt, port, tmp_path, "p", h)
    try:
        en, de = [("Accept-Language", "en")], [("Accept-Language", "de")]
        a = http(gw.port, "GET", "/vary", headers=en)
        b = http(gw.port, "GET", "/vary", headers=de)
        assert (a.header("X-Cache"), b.header("X-Cache")) == ("MISS", "MISS")
        assert http(gw.port, "GET", "/vary", headers=en).body == a.body
        assert http(gw.port, "GET", "/vary", headers=de).body == b.body
        assert a.body.startswith(b"en ") and b.body.startswith(b"de ")
        assert len(up.requests) == 2
        assert http(gw.port, "GET", "/vary", headers=de).header("X-Cache") == "HIT"
    finally:
        up.stop()


def test_survives_restart(portvakt, port, tmp_path):
    gw, up, cache = start(portvakt, port, tmp_path, "p", counting())
    try:
        first = http(gw.port, "GET", "/r")
        assert first.header("X-Cache") == "MISS"
        gw.stop()
        gw.start()
        r = http(gw.port, "GET", "/r")
        assert r.header("X-Cache") == "HIT" and r.body == first.body
        assert len(up.requests) == 1
        # a reload keeps the zone
        os.kill(gw.pid, 1)
        wait_for(lambda: http(gw.port, "GET", "/r").header("X-Cache") == "HIT", what="hit after reload")
        assert len(up.requests) == 1
    finally:
        up.stop()


def test_broken_entry_is_not_served(portvakt, port, tmp_path):
    gw, up, cache = start(portvakt, port, tmp_path, "p", counting())
    try:
        http(gw.port, "GET", "/broken")
        gw.stop()
        path = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs][0]
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 3)
        gw.start()
        r = http(gw.port, "GET", "/broken")
        assert r.status == 200 and r.header("X-Cache") == "MISS" and r.header("X-N") == "2"
    finally:
        up.stop()


def test_eviction_by_max_size(portvakt, port, tmp_path):
    gw, up, cache = start(portvakt, port, tmp_path, "p", counting(body=b"x" * 20000), max_size="64k")
    try:
        for i in range(8):
            assert http(gw.port, "GET", "/big/%d" % i).header("X-Cache") == "MISS"

        def size():
            return sum((os.path.getsize(os.path.join(d, f)) + 4095) // 4096 * 4096 for d, _, fs in os.walk(cache) for f in fs)
        wait_for(lambda: size() <= 64 * 1024, timeout=10, what="cache under max_size")
        # the most recent entry stays, the oldest went
        assert http(gw.port, "GET", "/big/7").header("X-Cache") == "HIT"
        assert http(gw.port, "GET", "/big/0").header("X-Cache") == "MISS"
    finally:
        up.stop()


def test_eviction_by_min_free(portvakt, port, tmp_path):
    """min_free larger than any file system: the manager removes every
    entry it can, so a stored response is soon asked for again."""
    gw, up, cache = start(portvakt, port, tmp_path, "p", counting(), max_size="10m min_free=1000000g")
    try:
        assert http(gw.port, "GET", "/mf").header("X-Cache") == "MISS"
        wait_for(lambda: not [f for _, _, fs in os.walk(cache) for f in fs], timeout=10, what="entry removed")
        assert http(gw.port, "GET", "/mf").header("X-Cache") == "MISS"
        assert len(up.requests) == 2
    finally:
        up.stop()


# ---- beside NGINX -------------------------------------------------------------

SEQUENCES = [
    ("plain", "/d/plain", [], 3, "GET"),
    ("min-uses", "/min2/m", [], 4, "GET"),
    ("post-cached", "/post/p", [], 2, "POST"),
    ("post-not-cached", "/d/post", [], 2, "POST"),
    ("set-cookie", "/d/cookie", [("Set-Cookie", "s=1")], 2, "GET"),
    ("set-cookie-ignored", "/ign/cookie", [("Set-Cookie", "s=1")], 2, "GET"),
    ("private", "/d/private", [("Cache-Control", "private")], 2, "GET"),
    ("private-ignored", "/ign/private", [("Cache-Control", "private")], 2, "GET"),
    ("max-age", "/d/maxage", [("Cache-Control", "public, max-age=600")], 2, "GET"),
    ("accel-expires-0", "/d/xae0", [("X-Accel-Expires", "0")], 2, "GET"),
    ("accel-expires", "/d/xae", [("X-Accel-Expires", "600")], 2, "GET"),
    ("expires-past", "/d/exp", [("Expires", "Thu, 01 Jan 1970 00:00:01 GMT")], 2, "GET"),
    ("vary-star", "/d/varystar", [("Vary", "*")], 2, "GET"),
    ("status-404", "/d/404", [], 2, "GET"),
    ("status-404-any", "/any/404", [], 2, "GET"),
    ("bypass", "/bypass/b?nocache=1", [], 2, "GET"),
    ("no-cache", "/bypass/n?nostore=1", [], 2, "GET"),
    ("key-uri", "/key/k?a=1", [], 1, "GET"),
    ("key-uri-other-args", "/key/k?a=2", [], 1, "GET"),
]


def seq_handler(req):
    path = req.target.split("?")[0]
    fields = dict((s[1].split("?")[0], s[2]) for s in SEQUENCES).get(path, [])
    status = 404 if path.endswith("/404") else 200
    return Reply(status=status, headers=CT + fields, body=b"body of " + path.encode() + b"\n")


def seen(r):
    fields = sorted((k.lower(), v) for k, v in r.headers if k.lower() not in ("date", "server"))
    body = r.body if b"<center>" not in r.body else b"PAGE"
    if body == b"PAGE":
        fields = [f for f in fields if f[0] != "content-length"]
    return r.status, fields, body


def test_status_sequences_same_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, up1, _ = start(portvakt, port, tmp_path, "p", seq_handler)
    theirs, up2, _ = start(nginx, port, tmp_path, "n", seq_handler)
    try:
        diffs = []
        for name, target, _, count, method in SEQUENCES:
            for i in range(count):
                a = seen(http(ours.port, method, target))
                b = seen(http(theirs.port, method, target))
                if a != b:
                    diffs.append((name, i, a, b))
        assert not diffs, "\n".join(map(repr, diffs))
        assert len(up1.requests) == len(up2.requests)
    finally:
        up1.stop()
        up2.stop()


CHECKS = [
    ("proxy_cache_path /tmp/x;", "invalid number of arguments"),
    ("proxy_cache_path /tmp/x levels=1:2;", "must have \"keys_zone\" parameter"),
    ("proxy_cache_path /tmp/x keys_zone=z;", "invalid keys zone size"),
    ("proxy_cache_path /tmp/x levels=3 keys_zone=z:1m;", "invalid \"levels\""),
    ("proxy_cache_path /tmp/x keys_zone=z:1m inactive=soon;", "invalid inactive value"),
    ("proxy_cache_path /tmp/x keys_zone=z:1m use_temp_path=maybe;", "invalid use_temp_path value"),
    ("proxy_cache_path /tmp/x keys_zone=z:1m loader_files=10;", "invalid parameter \"loader_files=10\""),
    ("proxy_cache_path /tmp/x keys_zone=z:1m min_free=some;", "invalid min_free value"),
    ("proxy_cache_path /tmp/x keys_zone=z:1m; proxy_cache_path /tmp/y keys_zone=z:1m;", "duplicate zone \"z\""),
    ("server { listen 127.0.0.1:1; location / { proxy_cache nope; } }", "\"proxy_cache\" zone \"nope\" is unknown"),
    ("proxy_cache_valid 200 soon;", "invalid time value"),
    ("proxy_cache_valid 99 1m;", "invalid status \"99\""),
    ("proxy_cache_methods PUT;", "invalid value \"PUT\""),
    ("proxy_cache_use_stale sometimes;", "invalid value \"sometimes\""),
    ("proxy_cache_min_uses 0;", "invalid number"),
    ("proxy_cache_max_range_offset -1;", "\"proxy_cache_max_range_offset\" directive invalid value"),
    ("postpone_output lots;", "invalid"),
    ("proxy_cache_lock maybe;", "it must be \"on\" or \"off\""),
]


@pytest.mark.parametrize("lines,message", CHECKS, ids=[c[1] for c in CHECKS])
def test_config_errors(tmp_path, lines, message):
    path = tmp_path / "gw.conf"
    path.write_text("http { %s }\n" % lines)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr


def test_preconditions_and_ranges_stay_at_the_cache(portvakt, port, tmp_path):
    """As NGINX's cache header set: the upstream gets neither the client's
    conditionals nor its Range, so what it sends is whole and storable."""
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting(lambda t: [("ETag", '"e"')]))
    try:
        r = http(gw.port, "GET", "/pre", headers=[("Range", "bytes=0-1"), ("If-None-Match", '"x"'),
                                                  ("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT")])
        assert r.header("X-Cache") == "MISS"
        names = [k.lower() for k, _ in up.last().headers]
        assert not {"range", "if-none-match", "if-modified-since"} & set(names), names
        assert http(gw.port, "GET", "/pre").header("X-Cache") == "HIT"
        assert http(gw.port, "GET", "/off/pre", headers=[("Range", "bytes=0-1")]).status == 200
        assert "range" in [k.lower() for k, _ in up.last().headers]
    finally:
        up.stop()


def test_ranges_not_worth_storing_go_upstream(portvakt, port, tmp_path):
    """As NGINX: a range from the end, or past proxy_cache_max_range_offset,
    and any request before proxy_cache_min_uses is reached, goes upstream
    with its Range and is not stored; below the offset the whole response
    is fetched and stored."""
    gw, up, _ = start(portvakt, port, tmp_path, "p", counting())

    def upstream_range(target, rng):
        r = http(gw.port, "GET", target, headers=[("Range", rng)])
        return r, dict((k.lower(), v) for k, v in up.last().headers).get("range")
    try:
        r, rng = upstream_range("/maxr/a", "bytes=1-")
        assert rng is None and r.status == 200 and r.header("X-Cache") == "MISS"  # no Accept-Ranges upstream
        assert http(gw.port, "GET", "/maxr/a").header("X-Cache") == "HIT"
        assert upstream_range("/maxr/b", "bytes=4-")[1] == "bytes=4-"
        assert upstream_range("/maxr/c", "bytes=-2")[1] == "bytes=-2"
        assert upstream_range("/maxr0/d", "bytes=0-0")[1] == "bytes=0-0"
        assert http(gw.port, "GET", "/maxr/b").header("X-Cache") == "MISS"
        assert upstream_range("/min2/e", "bytes=1-")[1] == "bytes=1-"
        n = len(up.requests)
        assert http(gw.port, "GET", "/min2/e").header("X-Cache") == "MISS"
        assert http(gw.port, "GET", "/min2/e").header("X-Cache") == "HIT"
        assert len(up.requests) == n + 1
    finally:
        up.stop()


def test_revalidate(portvakt, port, tmp_path):
    """proxy_cache_revalidate: an expired entry is asked for with its
    validators; a 304 makes it fresh again (REVALIDATED, the stored body)."""
    n = [0]

    def h(req):
        n[0] += 1
        fields = dict((k.lower(), v) for k, v in req.headers)
        if fields.get("if-none-match") == '"r1"':
            return Reply(status=304, headers=[("ETag", '"r1"')])
        return Reply(headers=CT + [("ETag", '"r1"'), ("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT")],
                     body=b"stored %d\n" % n[0])
    gw, up, _ = start(portvakt, port, tmp_path, "p", h)
    try:
        first = http(gw.port, "GET", "/reval/x")
        assert first.header("X-Cache") == "MISS"
        time.sleep(2.2)
        r = http(gw.port, "GET", "/reval/x")
        assert r.status == 200 and r.header("X-Cache") == "REVALIDATED" and r.body == first.body
        asked = dict((k.lower(), v) for k, v in up.last().headers)
        assert asked.get("if-none-match") == '"r1"'
        assert asked.get("if-modified-since") == "Tue, 14 Nov 2023 22:13:20 GMT"
        assert http(gw.port, "GET", "/reval/x").header("X-Cache") == "HIT"
        assert len(up.requests) == 2
    finally:
        up.stop()


def test_head_as_get_same_as_nginx(portvakt, nginx, port, tmp_path):
    """proxy_cache_convert_head (on by default): a HEAD that misses is
    asked for as GET and stored, so the GET after it is a HIT; the HEAD's
    answer has the head alone, for a length or a chunked upstream."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")

    def h(req):
        chunked = "chunk" in req.target
        return Reply(headers=CT + [("X-Method", req.method)], body=b"head then get\n", chunked=chunked)
    ours, up1, cache1 = start(portvakt, port, tmp_path, "p", h)
    theirs, up2, cache2 = start(nginx, port, tmp_path, "n", h)

    def stored():
        # entries (32-character names) in the emptier of the two caches
        return min(sum(1 for _, _, fs in os.walk(c) for f in fs if len(f) == 32) for c in (cache1, cache2))
    try:
        def framing_out(r):
            # a hit of a chunked response: NGINX sends it chunked again,
            # portvakt with its length (README, Response cache)
            st, fields, body = seen(r)
            return st, [f for f in fields if f[0] not in ("content-length", "transfer-encoding")], body
        for target in ("/h/len", "/h/chunk"):
            for method in ("HEAD", "GET", "HEAD"):
                # the connections stay open until the entries are stored: a
                # client gone before the fetched body is read ends the fill
                ca, cb = Client(ours.port), Client(theirs.port)
                ca.request(method, target)
                cb.request(method, target)
                a, b = ca.read_response(method), cb.read_response(method)
                if target == "/h/len":
                    assert seen(a) == seen(b), (target, method)
                else:
                    assert framing_out(a) == framing_out(b), (target, method)
                # the HEAD's answer may reach the client before the body
                # it fetched is stored: the next request waits for that
                want = 1 if target == "/h/len" else 2
                wait_for(lambda: stored() >= want, what="the entry stored")
                ca.close()
                cb.close()
        assert [r.method for r in up1.requests] == [r.method for r in up2.requests] == ["GET", "GET"]
        r = http(ours.port, "GET", "/h/len")
        assert r.header("X-Cache") == "HIT" and r.body == b"head then get\n"
    finally:
        up1.stop()
        up2.stop()


KEYS = """
http {
    proxy_cache_path @CACHE@ keys_zone=k:1m;
    server {
        listen 127.0.0.1:@GW@;
        add_header X-Cache $upstream_cache_status always;
        proxy_cache k;
        proxy_cache_valid 200 1h;
        location /a/ { proxy_pass http://127.0.0.1:@UP@/b/; }
        location /c/ { proxy_pass http://127.0.0.1:@UP@/b/; }
        location /b/ { proxy_pass http://127.0.0.1:@UP@; }
        location /e/ { rewrite ^/e/(.*)$ /b/$1 break; proxy_pass http://127.0.0.1:@UP@; }
        location /k/ { proxy_cache_key $scheme$proxy_host$request_uri; proxy_pass http://127.0.0.1:@UP@/b/; }
        location /m/ { proxy_cache_key $scheme$proxy_host$request_uri; proxy_pass http://127.0.0.1:@UP@/b/; }
    }
}
"""


def test_default_key_is_the_upstream_uri(portvakt, nginx, port, tmp_path):
    """Without proxy_cache_key the key is NGINX's own: the proxy_pass scheme
    and host and the URI sent upstream, so locations that send the same URI
    share an entry (a rewrite's URI too); a key written as the documented
    default does not. Beside NGINX."""
    runs = []
    for name, factory in (("p", portvakt), ("n", nginx)):
        if name == "n" and not os.access(NGINX, os.X_OK):
            continue
        up = EchoUpstream(handler=counting())
        try:
            gw = factory(KEYS, GW=port(), UP=up.port, CACHE=str(tmp_path / ("keys-" + name)))
            got = [(t, http(gw.port, "GET", t).header("X-Cache"))
                   for t in ("/a/f", "/c/f", "/a/f?x=1", "/c/f?x=1", "/b/f", "/e/f", "/k/f", "/m/f")]
            runs.append((got, len(up.requests)))
        finally:
            up.stop()
    want = [("/a/f", "MISS"), ("/c/f", "HIT"), ("/a/f?x=1", "MISS"), ("/c/f?x=1", "HIT"),
            ("/b/f", "HIT"), ("/e/f", "HIT"), ("/k/f", "MISS"), ("/m/f", "MISS")]
    for got, asked in runs:
        assert got == want
        assert asked == 4
