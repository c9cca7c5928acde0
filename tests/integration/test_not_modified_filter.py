"""The not-modified filter on every 200 a main request answers, beside
NGINX on the same config: a `return 200` (with text or without), an
autoindex listing, error_page's =200 and a proxied response the cache may
not store. Without validators If-Match and If-Unmodified-Since fail
(412) and If-None-Match: * holds (304); other statuses and a proxied
answer go out as they are."""

import os

import pytest

from conftest import NGINX, EchoUpstream, Reply, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@;
        location = /r { return 200 "text\\n"; }
        location = /e { return 200; }
        location = /r204 { return 204; }
        location /d/ { autoindex on; }
        location = /tagged { add_header ETag '"x"'; return 200 "t\\n"; }
        location = /ep { error_page 404 =200 /r; return 404; }
        location = /ep404 { error_page 404 /r; return 404; }
        location = /p { proxy_pass http://127.0.0.1:@UP@; }
        location = /off { if_modified_since off; return 200 "text\\n"; }
    }
}
"""

HEADERS = [
    ("If-Match", "*"),
    ("If-Match", '"x"'),
    ("If-Match", '"a", "b"'),
    ("If-Unmodified-Since", "Thu, 01 Jan 2099 00:00:00 GMT"),
    ("If-Unmodified-Since", "not a date"),
    ("If-None-Match", "*"),
    ("If-None-Match", '"a"'),
    ("If-Modified-Since", "Thu, 01 Jan 1970 00:00:01 GMT"),
]
PATHS = ["/r", "/e", "/r204", "/d/", "/tagged", "/ep", "/ep404", "/p", "/off"]


def _seen(gw):
    out = []
    for path in PATHS:
        for name, value in HEADERS:
            r = http(gw.port, "GET", path, headers=[(name, value)])
            page = r.status == 412  # the error page names the server: its length differs
            out.append((path, name, value, r.status, r.header("Content-Type"),
                        None if page else r.header("Content-Length"), b"" if page else r.body))
    return out


def test_same_as_nginx(portvakt, nginx, port, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    seen = {}
    for name, factory in (("portvakt", portvakt), ("nginx", nginx)):
        d = tmp_path / name
        (d / "d").mkdir(parents=True)
        up = EchoUpstream(handler=lambda req: Reply(headers=[("Content-Type", "text/plain")], body=b"up\n"))
        try:
            gw = factory(CONF, GW=port(), UP=up.port, DIR=str(d))
            seen[name] = _seen(gw)
        finally:
            up.stop()
    diffs = [(a, b) for a, b in zip(seen["portvakt"], seen["nginx"]) if a != b]
    assert not diffs, diffs
    got = {(s[0], s[1], s[2]): s[3] for s in seen["portvakt"]}
    # anchors, so a filter that never answers cannot pass
    assert got[("/r", "If-Match", '"x"')] == 412
    assert got[("/e", "If-Unmodified-Since", "Thu, 01 Jan 2099 00:00:00 GMT")] == 412
    assert got[("/r", "If-None-Match", "*")] == 304
    assert got[("/d/", "If-Match", '"x"')] == 412
    assert got[("/ep", "If-None-Match", "*")] == 304
    assert got[("/ep404", "If-Match", '"x"')] == 404
    assert got[("/p", "If-Match", '"x"')] == 200
    assert got[("/r", "If-Match", "*")] == 200
