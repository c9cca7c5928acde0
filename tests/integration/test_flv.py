"""flv (NGINX's flv module): a location with `flv;` serves a file with
`?start=N` as the 13-byte FLV header followed by the file from byte N
(the "start" argument; one that is malformed or not below the size
serves the whole file), with ranges over that body and an ETag from its
length, and the file whole without start; nested locations do not
inherit it. Every request goes to portvakt and to
NGINX on the same files and config and the answers are compared
(status, fields without Date and Server, body bytes).
"""

import os

import pytest

from conftest import NGINX, ROOT, http

MIME = os.path.join(ROOT, "conf", "mime.types")

CONF = """
http {
    include @MIME@;
    server {
        listen 127.0.0.1:@GW@;
        root @DOC@;
        location /v/ { flv; }
        location /v/nested/ { }
        location /plain/ { }
    }
}
"""

DATA = b"".join(b"X%03dXXXXXX" % i for i in range(100))
HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"


def make_docroot(base):
    doc = base / "doc"
    for d in ("v", "v/nested", "plain"):
        (doc / d).mkdir(parents=True)
        (doc / d / "t.flv").write_bytes(DATA)
        os.utime(doc / d / "t.flv", (1700000000, 1700000000))
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
for loc in ("v", "v/nested", "plain"):
    for q in ("", "?start=100", "?start=0", "?start=999", "?start=1000", "?start=5000", "?start=abc",
              "?start=100&x=1", "?x=1&start=200", "?START=150", "?start=1x", "?xstart=300", "?start=", "?start=-5",
              "?start=99999999999999999999999"):
        REQUESTS.append(("GET", "/%s/t.flv%s" % (loc, q), []))
    for rg in ("bytes=0-9", "bytes=-10", "bytes=0-99", "bytes=5-20", "bytes=2000-"):
        REQUESTS.append(("GET", "/%s/t.flv?start=100" % loc, [("Range", rg)]))
    REQUESTS.append(("GET", "/%s/t.flv" % loc, [("Range", "bytes=0-9, 20-29")]))
    REQUESTS += [
        ("HEAD", "/%s/t.flv?start=100" % loc, []),
        ("GET", "/%s/t.flv?start=100" % loc, [("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT")]),
        ("GET", "/%s/missing.flv?start=100" % loc, []),
    ]


def seen(r):
    fields = sorted((k.lower(), v) for k, v in r.headers if k.lower() not in ("date", "server"))
    body = r.body
    if b"<center>" in body:  # an error page names its server
        body = b"PAGE %d" % r.status
        fields = [f for f in fields if f[0] != "content-length"]
    if b"--00000" in body or r.status == 206 and b"multipart" in (r.header("Content-Type") or "").encode():
        # the boundary differs; the parts are compared through their ranges
        fields = [f for f in fields if f[0] not in ("content-type", "content-length")]
        body = b"MULTIPART %d" % len(body)
    return r.status, fields, body


@pytest.mark.parametrize("method,target,headers", REQUESTS,
                         ids=["%s %s %s" % (m, t, h) for m, t, h in REQUESTS])
def test_same_as_nginx(pair, method, target, headers):
    ours, theirs = pair
    a = http(ours.port, method, target, headers=headers)
    b = http(theirs.port, method, target, headers=headers)
    assert seen(a) == seen(b)


def test_what_is_served(portvakt, port, tmp_path):
    """Anchors on portvakt alone: the header and the file from start."""
    doc = make_docroot(tmp_path)
    gw = portvakt(CONF, GW=port(), DOC=str(doc), MIME=MIME)
    r = http(gw.port, "GET", "/v/t.flv?start=100")
    assert r.status == 200
    assert r.body == HEADER + DATA[100:]
    assert r.header("Content-Length") == str(len(HEADER) + 900)
    assert r.header("ETag") == '"6553f100-391"'  # the length served: 913
    r = http(gw.port, "GET", "/v/t.flv?start=100", headers=[("Range", "bytes=10-19")])
    assert r.status == 206
    assert r.body == (HEADER + DATA[100:])[10:20]
    assert r.header("Content-Range") == "bytes 10-19/913"
    # several ranges over the header and the file: NGINX's range filter
    # cannot cut its in-memory header and closes the connection; portvakt
    # answers the parts
    r = http(gw.port, "GET", "/v/t.flv?start=100", headers=[("Range", "bytes=0-9, 20-29")])
    assert r.status == 206
    assert b"Content-Range: bytes 0-9/913\r\n\r\n" + HEADER[:10] in r.body
    assert b"Content-Range: bytes 20-29/913\r\n\r\n" + DATA[107:117] in r.body
    r = http(gw.port, "GET", "/plain/t.flv?start=100")
    assert r.body == DATA and r.header("ETag") is not None
    r = http(gw.port, "GET", "/v/nested/t.flv?start=100")
    assert r.body == DATA  # flv is not inherited
