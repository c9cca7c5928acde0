"""The error log while the workers run: lines logged by a worker go
through its non-blocking ring to the log writer and still arrive in the
file, in NGINX's format; SIGUSR1 reopens the file; the start-up line is
written before the workers run and the last lines at exit are not lost."""

import os
import re
import signal

import pytest

from conftest import Client, http, wait_for

CONF = """
worker_processes 2;
error_log @LOG@ info;
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""

LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] (\d+)#(\d+): (.*)$")


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="latin-1") as f:
        return [LINE.match(l).groups() for l in f.read().splitlines()]


def duplicate_host(gw, tag):
    """A request a worker refuses and logs at info level."""
    with Client(gw.port) as c:
        c.send(b"GET /%s HTTP/1.1\r\nHost: a\r\nHost: %s\r\n\r\n" % (tag.encode(), tag.encode()))
        assert c.read_response().status == 400


@pytest.mark.portvakt_only("checks portvakt's own error log path and messages")
def test_worker_lines_arrive_through_the_ring(portvakt, upstream, port, tmp_path):
    log = str(tmp_path / "error.log")
    up = upstream()
    gw = portvakt(CONF, LOG=log, GW=port(), UP=up.port)
    wait_for(lambda: any("started: 2 workers" in m for _, _, _, m in lines(log)), 5,
             what="the start-up line")
    for i in range(20):
        duplicate_host(gw, "h%d" % i)
    want = ['client sent duplicate host header: "Host: h%d", previous value: "Host: a"' % i for i in range(20)]

    def arrived():
        got = [m for lvl, _, tid, m in lines(log) if lvl == "info" and tid != "0"]
        return all(any(m.startswith(w) for m in got) for w in want)

    wait_for(arrived, 5, what="the workers' lines")
    for lvl, pid, tid, _ in lines(log):
        assert int(pid) == gw.pid and 0 <= int(tid) <= 2

    # SIGUSR1 reopens the file by its path (log rotation)
    os.rename(log, log + ".1")
    gw.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: os.path.exists(log), 5, what="the error log to be reopened")
    duplicate_host(gw, "after-rotation")
    wait_for(lambda: any("Host: after-rotation" in m for _, _, _, m in lines(log)), 5,
             what="a worker's line in the new file")

    # the last lines, the worker's and the exit line, are written at stop
    duplicate_host(gw, "last")
    gw.stop()
    got = [m for _, _, _, m in lines(log)]
    assert any("Host: last" in m for m in got), got
    assert got[-1] == "exit", got
