"""access_log's parameters after the format, as NGINX has them: if= (a
request is not logged when the condition is empty or "0"), buffer= and
flush= (lines held in memory and written when the buffer fills, when the
oldest is older than flush=, at a reopen and at stop), and NGINX's -t
messages for them. Which requests each log gets is compared with NGINX."""

import gzip
import os
import signal
import time

import pytest

from conftest import check_conf, free_port, http, wait_for

CONF = """
worker_processes 1;
http {
    log_format t "$uri";
    server {
        listen 127.0.0.1:@PORT@;
        location /filtered { access_log @D@/filtered.log t if=$arg_logme; return 200; }
        location /complex { access_log @D@/complex.log t if=$arg_a$arg_b; return 200; }
        location /two {
            access_log @D@/two.log t buffer=16k if=$arg_a;
            access_log @D@/two.log t buffer=16k if=$arg_b;
            return 200;
        }
        location /held { access_log @D@/held.log t buffer=64k; return 200; }
        location /small { access_log @D@/small.log t buffer=1k; return 200; }
        location /flushed { access_log @D@/flushed.log t buffer=64k flush=300ms; return 200; }
        location /zipped { access_log @D@/zipped.log.gz t gzip flush=300ms; return 200; }
        location /by { root @D@; access_log @D@/by-$arg_f.log t; return 200; }
        location /noroot { root @D@/missing; access_log @D@/noroot-$arg_f.log t; return 200; }
    }
}
"""


def read(path):
    try:
        with open(path, encoding="latin-1") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def conditions(start, d):
    """The lines of the if= logs after a fixed set of requests."""
    os.makedirs(d, exist_ok=True)
    port = free_port()
    s = start(CONF, PORT=port, D=d)
    for t in ("/filtered/a", "/filtered/b?logme=1", "/filtered/c?logme=0", "/filtered/d?logme=",
              "/filtered/e?logme=yes", "/complex/a?a=0", "/complex/b?a=0&b=0", "/complex/c?b=1",
              "/complex/d", "/two/a", "/two/b?a=1", "/two/c?b=1", "/two/d?a=1&b=1",
              "/by/1?f=x", "/by/2?f=y", "/by/3?f=x", "/noroot/1?f=x"):
        assert http(port, target=t).status == 200
    s.stop()
    logs = {f: read(os.path.join(d, f)).split() for f in ("filtered.log", "complex.log", "two.log")}
    logs["files"] = sorted(f for f in os.listdir(d) if f.startswith(("by-", "noroot-")))
    logs.update({f: read(os.path.join(d, f)).split() for f in logs["files"]})
    return logs


def test_if_as_nginx(tmp_path, portvakt, nginx):
    got = conditions(portvakt, str(tmp_path / "pv"))
    assert got == conditions(nginx, str(tmp_path / "ng"))
    assert got["filtered.log"] == ["/filtered/b", "/filtered/e"]
    assert got["complex.log"] == ["/complex/b", "/complex/c"]  # "00" is neither empty nor "0"
    assert got["two.log"] == ["/two/b", "/two/c", "/two/d", "/two/d"]
    # a path with variables, opened per request while the root exists
    assert got["files"] == ["by-x.log", "by-y.log"]
    assert got["by-x.log"] == ["/by/1", "/by/3"]


@pytest.mark.portvakt_only("reads portvakt's buffered file while it runs")
def test_buffer_holds_until_full_reopen_or_stop(tmp_path, portvakt):
    d = str(tmp_path)
    port = free_port()
    s = portvakt(CONF, PORT=port, D=d)
    assert http(port, target="/held/one").status == 200
    assert http(port, target="/small/one").status == 200
    # a 1k buffer is written once 1k of lines wait; a line of about 15 bytes
    for i in range(100):
        http(port, target="/small/%03d" % i)
    wait_for(lambda: "/small/0" in read(os.path.join(d, "small.log")), what="the full 1k buffer written")
    # nothing fills the 64k one: its line waits in memory, until a reopen
    time.sleep(0.3)
    assert read(os.path.join(d, "held.log")) == ""
    os.kill(s.pid, signal.SIGUSR1)
    wait_for(lambda: read(os.path.join(d, "held.log")) == "/held/one\n", what="the held line at the reopen")
    assert http(port, target="/held/two").status == 200
    s.stop()
    assert read(os.path.join(d, "held.log")) == "/held/one\n/held/two\n"
    assert read(os.path.join(d, "small.log")).split() == ["/small/one"] + ["/small/%03d" % i for i in range(100)]


@pytest.mark.portvakt_only("reads portvakt's buffered file while it runs")
def test_flush_writes_held_lines(tmp_path, portvakt):
    d = str(tmp_path)
    port = free_port()
    portvakt(CONF, PORT=port, D=d)
    for t in ("/flushed/a", "/zipped/a", "/zipped/b"):
        assert http(port, target=t).status == 200
    wait_for(lambda: read(os.path.join(d, "flushed.log")) == "/flushed/a\n", what="the flush")
    path = os.path.join(d, "zipped.log.gz")
    wait_for(lambda: os.path.getsize(path) > 0 if os.path.exists(path) else False, what="the gzip flush")
    with gzip.open(path, "rt") as f:
        assert f.read() == "/zipped/a\n/zipped/b\n"


@pytest.mark.parametrize("params,message", [
    ("buffer=0", 'invalid buffer size "0"'),
    ("buffer=abc", 'invalid buffer size "abc"'),
    ("flush=0 buffer=1k", 'invalid flush time "0"'),
    ("flush=1s", 'no buffer is defined for access_log "@D@/a.log"'),
    ("gzip=0", 'invalid compression level "0"'),
    ("buffer=1k nosuch=1", 'invalid parameter "nosuch=1"'),
    ("buffer=1k; access_log @D@/a.log combined buffer=2k",
     'access_log "@D@/a.log" already defined with conflicting parameters'),
    ("gzip; access_log @D@/a.log combined buffer=64k",
     'access_log "@D@/a.log" already defined with conflicting parameters'),
    ("buffer=1k; access_log @D@/a.log combined", None),
    ("buffer=1k; access_log @D@/$host.log combined buffer=1k", "buffered logs cannot have variables in name"),
    ("; open_log_file_cache max=10 inactive=20s min_uses=2 valid=1m", None),
    ("; open_log_file_cache off", None),
    ("; open_log_file_cache inactive=20s", '"open_log_file_cache" must have "max" parameter'),
    ("; open_log_file_cache max=x", 'invalid "open_log_file_cache" parameter "max=x"'),
    ("; open_log_file_cache max=0", '"open_log_file_cache" must have "max" parameter'),
    ("; open_log_file_cache max=10 min_uses=x", 'invalid "open_log_file_cache" parameter "min_uses=x"'),
    ("; open_log_file_cache max=10 valid=500ms", 'invalid "open_log_file_cache" parameter "valid=500ms"'),
    ("; open_log_file_cache max=10 inactive=", 'invalid "open_log_file_cache" parameter "inactive="'),
    ("; open_log_file_cache max=10; open_log_file_cache off", '"open_log_file_cache" directive is duplicate'),
    ("; open_log_file_cache off max=10", None),
    ("if=", None),
])
def test_parameter_errors_as_nginx(tmp_path, params, message):
    d = str(tmp_path)
    conf = ("events {}\nhttp {\n    server {\n        listen 127.0.0.1:%d;\n"
            "        access_log %s/a.log combined %s;\n    }\n}\n" % (free_port(), d, params.replace("@D@", d)))
    path = tmp_path / "t.conf"
    path.write_text(conf)
    out = check_conf(path, tmp_path)
    if "nginx" not in out:
        pytest.skip("NGINX is not installed")
    if message is None:
        assert out["portvakt"][0] == 0 and out["nginx"][0] == 0, out
        return
    want = message.replace("@D@", d) + " in %s:5" % path
    for name, (rc, text) in out.items():
        assert rc != 0 and want in text, (name, text)
