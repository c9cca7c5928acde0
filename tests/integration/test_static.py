"""Static files (NGINX's static, index, autoindex and try_files code, the
range and not-modified filters): root, alias (prefix and regex with
captures), index, try_files, types, default_type, ranges, validators,
autoindex, the directory redirect and the 403/404 choices. Every request
goes to portvakt and to NGINX on the same config and the same files, and
the answers are compared; hostile paths are checked against portvakt alone.
"""

import os
import re

import pytest

from conftest import NGINX, ROOT, Client, http, raw

MIME = os.path.join(ROOT, "conf", "mime.types")

CONF = """
http {
    include @MIME@;
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        location / { }
        location /list/ { autoindex on; }
        location /json/ { alias @DOC@/list/; autoindex on; autoindex_format json; }
        location /xml/ { alias @DOC@/list/; autoindex on; autoindex_format xml; }
        location /jsonp/ { alias @DOC@/list/; autoindex on; autoindex_format jsonp; }
        location /approx/ { alias @DOC@/list/; autoindex on; autoindex_exact_size off; }
        location /al/ { alias @DOC@/sub/; }
        location /alnoslash { alias @DOC@/sub; }
        location ~ ^/re/(\\w+)/(.*)$ { alias @DOC@/$1/$2; }
        location /tf/ { try_files $uri $uri/ /tf/fallback.txt; }
        location /tf404/ { try_files $uri =404; }
        location /tfdir/ { try_files $uri/ =403; }
        location /tfargs/ { try_files /nothing /echo.txt?from=tf; }
        location /tfkeep/ { try_files /nothing /argsout; }
        location /idxargs/ { index /argsout; }
        location = /argsout { return 200 "args=$args|$is_args\n"; }
        location /idx/ { index missing.html other.html; }
        location /absidx/ { index /abs.txt; }
        location /types/ { types { text/x-test tst; } default_type application/x-dflt; }
        location /noetag/ { etag off; alias @DOC@/; }
        location /imsbefore/ { if_modified_since before; alias @DOC@/; }
        location /imsoff/ { if_modified_since off; alias @DOC@/; }
        location /onerange/ { max_ranges 1; alias @DOC@/; }
        location /norange/ { max_ranges 0; alias @DOC@/; }
        location /addlm/ { add_header Last-Modified "Mon, 28 Sep 1970 06:00:00 GMT"; alias @DOC@/; }
        location /nolm/ { add_header Last-Modified ""; alias @DOC@/; }
        location /addetag/ { add_header ETag '"mine"'; alias @DOC@/; }
        location /quiet/ { log_not_found off; }
        location /vars/ { return 200 "$request_filename|$document_root|$realpath_root\n"; }
        location /avars/ { alias @DOC@/sub/; return 200 "$request_filename|$document_root|$realpath_root\n"; }
        location ~ ^/rvars/(\\w+)$ { alias @DOC@/$1.txt; return 200 "$request_filename|$document_root\n"; }
        location /relroot/ { root html/..; return 200 "$request_filename|$document_root\n"; }
        location /sync/ { aio off; alias @DOC@/; autoindex on; try_files $uri $uri/ =404; }
        location /sf/ { sendfile on; sendfile_max_chunk 16k; alias @DOC@/; }
        location /sfpush/ { sendfile on; tcp_nopush on; alias @DOC@/; }
        location /switches/ {
            alias @DOC@/;
            sendfile on; sendfile_max_chunk 64k; tcp_nopush on; directio off; aio threads;
            types_hash_max_size 2048; types_hash_bucket_size 64;
            open_file_cache max=100 inactive=20s; open_file_cache_valid 30s;
            open_file_cache_min_uses 2; open_file_cache_errors on;
        }
    }
}
"""

BIG = bytes((i * 7 + i // 251) & 0xFF for i in range(300000))


def make_docroot(base):
    doc = base / "doc"
    (doc / "sub").mkdir(parents=True)
    (doc / "dir sp\u00e9").mkdir()  # its redirect's Location is escaped, as NGINX does it
    (doc / "list" / "inner").mkdir(parents=True)
    (doc / "idx").mkdir()
    (doc / "empty").mkdir()
    (doc / "tf").mkdir()
    (doc / "tf" / "d").mkdir()
    (doc / "tfdir").mkdir()
    (doc / "types").mkdir()
    (doc / "quiet").mkdir()
    files = {
        "index.html": b"<p>root index</p>\n",
        "hello.txt": b"hello, world\n",
        "page.HTML": b"<b>upper</b>\n",
        "noext": b"no extension\n",
        "style.css": b"body{}\n",
        "data.json": b'{"a":1}\n',
        "pic.png": b"\x89PNG....\n",
        "big.bin": BIG,
        "echo.txt": b"echo\n",
        "abs.txt": b"absolute index\n",
        "empty.txt": b"",
        "sub/a.txt": b"alias a\n",
        "sub/index.html": b"sub index\n",
        "list/one.txt": b"1\n",
        "list/two words.txt": b"22\n",
        "list/<odd>&\"name\".txt": b"333\n",
        "list/" + "n" * 60 + ".txt": b"x" * 20000,
        "list/.hidden": b"h\n",
        "idx/other.html": b"other index\n",
        "tf/real.txt": b"real\n",
        "tf/fallback.txt": b"fallback\n",
        "tf/d/index.html": b"tf dir index\n",
        "types/f.tst": b"test type\n",
        "types/f.unknown": b"unknown\n",
        "types/f.html": b"html here\n",
    }
    for name, data in files.items():
        p = doc / name
        p.write_bytes(data)
        os.utime(p, (1700000000, 1700000000))
    for d in ("list", "list/inner"):
        os.utime(doc / d, (1700000000, 1700000000))
    return doc


@pytest.fixture
def pair(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    doc = make_docroot(tmp_path)
    subs = dict(DOC=str(doc), MIME=MIME)
    ours = portvakt(CONF, GW=port(), **subs)
    theirs = nginx(CONF, GW=port(), **subs)
    return ours, theirs, doc


LM = "Tue, 14 Nov 2023 22:13:20 GMT"   # 1700000000
ETAG = '"6553f100-d"'                  # hello.txt: 13 bytes

REQUESTS = [
    ("GET", "/hello.txt", []),
    ("HEAD", "/hello.txt", []),
    ("GET", "/", []),
    ("GET", "/index.html", []),
    ("GET", "/page.HTML", []),
    ("GET", "/noext", []),
    ("GET", "/style.css", []),
    ("GET", "/data.json", []),
    ("GET", "/pic.png", []),
    ("GET", "/big.bin", []),
    ("GET", "/empty.txt", []),
    ("GET", "/missing.txt", []),
    ("GET", "/missing/", []),
    ("GET", "/sub", []),
    ("GET", "/sub?x=1", []),
    ("GET", "/dir%20sp%C3%A9", []),
    ("GET", "/dir%20sp%C3%A9?a=b", []),
    ("GET", "/empty/", []),
    ("POST", "/hello.txt", []),
    ("DELETE", "/hello.txt", []),
    ("PUT", "/empty/", []),
    ("GET", "/hello.txt/", []),
    ("GET", "/hello.txt/x", []),
    # alias
    ("GET", "/al/a.txt", []),
    ("GET", "/al/", []),
    ("GET", "/al", []),
    ("GET", "/alnoslash/a.txt", []),
    ("GET", "/re/sub/a.txt", []),
    ("GET", "/re/list/one.txt", []),
    ("GET", "/re/sub/none", []),
    # index
    ("GET", "/idx/", []),
    ("GET", "/idx", []),
    ("GET", "/absidx/", []),
    # try_files
    ("GET", "/tf/real.txt", []),
    ("GET", "/tf/none", []),
    ("GET", "/tf/d", []),
    ("GET", "/tf/d/", []),
    ("GET", "/tf404/none", []),
    ("GET", "/tfdir/", []),
    ("GET", "/tfdir/x", []),
    ("GET", "/tfargs/x", []),
    # try_files' last URI drops the request's arguments, an index keeps them
    ("GET", "/tfkeep/x?a=1", []),
    ("GET", "/idxargs/?a=1", []),
    # types
    ("GET", "/types/f.tst", []),
    ("GET", "/types/f.unknown", []),
    ("GET", "/types/f.html", []),
    # validators
    ("GET", "/hello.txt", [("If-Modified-Since", LM)]),
    ("GET", "/hello.txt", [("If-Modified-Since", "Tue, 14 Nov 2023 22:13:21 GMT")]),
    ("GET", "/hello.txt", [("If-Modified-Since", "Tue, 14 Nov 2023 22:13:19 GMT")]),
    ("GET", "/hello.txt", [("If-Modified-Since", "garbage")]),
    ("GET", "/imsbefore/hello.txt", [("If-Modified-Since", "Tue, 14 Nov 2023 22:13:21 GMT")]),
    ("GET", "/imsoff/hello.txt", [("If-Modified-Since", LM)]),
    ("GET", "/hello.txt", [("If-None-Match", ETAG)]),
    ("GET", "/hello.txt", [("If-None-Match", 'W/' + ETAG)]),
    ("GET", "/hello.txt", [("If-None-Match", '"x", ' + ETAG)]),
    ("GET", "/hello.txt", [("If-None-Match", '"other"')]),
    ("GET", "/hello.txt", [("If-None-Match", "*")]),
    ("GET", "/hello.txt", [("If-None-Match", '"other"'), ("If-Modified-Since", LM)]),
    ("GET", "/hello.txt", [("If-Match", ETAG)]),
    ("GET", "/hello.txt", [("If-Match", '"other"')]),
    ("GET", "/hello.txt", [("If-Unmodified-Since", LM)]),
    ("GET", "/hello.txt", [("If-Unmodified-Since", "Tue, 14 Nov 2023 22:13:19 GMT")]),
    ("GET", "/noetag/hello.txt", [("If-None-Match", ETAG)]),
    ("GET", "/hello.txt", [("If-Modified-Since", "Tuesday, 14-Nov-23 22:13:20 GMT")]),
    ("GET", "/hello.txt", [("If-Modified-Since", "Tue Nov 14 22:13:20 2023")]),
    # ranges
    ("GET", "/hello.txt", [("Range", "bytes=0-4")]),
    ("GET", "/hello.txt", [("Range", "bytes=7-")]),
    ("GET", "/hello.txt", [("Range", "bytes=-6")]),
    ("GET", "/hello.txt", [("Range", "bytes=-100")]),
    ("GET", "/hello.txt", [("Range", "bytes=5-100")]),
    ("GET", "/hello.txt", [("Range", "bytes=13-")]),
    ("GET", "/hello.txt", [("Range", "bytes=20-30")]),
    ("GET", "/hello.txt", [("Range", "bytes=x-y")]),
    ("GET", "/hello.txt", [("Range", "items=0-1")]),
    ("GET", "/hello.txt", [("Range", "bytes=0-0,-1")]),
    ("GET", "/hello.txt", [("Range", "bytes=0-1, 3-4 ,6-")]),
    ("GET", "/hello.txt", [("Range", "bytes=0-10,2-12")]),
    ("GET", "/hello.txt", [("Range", "bytes=0-")]),
    ("GET", "/hello.txt", [("Range", "bytes=0-4"), ("If-Range", ETAG)]),
    ("GET", "/hello.txt", [("Range", "bytes=0-4"), ("If-Range", '"other"')]),
    ("GET", "/hello.txt", [("Range", "bytes=0-4"), ("If-Range", LM)]),
    ("GET", "/hello.txt", [("Range", "bytes=0-4"), ("If-Range", "Tue, 14 Nov 2023 22:13:21 GMT")]),
    # If-Range is held to the validators add_header made (range_if_range.t)
    ("GET", "/addlm/hello.txt", [("Range", "bytes=0-4"), ("If-Range", "Mon, 28 Sep 1970 06:00:00 GMT")]),
    ("GET", "/addlm/hello.txt", [("Range", "bytes=0-4"), ("If-Range", LM)]),
    ("GET", "/nolm/hello.txt", [("Range", "bytes=0-4"), ("If-Range", LM)]),
    ("GET", "/addetag/hello.txt", [("Range", "bytes=0-4"), ("If-Range", '"mine"')]),
    ("GET", "/addetag/hello.txt", [("Range", "bytes=0-4"), ("If-Range", ETAG)]),
    ("HEAD", "/hello.txt", [("Range", "bytes=0-4")]),
    ("GET", "/big.bin", [("Range", "bytes=1000-200000")]),
    ("GET", "/big.bin", [("Range", "bytes=0-9,100000-100009,299990-")]),
    ("GET", "/onerange/hello.txt", [("Range", "bytes=0-1,3-4")]),
    ("GET", "/onerange/hello.txt", [("Range", "bytes=0-1")]),
    ("GET", "/norange/hello.txt", [("Range", "bytes=0-1")]),
    ("GET", "/empty.txt", [("Range", "bytes=0-1")]),
    # autoindex
    ("GET", "/list/", []),
    ("HEAD", "/list/", []),
    ("GET", "/list/inner/", []),
    ("GET", "/json/", []),
    ("GET", "/approx/", []),
    ("GET", "/xml/", []),
    ("GET", "/jsonp/", []),
    ("GET", "/jsonp/?callback=cb.x_1", []),
    ("GET", "/jsonp/?a=1&callback=bad-name", []),
    ("GET", "/quiet/none", []),
    # variables
    ("GET", "/vars/a/b.txt", []),
    ("GET", "/avars/x.txt", []),
    ("GET", "/rvars/hello", []),
    ("GET", "/relroot/x", []),
    # aio off: the same answers, the files read on the loop
    ("GET", "/sync/hello.txt", []),
    ("GET", "/sync/big.bin", [("Range", "bytes=0-9,100000-100009,299990-")]),
    ("GET", "/sync/list/", []),
    ("GET", "/sync/none", []),
    ("GET", "/sync/sub", []),
    # sendfile: the same answers, the bytes sent from the file by the kernel
    ("GET", "/sf/big.bin", []),
    ("GET", "/sf/hello.txt", []),
    ("GET", "/sf/empty.txt", []),
    ("HEAD", "/sf/big.bin", []),
    ("GET", "/sf/big.bin", [("Range", "bytes=0-9,100000-100009,299990-")]),
    ("GET", "/sf/big.bin", [("Range", "bytes=1000-200000")]),
    ("GET", "/sfpush/big.bin", []),
    ("GET", "/sfpush/big.bin", [("Range", "bytes=5-")]),
    # the other switches leave the answer as it is
    ("GET", "/switches/hello.txt", []),
    ("GET", "/switches/big.bin", [("Range", "bytes=5-")]),
]

BOUNDARY = re.compile(rb"\d{20}")


def normalised(r, port, server):
    """Status, fields and body without what differs by nature: Date,
    Server, the product token in generated pages, ports, the multipart
    boundary and each server's own working directory (its prefix)."""
    fields = []
    for name, value in r.headers:
        n = name.lower()
        if n in ("date", "server"):
            continue
        v = value.replace(str(port), "PORT")
        v = BOUNDARY.sub(b"B", v.encode()).decode()
        fields.append((n, v))
    body = BOUNDARY.sub(b"B", r.body).replace(str(server.workdir).encode(), b"PREFIX")
    body = re.sub(rb"(nginx|portvakt)(/[\d.]+)?", b"SERVER", body)
    if b"SERVER" in body or b"PREFIX" in body:
        fields = [f for f in fields if f[0] != "content-length"]
    return r.status, sorted(fields), body


@pytest.mark.parametrize("method,target,headers", REQUESTS,
                         ids=["%s %s %s" % (m, t, h) for m, t, h in REQUESTS])
def test_same_as_nginx(pair, method, target, headers):
    ours, theirs, _ = pair
    a = http(ours.port, method, target, headers=headers)
    b = http(theirs.port, method, target, headers=headers)
    assert normalised(a, ours.port, ours) == normalised(b, theirs.port, theirs)


def test_whole_file_and_ranges_are_the_bytes(pair):
    ours, _, doc = pair
    r = http(ours.port, "GET", "/big.bin")
    assert r.status == 200 and r.body == BIG
    r = http(ours.port, "GET", "/big.bin", headers=[("Range", "bytes=1000-200000")])
    assert r.status == 206 and r.body == BIG[1000:200001]
    assert r.header("Content-Range") == "bytes 1000-200000/%d" % len(BIG)


def evict(path):
    """Drop a file's pages from the page cache (clean pages only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_uncached_and_cached_bytes(pair):
    """aio threads reads in place what the page cache holds and on the
    pool what it does not: a file out of the cache, then in it, then
    half in it, gives the same bytes each time."""
    ours, _, doc = pair
    for _ in range(2):
        evict(doc / "big.bin")
        r = http(ours.port, "GET", "/big.bin")
        assert r.status == 200 and r.body == BIG
        r = http(ours.port, "GET", "/big.bin")
        assert r.status == 200 and r.body == BIG
    evict(doc / "big.bin")
    r = http(ours.port, "GET", "/big.bin", headers=[("Range", "bytes=0-99999")])
    assert r.status == 206 and r.body == BIG[:100000]
    r = http(ours.port, "GET", "/big.bin")
    assert r.status == 200 and r.body == BIG


def test_keepalive_after_each_kind(pair):
    ours, _, _ = pair
    with Client(ours.port) as c:
        for target, hdrs, status in (("/hello.txt", [], 200), ("/big.bin", [("Range", "bytes=0-1,5-6")], 206),
                                     ("/hello.txt", [("If-None-Match", ETAG)], 304),
                                     ("/hello.txt", [("Range", "bytes=99-")], 416),
                                     ("/list/", [], 200), ("/missing", [], 404), ("/sub", [], 301)):
            c.request("GET", target, hdrs)
            r = c.read_response("GET")
            assert r.status == status, (target, r)


@pytest.mark.parametrize("path", ["/big.bin", "/sf/big.bin", "/sfpush/big.bin"])
def test_slow_reader_gets_every_byte(pair, path):
    ours, _, _ = pair
    with Client(ours.port) as c:
        c.request("GET", path)
        r = c.read_response("GET")
    assert r.body == BIG
    # a client that reads late, two answers in a row on one connection
    import socket
    import time
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", ours.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode() * 2)
    time.sleep(0.5)
    data = b""
    s.settimeout(30)
    while data.count(BIG) < 2:
        chunk = s.recv(65536)
        assert chunk, data[:200]
        data += chunk
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == 2


# ---- hostile paths (portvakt alone) ----------------------------------------


HOSTILE = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@/pub;
        location / { }
        location /al { alias @DOC@/pub/dir/; }
        location /re/ { rewrite ^/re/(.*)$ /$1 break; }
        location /nolinks/ { disable_symlinks on; }
        location /ownlinks/ { disable_symlinks if_not_owner; alias @DOC@/pub/nolinks/; }
        location /trylinks/ { disable_symlinks on; alias @DOC@/pub/nolinks/; try_files $uri $uri.txt =404; }
        location /iflinks/ {
            disable_symlinks on; alias @DOC@/pub/nolinks/;
            if (-f $request_filename) { return 204; }
        }
        location ~ ^/ownslash/(.+/)$ { disable_symlinks if_not_owner; alias @DOC@/pub/nolinks/$1; }
        location /from/ { disable_symlinks on from=$document_root; alias @DOC@/pub/dirlink/; }
    }
}
"""


@pytest.fixture
def hostile(portvakt, port, tmp_path):
    doc = tmp_path / "h"
    (doc / "pub" / "dir").mkdir(parents=True)
    (doc / "pub" / "nolinks").mkdir(parents=True)
    (doc / "secret.txt").write_bytes(b"SECRET\n")
    (doc / "pub" / "ok.txt").write_bytes(b"ok\n")
    (doc / "pub" / "dir" / "in.txt").write_bytes(b"in\n")
    (doc / "pub" / "nolinks" / "plain.txt").write_bytes(b"plain\n")
    os.symlink(str(doc / "secret.txt"), str(doc / "pub" / "nolinks" / "link.txt"))
    os.symlink(str(doc / "pub" / "ok.txt"), str(doc / "pub" / "link-in.txt"))
    os.symlink("plain.txt", str(doc / "pub" / "nolinks" / "plain"))
    os.symlink("dir", str(doc / "pub" / "dirlink"))
    gw = portvakt(HOSTILE, GW=port(), DOC=str(doc))
    return gw


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2e%2e%2fsecret.txt",
    "/dir/../../secret.txt", "/dir/..%2f..%2fsecret.txt", "/al../secret.txt", "/al..%2fsecret.txt",
    "/al/../../secret.txt", "/re/..%2f..%2fsecret.txt", "/ok.txt%00.png", "/ok.txt\\..\\..\\secret.txt",
    "/.%2e/secret.txt", "/re/%2e%2e/secret.txt",
])
def test_nothing_outside_the_root(hostile, target):
    r, _ = raw(hostile.port, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"SECRET" not in r.body, (target, r)
    assert r.status in (400, 403, 404), (target, r)


def test_symlinks(hostile):
    assert http(hostile.port, "GET", "/link-in.txt").body == b"ok\n"  # followed by default
    assert http(hostile.port, "GET", "/nolinks/plain.txt").body == b"plain\n"
    r = http(hostile.port, "GET", "/nolinks/link.txt")
    assert r.status == 403 and b"SECRET" not in r.body
    # the link and its target have the same owner here
    assert http(hostile.port, "GET", "/ownlinks/link.txt").body == b"SECRET\n"


def test_symlinks_in_file_tests(hostile):
    """As NGINX: try_files and the rewrite module's file tests see a link
    refused by disable_symlinks as absent; a file is not found with a
    trailing slash; from= leaves the path up to it unchecked."""
    # /trylinks/plain is a link: passed over for plain.txt
    assert http(hostile.port, "GET", "/trylinks/plain").body == b"plain\n"
    # -f is false for the link, so the static handler refuses it (403)
    assert http(hostile.port, "GET", "/iflinks/link.txt").status == 403
    assert http(hostile.port, "GET", "/iflinks/plain.txt").status == 204
    assert http(hostile.port, "GET", "/ownslash/plain/").status == 404
    # the link dirlink is in the document root itself, which from= names
    assert http(hostile.port, "GET", "/from/in.txt").body == b"in\n"


def test_nul_and_encoded_slash(hostile):
    r, _ = raw(hostile.port, b"GET /ok.txt%00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 400
    # an encoded slash is a slash: /dir%2fin.txt is /dir/in.txt, as in NGINX
    assert http(hostile.port, "GET", "/dir%2fin.txt").body == b"in\n"


CHECKS = [
    ("location / { root /a; alias /b; }", "\"alias\" directive is duplicate, \"root\" directive was specified earlier"),
    ("location / { root /a; root /b; }", "\"root\" directive is duplicate"),
    ("root /a; location / { alias /b; } alias /c;", "\"alias\" directive is not allowed here"),
    ("location / { root $document_root/x; }", "the $document_root variable cannot be used in the \"root\" directive"),
    ("location / { try_files /a; }", "invalid number of arguments in \"try_files\" directive"),
    ("location / { try_files /a =abc; }", "invalid code \"=abc\""),
    ("location / { if_modified_since sometimes; }", "invalid value \"sometimes\""),
    ("location / { autoindex_format yaml; }", "invalid value \"yaml\""),
    ("location / { aio threads=pool1; }", "unknown thread pool \"pool1\""),
    ("location / { open_file_cache inactive=10s; }", "\"open_file_cache\" must have the \"max\" parameter"),
    ("location / { types { text/plain; } }", "invalid number of arguments"),
    ("location / { disable_symlinks maybe; }", "invalid parameter \"maybe\""),
]


@pytest.mark.parametrize("block,message", CHECKS)
def test_config_errors(tmp_path, block, message):
    import subprocess
    from conftest import PORTVAKT
    path = tmp_path / "gw.conf"
    path.write_text("http { server { listen 127.0.0.1:1; %s } }\n" % block)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr


# ---- over TLS and HTTP/2 (portvakt alone) ----------------------------------------

PROTO = """
http {
    server {
        listen 127.0.0.1:@H1@;
        listen 127.0.0.1:@H2C@ http2;
        listen 127.0.0.1:@TLS@ ssl;
        http2 on;
        ssl_certificate @CRT@;
        ssl_certificate_key @KEY@;
        root @DOC@;
        location / { }
        location /list/ { autoindex on; }
    }
}
"""


@pytest.fixture
def proto(portvakt, port, tmp_path):
    from tls_pki import Pki
    pki = Pki(tmp_path / "pki")
    crt, key = pki.issue("srv", "localhost", sans=["localhost"])
    doc = make_docroot(tmp_path)
    ports = dict(H1=port(), H2C=port(), TLS=port())
    gw = portvakt(PROTO, DOC=str(doc), CRT=crt, KEY=key, **ports)
    return gw, ports


def curl(*args):
    import subprocess
    p = subprocess.run(["curl", "-s", "-k", "-o", "-", "-w", "\n%{http_version} %{http_code}"] + list(args),
                       capture_output=True, timeout=30)
    body, _, tail = p.stdout.rpartition(b"\n")
    return body, tail.decode()


@pytest.mark.parametrize("how", ["h1", "h2c", "tls", "h2-tls"])
def test_over_every_protocol(proto, how):
    _, ports = proto
    base, flags, ver = {
        "h1": ("http://127.0.0.1:%d" % ports["H1"], [], "1.1"),
        "h2c": ("http://127.0.0.1:%d" % ports["H2C"], ["--http2-prior-knowledge"], "2"),
        "tls": ("https://localhost:%d" % ports["TLS"], ["--http1.1"], "1.1"),
        "h2-tls": ("https://localhost:%d" % ports["TLS"], ["--http2"], "2"),
    }[how]
    body, tail = curl(*flags, base + "/big.bin")
    assert tail == ver + " 200" and body == BIG
    body, tail = curl(*flags, "-r", "1000-200000", base + "/big.bin")
    assert tail == ver + " 206" and body == BIG[1000:200001]
    body, tail = curl(*flags, "-r", "0-1,5-6", base + "/hello.txt")
    assert tail == ver + " 206" and b"multipart" not in body and b"\r\n\r\nhe\r\n" in body
    body, tail = curl(*flags, "-H", "If-None-Match: " + ETAG, base + "/hello.txt")
    assert tail == ver + " 304" and body == b""
    body, tail = curl(*flags, base + "/list/")
    assert tail == ver + " 200" and b'<a href="one.txt">one.txt</a>' in body
    body, tail = curl(*flags, base + "/sub")
    assert tail == ver + " 301"
    body, tail = curl(*flags, base + "/missing")
    assert tail == ver + " 404"


# ---- open_file_cache (beside NGINX) ------------------------------------------------

OFC = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        location /c/ { open_file_cache max=10 inactive=60s; open_file_cache_valid 60s;
                       open_file_cache_errors on; }
        location /m/ { alias @DOC@/c/; open_file_cache max=10; open_file_cache_min_uses 3; }
        location /n/ { alias @DOC@/c/; }
    }
}
"""


@pytest.mark.parametrize("kind", ["portvakt", "nginx"])
def test_open_file_cache(portvakt, nginx, port, tmp_path, kind):
    if kind == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    doc = tmp_path / ("doc-" + kind)
    (doc / "c").mkdir(parents=True)
    (doc / "c" / "f.txt").write_bytes(b"first\n")
    gw = (portvakt if kind == "portvakt" else nginx)(OFC, GW=port(), DOC=str(doc))
    assert http(gw.port, "GET", "/c/f.txt").body == b"first\n"
    assert http(gw.port, "GET", "/m/f.txt").body == b"first\n"
    assert http(gw.port, "GET", "/c/late.txt").status == 404
    os.unlink(str(doc / "c" / "f.txt"))
    (doc / "c" / "late.txt").write_bytes(b"late\n")
    # the cached descriptor is served while valid, and so is the cached error
    assert http(gw.port, "GET", "/c/f.txt").body == b"first\n"
    assert http(gw.port, "GET", "/c/late.txt").status == 404
    # used once of the three min_uses: nothing kept; no cache: the disk
    assert http(gw.port, "GET", "/m/f.txt").status == 404
    assert http(gw.port, "GET", "/n/f.txt").status == 404
    assert http(gw.port, "GET", "/n/late.txt").body == b"late\n"


AUTH = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        location / { auth_request /auth; try_files $uri =404; }
        location = /auth { internal; proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""


def test_auth_request_then_a_file(portvakt, port, tmp_path, upstream):
    from conftest import Reply
    up = upstream(reply=Reply(200, body=b""))
    doc = make_docroot(tmp_path)
    gw = portvakt(AUTH, GW=port(), UP=up.port, DOC=str(doc))
    with Client(gw.port) as c:
        for _ in range(3):
            c.request("GET", "/hello.txt")
            r = c.read_response("GET")
            assert r.status == 200 and r.body == b"hello, world\n"
        c.request("GET", "/missing.txt")
        assert c.read_response("GET").status == 404
    assert len(up.requests) == 4


AUTH_FILES = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        location / { }
        location /a/file/ { auth_request /hello.txt; alias @DOC@/; }
        location /a/missing/ { auth_request /missing.txt; alias @DOC@/; }
        location /a/dir/ { auth_request /sub; alias @DOC@/; }
        location /a/dirslash/ { auth_request /sub/; alias @DOC@/; }
        location /a/noindex/ { auth_request /list/; alias @DOC@/; }
        location /a/autoindex/ { auth_request /auto/; alias @DOC@/; }
        location /a/nodir/ { auth_request /nodir/; alias @DOC@/; }
        location /auto/ { alias @DOC@/list/; autoindex on; }
    }
}
"""


@pytest.mark.parametrize("target", ["/a/file/echo.txt", "/a/missing/echo.txt", "/a/dir/echo.txt",
                                    "/a/dirslash/echo.txt", "/a/noindex/echo.txt", "/a/autoindex/echo.txt",
                                    "/a/nodir/echo.txt"])
def test_auth_request_to_files_as_nginx(portvakt, nginx, port, tmp_path, target):
    """auth_request.t's "auth open static": a subrequest to a location
    serving files answers with the status serving it would have."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    doc = make_docroot(tmp_path)
    got = []
    for start in (portvakt, nginx):
        gw = start(AUTH_FILES, GW=port(), DOC=str(doc))
        r = http(gw.port, "GET", target)
        got.append((r.status, r.body if r.status == 200 else None))
    assert got[0] == got[1]


NOLOC = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        try_files $uri /echo.txt;
        location /only/ { return 200 "only\\n"; }
    }
}
"""


@pytest.mark.parametrize("target", ["/hello.txt", "/sub/", "/sub", "/nothing", "/only/x", "/list/"])
def test_no_location_serves_from_the_server(portvakt, nginx, port, tmp_path, target):
    """A URI no location matches is served with the server's settings
    (its root and its try_files), as NGINX does."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    doc = make_docroot(tmp_path)
    ours = portvakt(NOLOC, GW=port(), DOC=str(doc))
    theirs = nginx(NOLOC, GW=port(), DOC=str(doc))
    a, b = http(ours.port, "GET", target), http(theirs.port, "GET", target)
    assert normalised(a, ours.port, ours) == normalised(b, theirs.port, theirs)
