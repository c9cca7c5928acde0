"""proxy_store and proxy_store_access beside NGINX: a 200 response's body
stored under the root (or the path of proxy_store's string, variables
evaluated), its directories made, the access bits and Last-Modified's
mtime set; nothing stored for another status, a HEAD whose upstream
announced a length, an upstream body cut short, proxy_buffering off; the
whole body stored under proxy_force_ranges and behind a slow client; a
store across file systems; no temp file left; the `-t` errors."""

import os
import shutil
import socket
import stat
import tempfile
import time

import pytest

from conftest import NGINX, Reply, check_conf, free_port, gen_bytes, http, wait_for

CONF = """
http {
    upstream up { server 127.0.0.1:@UP@; }
    proxy_temp_path @DIR@/temp 1 2;
    proxy_cache_path @DIR@/cache keys_zone=z:1m;
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@/html;
        location /s/ { proxy_pass http://up; proxy_store on; }
        location /acc/ {
            proxy_pass http://up; proxy_store on;
            proxy_store_access user:rw group:rw all:r;
        }
        location /str/ { proxy_pass http://up; proxy_store @DIR@/named$uri.$arg_v; }
        location /unbuf/ { proxy_pass http://up; proxy_store on; proxy_buffering off; }
        location /ranged/ { proxy_pass http://up; proxy_store on; proxy_force_ranges on; }
        location /al/ { alias @DIR@/aliased/; proxy_pass http://up; proxy_store on; }
        location /cross/ { proxy_pass http://up; proxy_store @SHM@$uri; }
        location /off/ { proxy_pass http://up; proxy_store off; }
        location /bad/ { proxy_pass http://up; proxy_store /dev/null/x$uri; }
        location /nomax/ { proxy_pass http://up; proxy_store on; proxy_max_temp_file_size 0; }
    }
    server {
        listen 127.0.0.1:@GW2@;
        root @DIR@/html2;
        proxy_store on;
        location / { proxy_pass http://up; }
        location /nostore/ { proxy_pass http://up; proxy_store off; }
    }
    server {
        listen 127.0.0.1:@GW3@;
        root @DIR@/html3;
        proxy_cache z;
        proxy_cache_valid 200 1m;
        add_header X-Cache "[$upstream_cache_status]";
        location / { proxy_pass http://up; }
        location /st/ { proxy_pass http://up; proxy_store on; }
    }
}
"""

BODY = b"stored body\n"
BIG = gen_bytes(1 << 20)
LM = "Wed, 01 Jan 2020 00:00:00 GMT"
LM_EPOCH = 1577836800


def answer(req):
    path = req.target.split("?")[0]
    lm = [("Last-Modified", LM)]
    if path.endswith("/missing"):
        return Reply(404, headers=lm, body=b"no")
    if path.endswith("/chunked"):
        return Reply(200, headers=lm, body=BODY, chunked=True)
    if path.endswith("/close"):
        return Reply(200, body=BODY, no_length=True, close=True)
    if path.endswith("/short"):
        return Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", close=True)
    if path.endswith("/chunkcut"):
        return Reply(raw=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", close=True)
    if path.endswith("/empty"):
        return Reply(200, body=b"")
    if path.endswith("/badlm"):
        return Reply(200, headers=[("Last-Modified", "yesterday")], body=BODY)
    if path.endswith("/late"):
        return Reply(200, headers=lm, body=BODY, delay=0.5)
    if path.endswith("/big"):
        return Reply(200, headers=lm, body=BIG)
    return Reply(200, headers=lm, body=BODY)


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, upstream, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = upstream(handler=answer)
    d = tmp_path / ("store-" + request.param)
    d.mkdir()
    shm = tempfile.mkdtemp(prefix="pvstore-", dir="/dev/shm") if os.path.isdir("/dev/shm") else str(d / "shm")
    start = portvakt if request.param == "portvakt" else nginx
    g = start(CONF, GW=free_port(), GW2=free_port(), GW3=free_port(), UP=up.port, DIR=str(d), SHM=shm)
    g.dir, g.shm = str(d), shm
    yield g
    shutil.rmtree(shm, ignore_errors=True)


def get(g, target, method="GET", port=None, **kw):
    """One request; returns once the server has logged it (NGINX stores
    the file just before it ends the request, maybe after the client
    has the last byte)."""
    n = len(g.access_log_lines())
    try:
        r = http(port or g.port, method, target, **kw)
    finally:
        g.wait_access_log(n + 1)
    return r


def temp_files(g):
    out = []
    for top, _, files in os.walk(os.path.join(g.dir, "temp")):
        out += [os.path.join(top, f) for f in files]
    return out


def stored(g, rel):
    p = os.path.join(g.dir, rel)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_stored_under_root(gw):
    r = get(gw, "/s/a/b/c.txt", "GET")
    assert r.status == 200 and r.body == BODY
    p = os.path.join(gw.dir, "html/s/a/b/c.txt")
    assert stored(gw, "html/s/a/b/c.txt") == BODY
    assert mode(p) == 0o600
    assert os.stat(p).st_mtime == LM_EPOCH
    # the directories made: the access bits with x where r is
    assert mode(os.path.join(gw.dir, "html/s/a/b")) == 0o700 & ~umask()
    assert temp_files(gw) == []


def test_access_bits(gw):
    assert get(gw, "/acc/d/x", "GET").status == 200
    p = os.path.join(gw.dir, "html/acc/d/x")
    assert mode(p) == 0o664
    assert mode(os.path.join(gw.dir, "html/acc/d")) == 0o775 & ~umask()


def test_string_path_with_variables(gw):
    assert get(gw, "/str/x?v=7", "GET").body == BODY
    assert stored(gw, "named/str/x.7") == BODY
    assert stored(gw, "html/str/x") is None


def test_alias(gw):
    assert get(gw, "/al/y/z", "GET").status == 200
    assert stored(gw, "aliased/y/z") == BODY


@pytest.mark.parametrize("name,body", [("chunked", BODY), ("close", BODY), ("empty", b"")])
def test_stored_framings(gw, name, body):
    r = get(gw, "/s/" + name, "GET")
    assert r.status == 200 and r.body == body
    assert stored(gw, "html/s/" + name) == body
    assert temp_files(gw) == []


def test_no_mtime_from_a_bad_date(gw):
    """An unparsable Last-Modified leaves the file its write time. The
    kernel stamps files from its coarse clock, which may lag time.time()
    by a tick, so "now" is a window around the request, not a bound."""
    before = time.time()
    assert get(gw, "/s/badlm", "GET").status == 200
    mtime = os.stat(os.path.join(gw.dir, "html/s/badlm")).st_mtime
    assert before - 1 < mtime < time.time() + 1, (before, mtime)


@pytest.mark.parametrize("target", ["/s/missing", "/unbuf/x", "/off/x"])
def test_not_stored(gw, target):
    r = get(gw, target, "GET")
    assert r.status in (200, 404)
    assert stored(gw, "html" + target) is None
    assert temp_files(gw) == []


def test_head_not_stored(gw):
    r = get(gw, "/s/head", "HEAD")
    assert r.status == 200
    assert stored(gw, "html/s/head") is None
    assert temp_files(gw) == []


@pytest.mark.parametrize("name", ["short", "chunkcut"])
def test_cut_body_not_stored(gw, name):
    try:
        get(gw, "/s/" + name, timeout=3.0)
    except Exception:
        pass  # the client's response is cut
    assert stored(gw, "html/s/" + name) is None
    assert temp_files(gw) == []


def test_ranges_store_the_whole_body(gw):
    r = get(gw, "/ranged/r", headers=[("Range", "bytes=0-3")])
    assert r.status == 206 and r.body == BODY[:4]
    assert stored(gw, "html/ranged/r") == BODY


@pytest.mark.parametrize("loc", ["s", "nomax"])
def test_slow_client_gets_it_stored_whole(gw, loc):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(10.0)
    s.connect(("127.0.0.1", gw.port))
    s.sendall(b"GET /%s/big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % loc.encode())
    time.sleep(0.5)  # the response waits in the buffers and the temp file
    data = b""
    while True:
        k = s.recv(1 << 20)
        if not k:
            break
        data += k
    s.close()
    gw.wait_access_log(1)
    assert data.split(b"\r\n\r\n", 1)[1] == BIG
    assert stored(gw, "html/%s/big" % loc) == BIG
    assert temp_files(gw) == []


def test_failed_rename_logged_and_temp_removed(gw):
    r = get(gw, "/bad/q")
    assert r.status == 200 and r.body == BODY
    assert temp_files(gw) == []
    wait_for(lambda: "failed (20: Not a directory)" in gw.stderr(), what="the crit line")
    line = [l for l in gw.stderr().splitlines() if "Not a directory" in l][0]
    assert "[crit]" in line and 'rename() "' in line and '" to "/dev/null/x/bad/q" failed' in line


def test_client_gone_before_the_answer(gw):
    # the store does not look at the client's close: the answer is read
    # and stored all the same (proxy_ignore_client_abort is off)
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"GET /s/late HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.1)
    s.close()
    gw.wait_access_log(1)
    assert stored(gw, "html/s/late") == BODY
    assert temp_files(gw) == []


def test_across_file_systems(gw):
    assert get(gw, "/cross/q/w", "GET").status == 200
    p = os.path.join(gw.shm, "cross/q/w")
    with open(p, "rb") as f:
        assert f.read() == BODY
    assert mode(p) == 0o600 & ~umask()
    assert os.stat(p).st_mtime == LM_EPOCH
    assert [n for n in os.listdir(os.path.dirname(p)) if n != "w"] == []
    assert temp_files(gw) == []


def test_server_level_inherited(gw):
    port2 = gw.ports[1]
    assert get(gw, "/i/j", port=port2).status == 200
    assert stored(gw, "html2/i/j") == BODY
    assert get(gw, "/nostore/k", port=port2).status == 200
    assert stored(gw, "html2/nostore/k") is None


def test_store_in_a_block_stops_the_inherited_cache(gw):
    port3 = gw.ports[2]
    r = get(gw, "/st/m", port=port3)
    assert r.header("X-Cache") == "[]"
    assert stored(gw, "html3/st/m") == BODY
    r = get(gw, "/c", port=port3)
    assert r.header("X-Cache") == "[MISS]"
    assert stored(gw, "html3/c") is None


# ---- -t ----------------------------------------------------------------------------


def check(tmp_path, body, http_level=""):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n%s\n server {\n listen 127.0.0.1:%d;\n location / {\n%s\n }\n }\n}\n"
                    % (tmp_path, http_level, free_port(), body))
    return check_conf(path, tmp_path)


CACHE = "proxy_cache_path %s/c keys_zone=z:1m;"


@pytest.mark.parametrize("body,words", [
    ("proxy_store on; proxy_store off;", '"proxy_store" directive is duplicate'),
    ("proxy_store;", 'invalid number of arguments in "proxy_store" directive'),
    ("proxy_store_access user:rwx;", 'invalid value "user:rwx"'),
    ("proxy_store_access owner:rw;", 'invalid value "owner:rw"'),
    ("proxy_store_access user:rw group:r all:r user:r;", 'invalid number of arguments in "proxy_store_access"'),
    ("proxy_store_access user:rw; proxy_store_access all:r;", '"proxy_store_access" directive is duplicate'),
    ("if ($arg_a) { proxy_store on; }", '"proxy_store" directive is not allowed here'),
    ("proxy_cache z; proxy_store on;", '"proxy_store" directive is incompatible with "proxy_cache"'),
    ("proxy_store on; proxy_cache z;", '"proxy_cache" directive is incompatible with "proxy_store"'),
    ("proxy_cache z; proxy_store /x/$uri;", '"proxy_store" directive is incompatible with "proxy_cache"'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    for name, (rc, text) in check(tmp_path, body, CACHE % tmp_path).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
        assert "t.conf:" in text, (name, text)


@pytest.mark.parametrize("body", [
    "proxy_cache off; proxy_store on;",
    "proxy_store off; proxy_cache z;",
    "proxy_store_access group:rw all:r; proxy_store on;",
])
def test_check_accepts_as_nginx(tmp_path, body):
    for name, (rc, text) in check(tmp_path, body, CACHE % tmp_path).items():
        assert rc == 0, (name, text)


PARTED_CONF = """
http {
    proxy_temp_path @DIR@/temp 1 2;
    proxy_cache_path @DIR@/cache keys_zone=z:1m;
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@/html;
        location /s/ { proxy_pass http://127.0.0.1:@UP@; proxy_store on; }
        location /c/ { proxy_pass http://127.0.0.1:@UP@; proxy_cache z; proxy_cache_valid 200 1m;
                       add_header X-Cache $upstream_cache_status; }
    }
}
"""
PART = 1 << 20


class PartedUpstream:
    """Answers each request with a 2 MiB body of known length: the first
    half at once, the rest once `go` is set."""

    def __init__(self):
        import threading
        self.go = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.body = gen_bytes(2 * PART)
        self.asked = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import threading
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(s,), daemon=True).start()

    def one(self, s):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                d = s.recv(4096)
                if not d:
                    return
                data += d
            self.asked += 1
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                      b"Connection: close\r\n\r\n" % len(self.body) + self.body[:PART])
            self.go.wait(10)
            s.sendall(self.body[PART:])
        except OSError:
            pass
        finally:
            s.close()

    def stop(self):
        self.go.set()
        self.sock.close()


def leave_midway(port, target):
    """Read the head and a little of the body, then reset the connection."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_client_gone_midway_the_body_is_read_on(kind, portvakt, nginx, tmp_path):
    # the client resets the connection with half of the body still to
    # come: the upstream is read to its end, and the file (proxy_store)
    # and the cache entry (proxy_cache) are stored all the same
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    up = PartedUpstream()
    try:
        d = tmp_path / kind
        (d / "html").mkdir(parents=True)
        g = (portvakt if kind == "portvakt" else nginx)(PARTED_CONF, GW=free_port(), UP=up.port, DIR=str(d))
        for target in ("/s/file", "/c/entry"):
            up.go.clear()
            n = len(g.access_log_lines())
            leave_midway(g.port, target)
            time.sleep(0.3)
            up.go.set()
            g.wait_access_log(n + 1)
        with open(d / "html" / "s" / "file", "rb") as f:
            assert f.read() == up.body
        r = http(g.port, "GET", "/c/entry")
        assert r.status == 200 and r.header("X-Cache") == "HIT" and r.body == up.body
        assert up.asked == 2
    finally:
        up.stop()
