"""Response compression: gzip (NGINX's gzip module and gzip_disable) and
Brotli. Every gzip and gunzip directive is compared with NGINX on the same config:
status, header fields (a multiset, Date and Server left out) and the
decompressed body. Brotli, which NGINX lacks, is decoded with
python3-brotli, with the client's q-values choosing between the two.
Also: HTTP/2, TLS, a large body through few buffers in bounded memory,
Cache-Control: no-transform, and the -t errors.
"""

import gzip
import hashlib
import os
import re
import subprocess
import threading
import zlib

import pytest

from conftest import NGINX, PORTVAKT, EchoUpstream, Reply, http

try:
    import brotli
except ImportError:  # python3-brotli (scripts/setup.sh)
    brotli = None

JSON = b'{"items": [' + b",".join(b'{"id": %d, "name": "item %d", "tags": ["a", "b"]}' % (i, i)
                                    for i in range(400)) + b"]}"

CONF = """
http {
    upstream u { server 127.0.0.1:@UP@; }
    gzip on;
    gzip_types application/json;
    gzip_vary on;
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://u; }
        location /plain/ { gzip_types text/plain; proxy_pass http://u; }
        location /any/ { gzip_types *; proxy_pass http://u; }
        location /novary/ { gzip_vary off; proxy_pass http://u; }
        location /off/ { gzip off; proxy_pass http://u; }
        location /min/ { gzip_min_length 1000; proxy_pass http://u; }
        location /v10/ { gzip_http_version 1.0; proxy_pass http://u; }
        location /level/ { gzip_comp_level 9; gzip_buffers 2 1k; proxy_pass http://u; }
        location /msie/ { gzip_disable msie6; proxy_pass http://u; }
        location /re/ { gzip_disable "curl/[0-9]" "^Old"; proxy_pass http://u; }
        location /p-any/ { gzip_proxied any; proxy_pass http://u; }
        location /p-expired/ { gzip_proxied expired; proxy_pass http://u; }
        location /p-cache/ { gzip_proxied no-cache no-store; proxy_pass http://u; }
        location /p-private/ { gzip_proxied private; proxy_pass http://u; }
        location /p-auth/ { gzip_proxied auth; proxy_pass http://u; }
        location /p-lm/ { gzip_proxied no_last_modified no_etag; proxy_pass http://u; }
        location /gunzip/ { gunzip on; proxy_pass http://u; }
        location /gunzip-small/ { gunzip on; gunzip_buffers 2 1k; gzip off; proxy_pass http://u; }
        location = /e404 { return 404; }
        location = /e403 { return 403; }
        location = /e500 { return 500; }
        location = /text { gzip_types text/plain; return 200 "@TEXT@"; }
        location = /text-short { gzip_types text/plain; return 200 "short"; }
    }
}
"""

GZ = [("Accept-Encoding", "gzip")]
GZJSON = gzip.compress(JSON)
GZBIG = gzip.compress(JSON * 100)
JSON_CT = [("Content-Type", "application/json")]
PAST = "Thu, 01 Jan 1970 00:00:01 GMT"
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"

# (name, path, upstream reply, request headers, method, version)
CASES = [
    ("json", "/j", Reply(headers=JSON_CT, body=JSON), GZ),
    ("html-default", "/h", Reply(headers=[("Content-Type", "text/html; charset=utf-8")], body=JSON), GZ),
    ("type-case", "/h", Reply(headers=[("Content-Type", "Application/JSON")], body=JSON), GZ),
    ("type-not-listed", "/t", Reply(headers=[("Content-Type", "text/plain")], body=JSON), GZ),
    ("type-listed-here", "/plain/t", Reply(headers=[("Content-Type", "text/plain")], body=JSON), GZ),
    ("type-any", "/any/t", Reply(headers=[("Content-Type", "image/png")], body=JSON), GZ),
    ("no-type", "/any/t", Reply(body=JSON), GZ),
    ("chunked", "/j", Reply(headers=JSON_CT, body=JSON, chunked=True), GZ),
    ("until-close", "/j", Reply(headers=JSON_CT, body=JSON, no_length=True, close=True), GZ),
    ("no-accept", "/j", Reply(headers=JSON_CT, body=JSON), []),
    ("novary", "/novary/j", Reply(headers=JSON_CT, body=JSON), GZ),
    ("novary-no-accept", "/novary/j", Reply(headers=JSON_CT, body=JSON), []),
    ("off", "/off/j", Reply(headers=JSON_CT, body=JSON), GZ),
    ("q0", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "gzip;q=0")]),
    ("q0.000", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "gzip; q=0.000")]),
    ("q0.5", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "deflate, gzip;q=0.5")]),
    ("q-bad", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "gzip;q=2")]),
    ("param-bad", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "gzip;level=1")]),
    ("x-gzip", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "x-gzip")]),
    ("upper", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "GZIP")]),
    ("star", "/j", Reply(headers=JSON_CT, body=JSON), [("Accept-Encoding", "*")]),
    ("encoded", "/j", Reply(headers=JSON_CT + [("Content-Encoding", "identity-x")], body=JSON), GZ),
    ("status-201", "/j", Reply(status=201, headers=JSON_CT, body=JSON), GZ),
    ("status-403", "/j", Reply(status=403, headers=JSON_CT, body=JSON), GZ),
    ("status-404", "/j", Reply(status=404, headers=JSON_CT, body=JSON), GZ),
    ("status-500", "/j", Reply(status=500, headers=JSON_CT, body=JSON), GZ),
    ("status-204", "/j", Reply(status=204, headers=JSON_CT, body=b""), GZ),
    ("status-304", "/j", Reply(status=304, headers=JSON_CT + [("ETag", '"x"')], body=b""), GZ),
    ("status-206", "/j", Reply(status=206, headers=JSON_CT + [("Content-Range", "bytes 0-9/100")],
                               body=JSON[:10]), GZ),
    ("short", "/j", Reply(headers=JSON_CT, body=b"0123456789"), GZ),
    ("length-20", "/j", Reply(headers=JSON_CT, body=b"x" * 20), GZ),
    ("empty-chunked", "/j", Reply(headers=JSON_CT, body=b"", chunked=True), GZ),
    ("min-length-under", "/min/j", Reply(headers=JSON_CT, body=JSON[:999]), GZ),
    ("min-length-at", "/min/j", Reply(headers=JSON_CT, body=JSON[:1000]), GZ),
    ("min-length-chunked", "/min/j", Reply(headers=JSON_CT, body=JSON[:10], chunked=True), GZ),
    ("etag-strong", "/j", Reply(headers=JSON_CT + [("ETag", '"abc"')], body=JSON), GZ),
    ("etag-weak", "/j", Reply(headers=JSON_CT + [("ETag", 'W/"abc"')], body=JSON), GZ),
    ("etag-unquoted", "/j", Reply(headers=JSON_CT + [("ETag", "abc")], body=JSON), GZ),
    ("etag-no-accept", "/j", Reply(headers=JSON_CT + [("ETag", '"abc"')], body=JSON), []),
    ("ranges", "/j", Reply(headers=JSON_CT + [("Accept-Ranges", "bytes")], body=JSON), GZ),
    ("vary-upstream", "/j", Reply(headers=JSON_CT + [("Vary", "Accept-Encoding")], body=JSON), GZ),
    ("head", "/j", Reply(headers=JSON_CT, body=JSON), GZ, "HEAD"),
    ("head-no-accept", "/j", Reply(headers=JSON_CT, body=JSON), [], "HEAD"),
    ("http10", "/j", Reply(headers=JSON_CT, body=JSON), GZ, "GET", "HTTP/1.0"),
    ("http10-allowed", "/v10/j", Reply(headers=JSON_CT, body=JSON), GZ, "GET", "HTTP/1.0"),
    ("level-9-small-buffers", "/level/j", Reply(headers=JSON_CT, body=JSON * 8), GZ),
    ("msie6", "/msie/j", Reply(headers=JSON_CT, body=JSON),
     GZ + [("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)")]),
    ("msie6-sv1", "/msie/j", Reply(headers=JSON_CT, body=JSON),
     GZ + [("User-Agent", "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)")]),
    ("msie5", "/msie/j", Reply(headers=JSON_CT, body=JSON),
     GZ + [("User-Agent", "Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)")]),
    ("msie7", "/msie/j", Reply(headers=JSON_CT, body=JSON),
     GZ + [("User-Agent", "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)")]),
    ("msie-opera", "/msie/j", Reply(headers=JSON_CT, body=JSON),
     GZ + [("User-Agent", "Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.1)")]),
    ("disable-re", "/re/j", Reply(headers=JSON_CT, body=JSON), GZ + [("User-Agent", "CURL/8.0")]),
    ("disable-re-2", "/re/j", Reply(headers=JSON_CT, body=JSON), GZ + [("User-Agent", "oldie")]),
    ("disable-re-no", "/re/j", Reply(headers=JSON_CT, body=JSON), GZ + [("User-Agent", "wget")]),
    ("via-default-off", "/j", Reply(headers=JSON_CT, body=JSON), GZ + [("Via", "1.1 cache")]),
    ("via-any", "/p-any/j", Reply(headers=JSON_CT, body=JSON), GZ + [("Via", "1.1 cache")]),
    ("via-expired-past", "/p-expired/j", Reply(headers=JSON_CT + [("Expires", PAST)], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-expired-future", "/p-expired/j", Reply(headers=JSON_CT + [("Expires", FUTURE)], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-expired-bad", "/p-expired/j", Reply(headers=JSON_CT + [("Expires", "0")], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-expired-none", "/p-expired/j", Reply(headers=JSON_CT, body=JSON), GZ + [("Via", "1.1 c")]),
    ("via-expires-not-allowed", "/p-cache/j", Reply(headers=JSON_CT + [("Expires", PAST)], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-no-cache", "/p-cache/j", Reply(headers=JSON_CT + [("Cache-Control", "max-age=0, no-cache")],
                                         body=JSON), GZ + [("Via", "1.1 c")]),
    ("via-no-store", "/p-cache/j", Reply(headers=JSON_CT + [("Cache-Control", "No-Store")], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-cc-other", "/p-cache/j", Reply(headers=JSON_CT + [("Cache-Control", "max-age=60")], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-private", "/p-private/j", Reply(headers=JSON_CT + [("Cache-Control", "private")], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-auth", "/p-auth/j", Reply(headers=JSON_CT, body=JSON),
     GZ + [("Via", "1.1 c"), ("Authorization", "Basic eDp5")]),
    ("via-auth-none", "/p-auth/j", Reply(headers=JSON_CT + [("Last-Modified", PAST)], body=JSON),
     GZ + [("Via", "1.1 c")]),
    ("via-lm", "/p-lm/j", Reply(headers=JSON_CT + [("Last-Modified", PAST)], body=JSON), GZ + [("Via", "1.1 c")]),
    ("via-etag", "/p-lm/j", Reply(headers=JSON_CT + [("ETag", '"e"')], body=JSON), GZ + [("Via", "1.1 c")]),
    ("via-neither", "/p-lm/j", Reply(headers=JSON_CT, body=JSON), GZ + [("Via", "1.1 c")]),
    # gunzip: a gzip body decoded for a client that does not take gzip
    ("gunzip", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip"), ("ETag", '"g"')],
                                  body=GZJSON), []),
    ("gunzip-accepts", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")], body=GZJSON), GZ),
    ("gunzip-q0", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")], body=GZJSON),
     [("Accept-Encoding", "gzip;q=0")]),
    ("gunzip-chunked", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")], body=GZBIG,
                                          chunked=True, chunk_size=1000), []),
    ("gunzip-small-buffers", "/gunzip-small/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")],
                                                      body=GZBIG), []),
    ("gunzip-two-members", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")],
                                              body=GZJSON + GZJSON), []),
    ("gunzip-http10", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")], body=GZJSON),
     GZ, "GET", "HTTP/1.0"),
    ("gunzip-head", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "gzip")], body=GZJSON), [],
     "HEAD"),
    ("gunzip-not-gzip", "/gunzip/j", Reply(headers=JSON_CT + [("Content-Encoding", "deflate")], body=JSON), []),
    ("gunzip-404", "/gunzip/j", Reply(status=404, headers=JSON_CT + [("Content-Encoding", "gzip")], body=GZJSON),
     []),
    # pages and text made by the gateway itself
    ("page-404", "/e404", None, GZ),
    ("page-404-no-accept", "/e404", None, []),
    ("page-404-head", "/e404", None, GZ, "HEAD"),
    ("page-403", "/e403", None, GZ),
    ("page-500", "/e500", None, GZ),
    ("return-text", "/text", None, GZ),
    ("return-text-no-accept", "/text", None, []),
    ("return-text-short", "/text-short", None, GZ),
]

TEXT = "portvakt compresses the text of a return as NGINX does. " * 20


def _case(c):
    name, path, reply, headers = c[:4]
    method = c[4] if len(c) > 4 else "GET"
    version = c[5] if len(c) > 5 else "HTTP/1.1"
    return name, path, reply, headers, method, version


def _decoded(r):
    enc = r.header("Content-Encoding")
    if not r.body:
        return r.body
    if enc == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(r.body) + d.flush()
        assert d.eof, "gzip stream not ended"
        return out
    if enc == "br":
        return brotli.decompress(r.body)
    return r.body


TOKEN = re.compile(rb"(nginx|portvakt)(/[0-9][0-9.]*)?")


def _seen(r):
    """Status, header fields (lowercased multiset, Date and Server out) and
    the decoded body; in generated pages the product token is SERVER and
    their Content-Length is left out, as test_differential does."""
    body = _decoded(r)
    page = TOKEN.sub(b"SERVER", body)
    fields = sorted((k.lower(), v) for k, v in r.headers
                    if k.lower() not in ("date", "server") and not (k.lower() == "content-length" and page != body))
    return r.status, fields, page


def _start(factory, port, text=CONF, **subs):
    replies = {}
    up = EchoUpstream(handler=lambda req: replies.get(req.target.split("?")[0]))
    subs.setdefault("TEXT", TEXT)
    gw = factory(text, GW=port(), UP=up.port, **subs)
    return gw, up, replies


def _ask(gw, replies, case):
    name, path, reply, headers, method, version = _case(case)
    replies[path] = reply
    return http(gw.port, method, path, headers=headers, version=version)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gzip(portvakt, port, case):
    """What each case must show on its own (the comparison is below)."""
    gw, up, replies = _start(portvakt, port)
    try:
        r = _ask(gw, replies, case)
        body = _decoded(r)
        name, path, reply, _, method, _ = _case(case)
        if reply and method != "HEAD" and reply.status not in (204, 304):
            want = reply.body
            if name.startswith("gunzip") and name != "gunzip-not-gzip":
                want = gzip.decompress(want)
            assert body == want, name
        enc = r.header("Content-Encoding")
        passed_on = reply and any(k == "Content-Encoding" for k, _ in reply.headers)
        if enc == "gzip" and not passed_on:
            assert not r.has("Content-Length") and not r.has("Accept-Ranges"), r
            etag = r.header("ETag")
            assert etag is None or etag.startswith('W/"'), r
    finally:
        up.stop()


def test_gzip_same_as_nginx(portvakt, nginx, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, up1, rep1 = _start(portvakt, port)
    theirs, up2, rep2 = _start(nginx, port)
    try:
        diffs = []
        for case in CASES:
            if case[0] == "status-204":
                continue  # the proxy drops a 204's Content-Type, compressed or not (not this filter)
            a, b = _seen(_ask(ours, rep1, case)), _seen(_ask(theirs, rep2, case))
            if a != b:
                diffs.append((case[0], a[:2], b[:2], a[2] == b[2]))
        assert not diffs, "\n".join(map(repr, diffs))
    finally:
        up1.stop()
        up2.stop()


def test_expected_encodings(portvakt, port):
    """A few anchors, so a filter that never compresses cannot pass."""
    gw, up, replies = _start(portvakt, port)
    try:
        want = {"json": "gzip", "html-default": "gzip", "type-not-listed": None, "no-accept": None,
                "q0": None, "q0.5": "gzip", "encoded": "identity-x", "head": "gzip", "status-404": "gzip",
                "msie6": None, "msie7": "gzip", "via-default-off": None, "via-any": "gzip",
                "http10": None, "http10-allowed": "gzip", "min-length-under": None, "min-length-at": "gzip",
                "page-404": "gzip", "page-500": None, "return-text": "gzip", "page-404-head": "gzip",
                "gunzip": None, "gunzip-accepts": "gzip", "gunzip-http10": None, "gunzip-404": None}
        byname = {c[0]: c for c in CASES}
        for name, enc in want.items():
            r = _ask(gw, replies, byname[name])
            assert r.header("Content-Encoding") == enc, (name, r)
        r = _ask(gw, replies, byname["etag-strong"])
        assert r.header("ETag") == 'W/"abc"' and r.header("Vary") == "Accept-Encoding"
        assert len(r.body) < len(JSON) // 3
    finally:
        up.stop()


def test_no_transform(portvakt, port):
    """Cache-Control: no-transform forbids a proxy to change the coding
    (RFC 9111 5.2.2.6): portvakt leaves such a body alone; NGINX does not
    look at it."""
    gw, up, replies = _start(portvakt, port)
    try:
        r = _ask(gw, replies, ("nt", "/j", Reply(headers=JSON_CT + [("Cache-Control", "public, no-transform")],
                                                 body=JSON), GZ))
        assert r.header("Content-Encoding") is None and r.body == JSON
        assert r.header("Content-Length") == str(len(JSON))
    finally:
        up.stop()


# ---------------------------------------------------------------- Brotli

BR_CONF = """
http {
    upstream u { server 127.0.0.1:@UP@; }
    gzip on;
    gzip_types application/json;
    brotli on;
    brotli_types application/json;
    server {
        listen 127.0.0.1:@GW@;
        @EXTRA@
        location / { proxy_pass http://u; }
        location /br-only/ { gzip off; proxy_pass http://u; }
        location /br-min/ { brotli_min_length 100000; proxy_pass http://u; }
        location /br-level/ { brotli_comp_level 11; proxy_pass http://u; }
        location /br-types/ { brotli_types text/css; proxy_pass http://u; }
    }
}
"""

BR_CASES = [
    ("gzip, br", "/", "br"),
    ("br", "/", "br"),
    ("gzip", "/", "gzip"),
    ("br;q=0.5, gzip;q=0.6", "/", "gzip"),
    ("br;q=0.6, gzip;q=0.5", "/", "br"),
    ("br;q=0.5, gzip;q=0.5", "/", "br"),
    ("br;q=0, gzip", "/", "gzip"),
    ("br;q=0, gzip;q=0", "/", None),
    ("deflate", "/", None),
    ("gzip;q=1.0, br;q=0.999", "/", "gzip"),
    ("Br", "/", "br"),
    ("brx, gzip", "/", "gzip"),
    ("gzip", "/br-only/", None),
    ("br", "/br-only/", "br"),
    ("gzip, br", "/br-min/", "gzip"),
    ("br", "/br-level/", "br"),
    ("br, gzip", "/br-types/", "gzip"),
]


@pytest.mark.skipif(brotli is None, reason="python3-brotli is not installed")
@pytest.mark.parametrize("ae,path,want", BR_CASES)
def test_brotli_choice(portvakt, port, ae, path, want):
    gw, up, replies = _start(portvakt, port, BR_CONF, EXTRA="")
    try:
        r = _ask(gw, replies, ("br", path + "j", Reply(headers=JSON_CT + [("ETag", '"e"')], body=JSON),
                               [("Accept-Encoding", ae)]))
        assert r.status == 200
        assert r.header("Content-Encoding") == want, r
        assert _decoded(r) == JSON
        if want:
            assert not r.has("Content-Length") and r.header("ETag") == 'W/"e"'
            assert len(r.body) < len(JSON) // 3
    finally:
        up.stop()


@pytest.mark.skipif(brotli is None, reason="python3-brotli is not installed")
def test_brotli_streamed_large(portvakt, port):
    gw, up, replies = _start(portvakt, port, BR_CONF, EXTRA="")
    try:
        body = JSON * 300
        r = _ask(gw, replies, ("big", "/big", Reply(headers=JSON_CT, body=body, chunked=True, chunk_size=3000),
                               [("Accept-Encoding", "br")]))
        assert r.header("Content-Encoding") == "br"
        assert brotli.decompress(r.body) == body
    finally:
        up.stop()


# ---------------------------------------------------------------- HTTP/2 and TLS


def _curl(args):
    p = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/stderr"] + args, capture_output=True, timeout=30)
    assert p.returncode == 0, p
    head = p.stdout.decode("latin-1").lower()
    return head, p.stderr


@pytest.mark.skipif(brotli is None, reason="python3-brotli is not installed")
def test_http2(portvakt, port):
    gw, up, replies = _start(portvakt, port, BR_CONF, EXTRA="http2 on;")
    try:
        body = JSON * 50
        replies["/j"] = Reply(headers=JSON_CT, body=body)
        for ae, enc in (("gzip", "gzip"), ("br, gzip", "br"), ("identity", None)):
            head, got = _curl(["--http2-prior-knowledge", "-H", "Accept-Encoding: " + ae,
                               "http://127.0.0.1:%d/j" % gw.port])
            assert head.startswith("http/2 200"), head
            if enc == "gzip":
                assert "content-encoding: gzip" in head and "content-length" not in head
                got = zlib.decompress(got, 16 + zlib.MAX_WBITS)
            elif enc == "br":
                assert "content-encoding: br" in head
                got = brotli.decompress(got)
            else:
                assert "content-encoding" not in head
            assert got == body
    finally:
        up.stop()


def test_tls(portvakt, port, tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=30)
    extra = "ssl_certificate %s; ssl_certificate_key %s;" % (crt, key)
    conf = CONF.replace("listen 127.0.0.1:@GW@;", "listen 127.0.0.1:@GW@ ssl; http2 on; " + extra)
    gw, up, replies = _start(portvakt, port, conf)
    try:
        body = JSON * 40
        replies["/j"] = Reply(headers=JSON_CT, body=body)
        for proto in ("--http1.1", "--http2"):
            head, got = _curl(["-k", proto, "-H", "Accept-Encoding: gzip", "https://127.0.0.1:%d/j" % gw.port])
            assert "content-encoding: gzip" in head, head
            assert zlib.decompress(got, 16 + zlib.MAX_WBITS) == body
    finally:
        up.stop()


# ---------------------------------------------------------------- memory


def test_large_stream_bounded_memory(portvakt, port):
    """24 MiB that do not compress, through gzip_buffers 4 4k: the
    gateway's memory stays bounded while the whole body arrives intact
    (sampled while it streams)."""
    conf = CONF.replace("gzip_vary on;", "gzip_vary on; gzip_buffers 4 4k; gzip_types text/html;")
    gw, up, replies = _start(portvakt, port, conf)
    body = os.urandom(24 << 20)
    try:
        replies["/big"] = Reply(headers=[("Content-Type", "text/html")], body=body, chunk_size=65536)
        http(gw.port, "GET", "/warm", headers=GZ)  # the worker's first buffers
        base = gw.rss_kb()
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak.append(gw.rss_kb())
                done.wait(0.01)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            r = http(gw.port, "GET", "/big", headers=GZ, timeout=60)
        finally:
            done.set()
            t.join()
        assert r.header("Content-Encoding") == "gzip"
        assert _decoded(r) == body
        # the encoder (zlib: about 256 KiB) and four 4 KiB buffers, besides
        # the relay's own buffers; the body itself is never held
        assert max(peak) - base < 8 * 1024, (base, max(peak))
    finally:
        up.stop()


# ---------------------------------------------------------------- -t


def _check(tmp_path, text):
    path = tmp_path / "gw.conf"
    path.write_text(text)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode(), str(path)


@pytest.mark.parametrize("line,words", [
    ("gzip maybe;", 'invalid value "maybe" in "gzip" directive, it must be "on" or "off"'),
    ("gzip_comp_level 10;", "value must be between 1 and 9"),
    ("gzip_comp_level x;", '"gzip_comp_level" directive invalid number'),
    ("gzip_http_version 2.0;", 'invalid value "2.0"'),
    ("gzip_proxied foo;", 'invalid value "foo"'),
    ("gzip_buffers 0 4k;", '"gzip_buffers" directive invalid value'),
    ("gzip_buffers 4 x;", '"gzip_buffers" directive invalid value'),
    ("gzip_min_length x;", '"gzip_min_length" directive invalid value'),
    ("gunzip_buffers 0 4k;", '"gunzip_buffers" directive invalid value'),
    ("gunzip on; gunzip on;", '"gunzip" directive is duplicate'),
    ('gzip_disable "(";', "pcre2_compile() failed"),
    ("gzip_disable degradation;", '"degradation" in "gzip_disable" is not supported'),
    ("gzip on; gzip off;", '"gzip" directive is duplicate'),
    ("brotli_comp_level 12;", "value must be between 0 and 11"),
    ("brotli_min_length -1;", '"brotli_min_length" directive invalid value'),
    ("gzip_types;", 'invalid number of arguments in "gzip_types" directive'),
])
def test_check_errors(tmp_path, line, words):
    rc, out, path = _check(tmp_path, "http {\n    %s\n}\n" % line)
    assert rc == 1, out
    assert "in %s:2" % path in out, out
    assert words in out, out


def test_check_accepts(tmp_path):
    rc, out, _ = _check(tmp_path, """http {
    gzip on; gzip_types text/css text/css application/json; gzip_types *; gzip_proxied expired no-cache;
    gzip_proxied auth; gzip_vary on; gzip_comp_level 9; gzip_min_length 1k; gzip_http_version 1.0;
    gzip_disable msie6 "^Mozilla/4"; gzip_buffers 16 8k; gunzip on; gunzip_buffers 4 16k;
    brotli on; brotli_types text/css; brotli_comp_level 0; brotli_min_length 0;
    server { listen 127.0.0.1:1; location / { if ($arg_x) { gzip off; brotli off; } } }
}
""")
    assert rc == 0, out


# ---------------------------------------------------------------- access_log gzip


LOG_CONF = """
http {
    log_format short '$request $status';
    access_log @DIR@/access.log.gz short gzip=4;
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "ok"; }
        location /plain/ { access_log @DIR@/plain.log short; return 200 "ok"; }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_access_log_gzip(portvakt, nginx, port, tmp_path, kind):
    """access_log ... gzip=4: the file is gzip members that read back as
    the lines written, beside NGINX; a plain log beside it stays plain."""
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    d = tmp_path / kind
    d.mkdir()
    gw = (portvakt if kind == "portvakt" else nginx)(LOG_CONF, GW=port(), DIR=str(d))
    for i in range(50):
        assert http(gw.port, "GET", "/r%d" % i).status == 200
    assert http(gw.port, "GET", "/plain/x").status == 200
    gw.stop()
    raw = (d / "access.log.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b", raw[:20]
    lines = gzip.decompress(raw).decode().splitlines()
    assert lines == ["GET /r%d HTTP/1.1 200" % i for i in range(50)]
    assert (d / "plain.log").read_text() == "GET /plain/x HTTP/1.1 200\n"


@pytest.mark.parametrize("line,words", [
    ("access_log x.log combined gzip=10;", 'invalid compression level "10"'),
    ("access_log x.log combined gzip=;", 'invalid compression level ""'),
    ("access_log x.log combined gzipx;", 'invalid parameter "gzipx"'),
    ("access_log x.log combined flush=1s;", 'no buffer is defined for access_log "x.log"'),
])
def test_access_log_gzip_errors(tmp_path, line, words):
    rc, out, path = _check(tmp_path, "http {\n    %s\n}\n" % line)
    assert rc == 1, out
    assert "in %s:2" % path in out, out
    assert words in out, out


FRAMING_CONF = """
http {
    proxy_cache_path @DIR@/cache keys_zone=z:1m;
    gzip on;
    gzip_min_length 0;
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@/html;
        location /c/ { proxy_pass http://127.0.0.1:@GW@/; proxy_cache z; proxy_cache_valid 200 1m; }
    }
}
"""


def _chunks(port, target):
    """The chunk sizes of a gzip answer, read off the wire."""
    import socket
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: gzip\r\n\r\n" % target.encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Content-Encoding: gzip" in head and b"Transfer-Encoding: chunked" in head, head
    sizes = []
    while True:
        line, body = body.split(b"\r\n", 1)
        n = int(line, 16)
        sizes.append(n)
        body = body[n + 2:]
        if n == 0:
            return sizes


def test_small_answer_is_one_chunk(portvakt, nginx, tmp_path, port):
    """A small compressed answer leaves in one piece, as NGINX's gzip
    passes on full buffers and the rest at the end: a static file, a
    cached entry (MISS, then HIT), its gzip header not sent apart."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    seen = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        d = tmp_path / name
        (d / "html").mkdir(parents=True)
        (d / "html" / "t.html").write_bytes(b"SEE-THIS" * 100)
        gw = factory(FRAMING_CONF, GW=port(), DIR=str(d))
        seen[name] = [_chunks(gw.port, t) for t in ("/t.html", "/c/t.html", "/c/t.html")]
    assert seen["portvakt"] == seen["nginx"], seen
    assert all(len(c) == 2 for c in seen["portvakt"]), seen


SUB_CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@;
        location /part { gunzip on; proxy_pass http://127.0.0.1:@UP@; }
        location /raw { proxy_pass http://127.0.0.1:@UP@; }
        location /p.html { ssi on; }
        location /q.html { ssi on; }
    }
}
"""


def test_gunzip_in_a_subrequest(portvakt, nginx, tmp_path, port):
    """An SSI include of a gzip part is decoded with gunzip on (NGINX's
    gzip_ok declines for a subrequest, whatever the client takes), and
    left as it is without it."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    seen = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        d = tmp_path / name
        d.mkdir()
        (d / "p.html").write_bytes(b'[<!--#include virtual="/part" -->]')
        (d / "q.html").write_bytes(b'[<!--#include virtual="/raw" -->]')
        up = EchoUpstream(handler=lambda req: Reply(headers=[("Content-Type", "text/plain"),
                                                            ("Content-Encoding", "gzip")], body=GZJSON))
        try:
            gw = factory(SUB_CONF, GW=port(), UP=up.port, DIR=str(d))
            seen[name] = [(r.status, r.header("Content-Encoding"), r.body) for r in
                          (http(gw.port, "GET", t, headers=h) for t in ("/p.html", "/q.html") for h in ([], GZ))]
        finally:
            up.stop()
    assert seen["portvakt"] == seen["nginx"]
    assert seen["portvakt"][0] == (200, None, b"[" + JSON + b"]")
    assert seen["portvakt"][1] == (200, None, b"[" + JSON + b"]")
    assert seen["portvakt"][2][2] == b"[" + GZJSON + b"]"
