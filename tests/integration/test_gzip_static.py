"""gzip_static (NGINX's gzip_static module): a precompressed FILE.gz served
for FILE with Content-Encoding gzip, in its `on` (the client must take
gzip) and `always` forms, Vary with gzip_vary, gunzip decoding it for a
client that does not take gzip, ranges and validators of the .gz file.
Every request goes to portvakt and to NGINX on the same files and config,
and the answers are compared (status, fields without Date and Server,
body bytes as sent).
"""

import gzip
import os
import subprocess

import pytest

from conftest import NGINX, PORTVAKT, ROOT, http

MIME = os.path.join(ROOT, "conf", "mime.types")

CONF = """
http {
    include @MIME@;
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        location /on/ { gzip_static on; }
        location /vary/ { gzip_static on; gzip_vary on; }
        location /always/ { gzip_static always; }
        location /gunzip/ { gzip_static always; gunzip on; gzip_vary on; }
        location /both/ { gzip_static on; gzip on; gzip_types text/plain; gzip_vary on; }
        location /v10/ { gzip_static on; gzip_http_version 1.0; }
        location /dis/ { gzip_static on; gzip_disable "^Old"; }
        location /off/ { gzip_static off; }
    }
}
"""

TEXT = b"portvakt serves the precompressed file as NGINX does.\n" * 40
GZ = [("Accept-Encoding", "gzip")]


def make_docroot(base):
    doc = base / "doc"
    for d in ("on", "vary", "always", "gunzip", "both", "v10", "dis", "off"):
        (doc / d).mkdir(parents=True)
        (doc / d / "a.txt").write_bytes(TEXT)
        (doc / d / "a.txt.gz").write_bytes(gzip.compress(TEXT, mtime=0))
        (doc / d / "plain.txt").write_bytes(TEXT)
        (doc / d / "only.txt.gz").write_bytes(gzip.compress(b"only the gz\n", mtime=0))
        (doc / d / "dir.txt.gz").mkdir()
        (doc / d / "dir.txt").write_bytes(b"beside a directory named .gz\n")
        for name in ("a.txt", "a.txt.gz", "plain.txt", "only.txt.gz", "dir.txt"):
            os.utime(doc / d / name, (1700000000, 1700000000))
        os.utime(doc / d / "a.txt.gz", (1700000100, 1700000100))
    return doc


@pytest.fixture
def pair(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    doc = make_docroot(tmp_path)
    ours = portvakt(CONF, GW=port(), DOC=str(doc), MIME=MIME)
    theirs = nginx(CONF, GW=port(), DOC=str(doc), MIME=MIME)
    return ours, theirs


REQUESTS = []
for loc in ("on", "vary", "always", "gunzip", "both", "v10", "dis", "off"):
    for target in ("a.txt", "plain.txt", "only.txt", "dir.txt"):
        REQUESTS.append(("GET", "/%s/%s" % (loc, target), GZ, "HTTP/1.1"))
        REQUESTS.append(("GET", "/%s/%s" % (loc, target), [], "HTTP/1.1"))
    REQUESTS += [
        ("HEAD", "/%s/a.txt" % loc, GZ, "HTTP/1.1"),
        ("GET", "/%s/a.txt" % loc, [("Accept-Encoding", "gzip;q=0")], "HTTP/1.1"),
        ("GET", "/%s/a.txt" % loc, [("Accept-Encoding", "deflate, gzip;q=0.5")], "HTTP/1.1"),
        ("GET", "/%s/a.txt" % loc, GZ, "HTTP/1.0"),
        ("GET", "/%s/a.txt" % loc, GZ + [("Via", "1.1 proxy")], "HTTP/1.1"),
        ("GET", "/%s/a.txt" % loc, GZ + [("User-Agent", "Old/1")], "HTTP/1.1"),
        ("GET", "/%s/a.txt" % loc, GZ + [("Range", "bytes=0-9")], "HTTP/1.1"),
        ("GET", "/%s/a.txt" % loc, GZ + [("If-Modified-Since", "Tue, 14 Nov 2023 22:15:00 GMT")], "HTTP/1.1"),
        ("POST", "/%s/a.txt" % loc, GZ, "HTTP/1.1"),
    ]


def seen(r):
    fields = sorted((k.lower(), v) for k, v in r.headers if k.lower() not in ("date", "server"))
    body = r.body
    if r.header("Content-Encoding") == "gzip" and body:
        body = b"GZ " + gzip.decompress(body)  # the filter's header bytes may differ
    if b"<center>" in body:  # an error page names its server
        body = b"PAGE %d" % r.status
        fields = [f for f in fields if f[0] != "content-length"]
    return r.status, fields, body


@pytest.mark.parametrize("method,target,headers,version", REQUESTS,
                         ids=["%s %s %s %s" % (m, t, h, v) for m, t, h, v in REQUESTS])
def test_same_as_nginx(pair, method, target, headers, version):
    ours, theirs = pair
    a = http(ours.port, method, target, headers=headers, version=version)
    b = http(theirs.port, method, target, headers=headers, version=version)
    assert seen(a) == seen(b)


def test_what_is_served(portvakt, port, tmp_path):
    """Anchors on portvakt alone, so a handler that never finds the .gz
    file (or always serves it) cannot pass."""
    doc = make_docroot(tmp_path)
    gw = portvakt(CONF, GW=port(), DOC=str(doc), MIME=MIME)
    r = http(gw.port, "GET", "/on/a.txt", headers=GZ)
    assert r.status == 200 and r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == TEXT and r.header("Vary") is None
    assert r.header("Content-Length") == str(os.path.getsize(doc / "on" / "a.txt.gz"))
    r = http(gw.port, "GET", "/on/a.txt")
    assert r.status == 200 and r.header("Content-Encoding") is None and r.body == TEXT
    r = http(gw.port, "GET", "/vary/a.txt")
    assert r.body == TEXT and r.header("Vary") == "Accept-Encoding"
    r = http(gw.port, "GET", "/vary/plain.txt")
    assert r.body == TEXT and r.header("Vary") is None
    r = http(gw.port, "GET", "/always/a.txt")
    assert r.header("Content-Encoding") == "gzip" and gzip.decompress(r.body) == TEXT
    r = http(gw.port, "GET", "/gunzip/a.txt")
    assert r.header("Content-Encoding") is None and r.body == TEXT
    r = http(gw.port, "GET", "/on/only.txt")
    assert r.status == 404
    r = http(gw.port, "GET", "/always/only.txt")
    assert r.status == 200 and gzip.decompress(r.body) == b"only the gz\n"
    r = http(gw.port, "GET", "/always/dir.txt")
    assert r.status == 200 and r.body == b"beside a directory named .gz\n"


@pytest.mark.parametrize("value", ["yes", "on off"])
def test_config_errors(tmp_path, value):
    path = tmp_path / "gw.conf"
    path.write_text("http { server { listen 127.0.0.1:1; location / { gzip_static %s; } } }\n" % value)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert ("invalid value \"yes\"" if value == "yes" else "invalid number of arguments") in p.stderr, p.stderr
