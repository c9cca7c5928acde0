"""The response-head directives (add_header, expires, server_tokens,
charset) and the proxied-field directives (proxy_hide_header,
proxy_pass_header, proxy_redirect, proxy_method,
proxy_pass_request_headers, proxy_set_body), as NGINX runs them.

Each test states what portvakt must answer; test_same_answers_as_nginx
runs the same config through NGINX and compares every answer (status,
the fields these directives touch, body with the product token named)
and what the upstream received.
"""

import os
import re
import subprocess
import time
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import NGINX, PORTVAKT, EchoUpstream, Reply, http

CONF = """
http {
    add_header X-Http "http-level";
    server {
        listen 127.0.0.1:@GW@;
        location /inherit { return 200 "inherit\\n"; }
        location /own {
            add_header X-Own "own $arg_v";
            add_header X-Always "yes" always;
            add_header X-Empty "$arg_nothing";
            return 200 "own\\n";
        }
        location /own404 {
            add_header X-Own "own";
            add_header X-Always "yes" always;
            return 404;
        }
        location /lm {
            add_header Last-Modified "";
            add_header ETag '"e2"';
            add_header Cache-Control "private";
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /exp/epoch { expires epoch; return 200 "e\\n"; }
        location /exp/max { expires max; return 200 "m\\n"; }
        location /exp/neg { expires -1; return 200 "n\\n"; }
        location /exp/zero { expires 0; return 200 "z\\n"; }
        location /exp/hour { expires 1h; return 200 "h\\n"; }
        location /exp/off { expires off; return 200 "o\\n"; }
        location /exp/var { expires $arg_e; return 200 "v\\n"; }
        location /exp/err { expires 1h; return 404; }
        location /exp/mod { expires modified +2h; proxy_pass http://127.0.0.1:@UP@; }
        location /exp/up { expires 30s; proxy_pass http://127.0.0.1:@UP@; }
        location /tok { server_tokens off; return 404; }
        location /tokon { return 404; }
        location /cs/ {
            charset utf-8;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /csret { charset utf-8; return 200 "x\\n"; }
        location /csredir { charset utf-8; return 302 /elsewhere; }
        location /cs404 { charset koi8-r; return 404; }
        location /hide/ {
            proxy_hide_header X-Secret;
            proxy_pass_header Server;
            proxy_pass_header X-Accel-Limit-Rate;
            proxy_pass http://127.0.0.1:@UP@;
        }
        location /plain/ { proxy_pass http://127.0.0.1:@UP@; }
        location /nest/ {
            proxy_hide_header X-Secret;
            proxy_pass http://127.0.0.1:@UP@;
            location /nest/in/ { proxy_pass_header X-Pad; proxy_pass http://127.0.0.1:@UP@; }
        }
        location /pd/ { proxy_pass_header Date; proxy_pass_header Server; proxy_pass http://127.0.0.1:@UP@; }
        location /rd/def/ { proxy_pass http://127.0.0.1:@UP@/inner/; }
        location /rd/off/ { proxy_pass http://127.0.0.1:@UP@/inner/; proxy_redirect off; }
        location /rd/text/ {
            proxy_pass http://127.0.0.1:@UP@/inner/;
            proxy_redirect http://backend.test/one/ /two/;
            proxy_redirect http://backend.test/ http://$host:1234/x/;
        }
        location /rd/re/ {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_redirect ~*^HTTP://re\\.test/(\\w+)/(.*)$ /re/$2/$1;
        }
        location /rd/both/ {
            proxy_pass http://127.0.0.1:@UP@/inner/;
            proxy_redirect default;
            proxy_redirect http://other.test/ /o/;
        }
        location /meth/ { proxy_method PUT; proxy_pass http://127.0.0.1:@UP@; }
        location /nohdr/ { proxy_pass_request_headers off; proxy_pass http://127.0.0.1:@UP@; }
        location /body/ {
            proxy_set_body "set-body $arg_x";
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
    server {
        listen 127.0.0.1:@GW@;
        server_name s2.test;
        add_header X-Srv "server";
        location / { return 200 "s2\\n"; }
        location /loc { add_header X-Loc "loc"; return 200 "loc\\n"; }
    }
}
"""

# what the upstream answers: fields from the query (h=Name:Value, repeated)
def answer(req):
    q = parse_qsl(urlsplit(req.target).query)
    headers = [tuple(v.split(":", 1)) for k, v in q if k == "h"]
    status = int(dict(q).get("s", "200"))
    return Reply(status=status, headers=headers, body=b"up\n")


LM = "Tue, 01 Dec 2026 10:00:00 GMT"

REQUESTS = [
    "/inherit", "/own?v=1", "/own404", "/lm?h=Last-Modified:" + LM.replace(" ", "%20") + "&h=ETag:e1",
    "/exp/epoch", "/exp/max", "/exp/neg", "/exp/zero", "/exp/off", "/exp/err",
    "/exp/var?e=epoch", "/exp/var?e=max", "/exp/var?e=off", "/exp/var?e=bogus", "/exp/var?e=1h",
    "/exp/up?h=Cache-Control:public&h=Cache-Control:x&h=Expires:never",
    "/tok", "/tokon",
    "/cs/a?h=Content-Type:text/html", "/cs/b?h=Content-Type:text/html;%20charset=UTF-8",
    "/cs/c?h=Content-Type:application/json", "/cs/d?h=Content-Type:text/html;%20charset=koi8-r",
    "/cs/e?h=Content-Type:text/html;%20q=1", "/cs/f?s=301&h=Content-Type:text/html&h=Location:/x",
    "/csret", "/csredir", "/cs404",
    "/hide/a?h=X-Secret:s&h=Server:up-server&h=X-Pad:p&h=X-Accel-Limit-Rate:100000&h=X-Accel-Expires:1",
    "/plain/a?h=X-Secret:s&h=Server:up-server&h=X-Pad:p&h=X-Accel-Limit-Rate:100000",
    "/nest/in/a?h=X-Secret:s&h=X-Pad:p", "/pd/a", "/pd/a?h=Server:up-server&h=Date:passed",
    "/rd/def/a?s=302&h=Location:http://127.0.0.1:UP/inner/b",
    "/rd/def/a?s=302&h=Location:http://127.0.0.1:UP/other",
    "/rd/def/a?h=Refresh:5;%20url=http://127.0.0.1:UP/inner/r",
    "/rd/off/a?s=302&h=Location:http://127.0.0.1:UP/inner/b",
    "/rd/text/a?s=301&h=Location:http://backend.test/one/x",
    "/rd/text/a?s=301&h=Location:http://backend.test/zz",
    "/rd/text/a?s=301&h=Location:HTTP://backend.test/zz",
    "/rd/re/a?s=302&h=Location:http://RE.test/abc/rest/of",
    "/rd/both/a?s=302&h=Location:http://127.0.0.1:UP/inner/q",
    "/rd/both/a?s=302&h=Location:http://other.test/p",
    "/meth/a", "/nohdr/a", "/body/a?x=1",
    "s2.test/", "s2.test/loc",
]

FIELDS = ("x-http", "x-own", "x-always", "x-empty", "x-srv", "x-loc", "last-modified", "etag",
          "cache-control", "expires", "content-type", "x-secret", "server", "x-pad",
          "x-accel-limit-rate", "x-accel-expires", "location", "refresh")


def start(factory, port):
    up = EchoUpstream(handler=answer)
    gw = factory(CONF, GW=port(), UP=up.port)
    return gw, up


def normalise(text, ports):
    for p, name in ports:
        text = text.replace(":%d" % p, ":" + name)
    return re.sub(r"(nginx|portvakt)(/[0-9.]+)?", "SERVER", text)


def observe(gw, up, target):
    n = len(up.requests)
    host = "hf.test"
    if not target.startswith("/"):
        host, target = target.split("/", 1)
        target = "/" + target
    ports = [(gw.port, "GW"), (up.port, "UP")]
    r = http(gw.port, "GET", target.replace(":UP", ":%d" % up.port), headers=[("X-Client", "c")],
             host=host)
    seen = {"status": r.status}
    for f in FIELDS:
        vals = r.header_all(f)
        if f == "expires" and vals and vals[0] not in ("Thu, 01 Jan 1970 00:00:01 GMT",
                                                       "Thu, 31 Dec 2037 23:55:55 GMT"):
            vals = ["<time>"]  # depends on the clock; checked on its own below
        seen[f] = [normalise(v, ports) for v in vals]
    seen["body"] = normalise(r.body.decode(errors="replace"), ports)
    dates = r.header_all("date")
    seen["date"] = dates if dates == ["passed"] else len(dates)
    if len(up.requests) > n:
        got = up.last()
        seen["upstream"] = (got.method, normalise(got.target, ports), got.header("X-Client"),
                            normalise(got.header("Host") or "", ports), got.body.decode(errors="replace"),
                            got.header("Content-Length"))
    return seen


@pytest.fixture
def hf(portvakt, port):
    gw, up = start(portvakt, port)
    yield gw, up
    up.stop()


def get(hf, target):
    return observe(*hf, target)


def test_add_header_inheritance(hf):
    assert get(hf, "/inherit")["x-http"] == ["http-level"]
    got = get(hf, "/own?v=1")
    assert (got["x-http"], got["x-own"], got["x-always"], got["x-empty"]) == ([], ["own 1"], ["yes"], [])
    got = get(hf, "s2.test/")
    assert (got["x-http"], got["x-srv"]) == ([], ["server"])
    got = get(hf, "s2.test/loc")
    assert (got["x-srv"], got["x-loc"]) == ([], ["loc"])


def test_add_header_always_on_errors(hf):
    got = get(hf, "/own404")
    assert (got["status"], got["x-own"], got["x-always"]) == (404, [], ["yes"])


def test_add_header_replaces_last_modified_and_etag(hf):
    got = get(hf, "/lm?h=Last-Modified:" + LM.replace(" ", "%20") + "&h=ETag:e1")
    assert (got["last-modified"], got["etag"], got["cache-control"]) == ([], ['"e2"'], ["private"])


@pytest.mark.parametrize("target,cc,expires", [
    ("/exp/epoch", ["no-cache"], ["Thu, 01 Jan 1970 00:00:01 GMT"]),
    ("/exp/max", ["max-age=315360000"], ["Thu, 31 Dec 2037 23:55:55 GMT"]),
    ("/exp/neg", ["no-cache"], ["<time>"]),
    ("/exp/zero", ["max-age=0"], ["<time>"]),
    ("/exp/hour", ["max-age=3600"], ["<time>"]),
    ("/exp/off", [], []),
    ("/exp/err", [], []),
    ("/exp/var?e=epoch", ["no-cache"], ["Thu, 01 Jan 1970 00:00:01 GMT"]),
    ("/exp/var?e=1h", ["max-age=3600"], ["<time>"]),
    ("/exp/var?e=bogus", [], []),
    ("/exp/var?e=off", [], []),
    ("/exp/up?h=Cache-Control:public&h=Cache-Control:x&h=Expires:never", ["max-age=30"], ["<time>"]),
])
def test_expires(hf, target, cc, expires):
    got = get(hf, target)
    assert (got["cache-control"], got["expires"]) == (cc, expires)


def test_expires_dates(hf):
    gw, up = hf
    r = http(gw.port, "GET", "/exp/hour")
    date = parsedate_to_datetime(r.header("Date"))
    assert (parsedate_to_datetime(r.header("Expires")) - date).total_seconds() == 3600
    r = http(gw.port, "GET", "/exp/neg")
    assert (parsedate_to_datetime(r.header("Expires")) - parsedate_to_datetime(r.header("Date"))
            ).total_seconds() == -1
    # modified: from the upstream's Last-Modified
    r = http(gw.port, "GET", "/exp/mod?h=Last-Modified:" + LM.replace(" ", "%20"))
    assert r.header("Expires") == "Tue, 01 Dec 2026 12:00:00 GMT"
    age = int(r.header("Cache-Control").split("=")[1]) if "=" in r.header("Cache-Control") else -1
    want = parsedate_to_datetime(r.header("Expires")) - parsedate_to_datetime(r.header("Date"))
    assert r.header("Cache-Control") == "no-cache" if want.total_seconds() < 0 else age == want.total_seconds()


def test_server_tokens(hf):
    gw, up = hf
    r = http(gw.port, "GET", "/tok")
    assert r.header("Server") == "portvakt" and b"<center>portvakt</center>" in r.body
    r = http(gw.port, "GET", "/tokon")
    assert r.header("Server") == "portvakt/0.1.0" and b"<center>portvakt/0.1.0</center>" in r.body


@pytest.mark.parametrize("target,ct", [
    ("/cs/a?h=Content-Type:text/html", "text/html; charset=utf-8"),
    ("/cs/b?h=Content-Type:text/html;%20charset=UTF-8", "text/html; charset=UTF-8"),
    ("/cs/c?h=Content-Type:application/json", "application/json"),
    ("/cs/d?h=Content-Type:text/html;%20charset=koi8-r", "text/html; charset=koi8-r"),
    ("/cs/e?h=Content-Type:text/html;%20q=1", "text/html; q=1"),
    ("/cs/f?s=301&h=Content-Type:text/html&h=Location:/x", "text/html"),
    ("/csret", "text/plain; charset=utf-8"),
    ("/cs404", "text/html; charset=koi8-r"),
])
def test_charset(hf, target, ct):
    assert get(hf, target)["content-type"] == [ct]


def test_hide_and_pass_headers(hf):
    got = get(hf, "/hide/a?h=X-Secret:s&h=Server:up-server&h=X-Pad:p&h=X-Accel-Limit-Rate:100000")
    assert (got["x-secret"], got["server"], got["x-pad"], got["x-accel-limit-rate"]) == (
        [], ["up-server"], [], ["100000"])
    got = get(hf, "/plain/a?h=X-Secret:s&h=Server:up-server&h=X-Pad:p&h=X-Accel-Limit-Rate:100000")
    assert (got["x-secret"], got["server"], got["x-pad"], got["x-accel-limit-rate"]) == (
        ["s"], ["SERVER"], [], [])


@pytest.mark.parametrize("target,field,want", [
    ("/rd/def/a?s=302&h=Location:http://127.0.0.1:UP/inner/b", "location", "http://hf.test:GW/rd/def/b"),
    ("/rd/def/a?s=302&h=Location:http://127.0.0.1:UP/other", "location", "http://127.0.0.1:UP/other"),
    ("/rd/def/a?h=Refresh:5;%20url=http://127.0.0.1:UP/inner/r", "refresh", "5; url=/rd/def/r"),
    ("/rd/off/a?s=302&h=Location:http://127.0.0.1:UP/inner/b", "location", "http://127.0.0.1:UP/inner/b"),
    ("/rd/text/a?s=301&h=Location:http://backend.test/one/x", "location", "http://hf.test:GW/two/x"),
    ("/rd/text/a?s=301&h=Location:http://backend.test/zz", "location", "http://hf.test:1234/x/zz"),
    ("/rd/text/a?s=301&h=Location:HTTP://backend.test/zz", "location", "HTTP://backend.test/zz"),
    ("/rd/re/a?s=302&h=Location:http://RE.test/abc/rest/of", "location", "http://hf.test:GW/re/rest/of/abc"),
    ("/rd/both/a?s=302&h=Location:http://127.0.0.1:UP/inner/q", "location", "http://hf.test:GW/rd/both/q"),
    ("/rd/both/a?s=302&h=Location:http://other.test/p", "location", "http://hf.test:GW/o/p"),
])
def test_proxy_redirect(hf, target, field, want):
    assert get(hf, target)[field] == [want]


def test_proxy_method_headers_and_body(hf):
    assert get(hf, "/meth/a")["upstream"][:2] == ("PUT", "/meth/a")
    up = get(hf, "/nohdr/a")["upstream"]
    assert (up[2], up[3]) == (None, "127.0.0.1:UP")
    up = get(hf, "/body/a?x=1")["upstream"]
    assert (up[4], up[5]) == ("set-body 1", "10")


def test_same_answers_as_nginx(portvakt, nginx, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    ours, theirs = start(portvakt, port), start(nginx, port)
    diffs = []
    try:
        for target in REQUESTS:
            a, b = observe(*ours, target), observe(*theirs, target)
            if a != b:
                diffs.append((target, a, b))
    finally:
        ours[1].stop(), theirs[1].stop()
    assert not diffs, "\n".join("%s\n  portvakt %r\n  nginx    %r" % d for d in diffs)


# ---- -t errors, with NGINX's wording ----

def check(tmp_path, body):
    path = tmp_path / "gw.conf"
    path.write_text("http {\n    server {\n        listen 127.0.0.1:1;\n%s\n    }\n}\n" % body)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode()


@pytest.mark.parametrize("body,words", [
    ("        add_header X y never;", ['invalid parameter "never"']),
    ("        add_header X;", ['invalid number of arguments in "add_header"']),
    ("        expires soon;", ['invalid value "soon"']),
    ("        expires modified @1h;", ['daily time cannot be used with "modified"']),
    ("        expires @25h;", ["daily time value must be less than 24 hours"]),
    ("        expires 1h; expires 2h;", ['"expires" directive is duplicate']),
    ("        expires $nosuch;", ['unknown "nosuch" variable']),
    ("        server_tokens maybe;", ['invalid value "maybe"']),
    ("        proxy_ignore_headers X-Foo;", ['invalid value "X-Foo"']),
    ("        proxy_redirect nonsense;", ['invalid parameter "nonsense"']),
    ("        location / { proxy_redirect default; proxy_pass http://127.0.0.1:2; }",
     ['"proxy_redirect default" should be placed after the "proxy_pass" directive']),
    ("        proxy_redirect ~(x /y;", ["pcre2_compile() failed"]),
    ("        charset utf-8; source_charset koi8-r; location / { }",
     ['no "charset_map" between the charsets "koi8-r" and "utf-8"']),
    ("        proxy_method $nosuch;", ['unknown "nosuch" variable']),
])
def test_config_errors(tmp_path, body, words):
    rc, out = check(tmp_path, body)
    assert rc != 0
    for w in words:
        assert w in out, out


@pytest.mark.parametrize("body", [
    "        proxy_ignore_headers X-Accel-Expires Expires Cache-Control Set-Cookie Vary;",
    "        proxy_redirect off; proxy_redirect http://a/ /b/;",
    "        charset utf-8; source_charset UTF-8; location / { }",
    "        expires modified -1d;",
])
def test_config_accepted(tmp_path, body):
    rc, out = check(tmp_path, body)
    assert rc == 0, out
