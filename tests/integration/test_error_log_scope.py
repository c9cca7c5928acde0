"""error_log in http, server and location blocks: the lines of a request
go to the error log of its location (else its server, else http), each
under its own level, several logs of one block each get the line, and
the main log gets none of them. Which file got which line is compared
with NGINX's for the same config."""

import os
import re
import subprocess

import pytest

from conftest import PORTVAKT, free_port, http, wait_for

pytestmark = pytest.mark.portvakt_only("compares portvakt with NGINX itself")

CONF = """
http {
    access_log off;
    error_log @D@/http.log warn;
    server {
        listen 127.0.0.1:@A@;
        root @D@/www;
        error_log @D@/srv.log info;
        location /deny { deny all; }
        location /quiet { deny all; error_log @D@/quiet.log crit; }
        location /two { deny all; error_log @D@/two-a.log; error_log @D@/two-b.log notice; }
        location /nested {
            error_log @D@/outer.log;
            location /nested/inner { deny all; }
        }
    }
    server {
        listen 127.0.0.1:@B@;
        root @D@/www;
        location / { }
    }
}
"""

FILES = ("http.log", "srv.log", "quiet.log", "two-a.log", "two-b.log", "outer.log")


def read(path):
    try:
        with open(path, encoding="latin-1") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def names(text, tag):
    """Whether a log text names the request tagged tag: in its URI, not by
    chance inside a hex request id."""
    return re.search(r"[/-]%s\b" % tag, text) is not None


def where(start, d):
    """For each request, the log files that name it."""
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    ports = {"A": free_port(), "B": free_port()}
    s = start(CONF, D=d, **ports)
    reqs = [("A", "/deny/a1"), ("A", "/quiet/a2"), ("A", "/two/a3"), ("A", "/nested/inner/a4"),
            ("A", "/missing-a5"), ("B", "/missing-b6")]
    for srv, target in reqs:
        http(ports[srv], target=target)
    # every request logs at error level, except /quiet's (below crit)
    tags = [re.split("[/-]", t)[-1] for _, t in reqs]
    logged = [t for t in tags if t != "a2"]
    wait_for(lambda: all(any(names(read(os.path.join(d, f)), t) for f in FILES) for t in logged),
             what="the request lines in the logs")
    s.stop()
    out = {}
    for t in tags:
        out[t] = sorted(f for f in FILES if names(read(os.path.join(d, f)), t))
    out["main"] = [t for t in tags if names(s.stderr(), t)]
    return out


def test_scoped_error_logs_as_nginx(tmp_path, portvakt, nginx):
    got = where(portvakt, str(tmp_path / "pv"))
    want = where(nginx, str(tmp_path / "ng"))
    assert got == want
    assert got["a1"] == ["srv.log"]
    assert got["a2"] == []
    assert got["a3"] == ["two-a.log", "two-b.log"]
    assert got["a4"] == ["outer.log"]
    assert got["a5"] == ["srv.log"]
    assert got["b6"] == ["http.log"]
    assert got["main"] == []


def test_levels_and_errors(tmp_path):
    conf = tmp_path / "e.conf"
    for line, msg in (("error_log %s/x.log loud;" % tmp_path, 'invalid log level "loud"'),
                      ("error_log syslog:server=127.0.0.1;", "not supported")):
        conf.write_text("http { server { listen 127.0.0.1:1; location / { %s } } }\n" % line)
        r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr and "e.conf:1" in r.stderr, r.stderr
    conf.write_text("http { server { listen 127.0.0.1:1; location / { if ($uri) { error_log x; } } } }\n")
    r = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode != 0 and "not allowed here" in r.stderr
