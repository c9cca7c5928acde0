"""Passive health: a server that fails max_fails times is left out for
fail_timeout and comes back after it; retries are bounded by
proxy_next_upstream_tries, proxy_next_upstream_timeout and the upstream's
retry_budget."""

import socket
import time

from conftest import EchoUpstream, free_port, http, wait_for

CONF = """\
error_log stderr warn;
http {
    log_format pick '$upstream_addr $status';
    access_log @LOG@ pick;
    upstream u {
@UPSTREAM@
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://u;
            proxy_read_timeout 1s;
@LOCATION@
        }
        location = /metrics { portvakt_metrics; }
    }
}
"""


def metric(port, name, **labels):
    """One sample of portvakt_metrics (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families
    for fam in text_string_to_metric_families(http(port, target="/metrics").body.decode()):
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def start(portvakt, tmp_path, upstream, location=""):
    port = free_port()
    log = tmp_path / "pick.log"
    gw = portvakt(CONF, PORT=port, LOG=str(log), UPSTREAM=upstream, LOCATION=location)
    return gw, port, log


def picks(log, n):
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= n, what="%d log lines" % n)
    return log.read_text().splitlines()


def test_failed_server_left_out_then_back(portvakt, tmp_path):
    a = EchoUpstream()
    b_port = free_port()
    b = None
    try:
        gw, port, log = start(portvakt, tmp_path,
                              "server %s; server 127.0.0.1:%d max_fails=1 fail_timeout=1s;" % (a.addr, b_port))
        # equal weights: a, then b (refused: retried on a)
        assert http(port, target="/1").status == 200
        assert http(port, target="/2").status == 200
        lines = picks(log, 2)
        assert lines[1] == "127.0.0.1:%d, %s 200" % (b_port, a.addr)
        # out for its fail_timeout: only a is tried
        for i in range(4):
            assert http(port, target="/out%d" % i).status == 200
        lines = picks(log, 6)
        assert all(line == "%s 200" % a.addr for line in lines[2:6])
        wait_for(lambda: "upstream server temporarily disabled" in gw.stderr(), what="the failure logged")
        # b comes up; once the window has passed it gets requests again
        b = EchoUpstream(port=b_port)
        time.sleep(1.2)
        for i in range(4):
            assert http(port, target="/back%d" % i).status == 200
        assert b.wait_requests(1)
    finally:
        a.stop()
        if b:
            b.stop()


def test_retry_budget_refuses_retries(portvakt, tmp_path):
    a = EchoUpstream()
    dead = free_port()
    try:
        # without a budget the refused server's request is retried on a
        gw, port, log = start(portvakt, tmp_path, "server 127.0.0.1:%d max_fails=0; server %s;" % (dead, a.addr))
        statuses = [http(port, target="/%d" % i).status for i in range(4)]
        assert statuses == [200] * 4
        gw.stop()
        # a budget of no retries: the failure is the answer
        wd = tmp_path / "budget"
        wd.mkdir()
        gw, port, log = start(portvakt, wd, "server 127.0.0.1:%d max_fails=0; server %s; retry_budget 1%% min=0;"
                              % (dead, a.addr))
        statuses = [http(port, target="/%d" % i).status for i in range(4)]
        assert statuses.count(502) == 2 and statuses.count(200) == 2
        wait_for(lambda: "retry budget of upstream \"u\" exhausted" in gw.stderr(), what="the refusal logged")
    finally:
        a.stop()


def test_next_upstream_timeout(portvakt, tmp_path):
    """A server that takes the request and never answers times out after
    proxy_read_timeout (1s); with proxy_next_upstream_timeout 300ms that is
    too late to try the next server."""
    a = EchoUpstream()
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    mute_addr = "127.0.0.1:%d" % mute.getsockname()[1]
    try:
        gw, port, log = start(portvakt, tmp_path, "server %s; server %s;" % (mute_addr, a.addr))
        assert http(port, target="/x").status == 200  # mute, timed out, then a
        gw.stop()
        wd = tmp_path / "t"
        wd.mkdir()
        gw, port, log = start(portvakt, wd, "server %s; server %s;" % (mute_addr, a.addr),
                              location="proxy_next_upstream_timeout 300ms;")
        assert http(port, target="/x").status == 504
        assert picks(log, 1)[0] == "%s 504" % mute_addr
    finally:
        mute.close()
        a.stop()


def test_outlier_ejection(portvakt, tmp_path):
    """Two 5xx answers in a row eject a server (outlier_detection); the
    last server is never ejected."""
    from conftest import Reply
    bad = EchoUpstream(reply=Reply(status=500, body=b"no"))
    good = EchoUpstream()
    try:
        gw, port, log = start(portvakt, tmp_path, "server %s; server %s; outlier_detection consecutive=2 base_time=60s;"
                              % (bad.addr, good.addr))
        statuses = [http(port, target="/%d" % i).status for i in range(10)]
        # bad answers twice (rr: bad, good, bad), then it is out
        assert statuses[:3] == [500, 200, 500]
        assert statuses[3:] == [200] * 7
        assert len(bad.requests) == 2
        line = "upstream server %s in upstream \"u\" ejected for 60000 ms after 2 failures in a row" % bad.addr
        wait_for(lambda: line in gw.stderr(), what="the ejection logged")
        peer = {"upstream": "u", "server": bad.addr}
        assert metric(port, "portvakt_upstream_server_ejections_total", **peer) == 1
        assert metric(port, "portvakt_upstream_server_state", state="ejected", **peer) == 1
        assert metric(port, "portvakt_upstream_server_state", state="up", upstream="u", server=good.addr) == 1
        assert metric(port, "portvakt_upstream_server_responses_total", code="5xx", **peer) == 2
        gw.stop()
        # alone, it is never ejected
        wd = tmp_path / "alone"
        wd.mkdir()
        gw, port, log = start(portvakt, wd, "server %s; outlier_detection consecutive=2;" % bad.addr)
        assert [http(port, target="/%d" % i).status for i in range(4)] == [500] * 4
    finally:
        bad.stop()
        good.stop()


def test_failure_state_shared_by_workers(portvakt, tmp_path):
    """Two workers, one peer state: the refused server fails out for
    every worker at its first failure, whichever worker saw it. With a
    state per worker each worker would try it once (20 connections are
    spread over both workers' listening sockets)."""
    a = EchoUpstream()
    dead = free_port()
    try:
        port = free_port()
        log = tmp_path / "pick.log"
        portvakt("worker_processes 2;\n" + CONF, PORT=port, LOG=str(log), LOCATION="",
                 UPSTREAM="server 127.0.0.1:%d max_fails=1 fail_timeout=60s; server %s;" % (dead, a.addr))
        for i in range(20):
            assert http(port, target="/%d" % i).status == 200
        lines = picks(log, 20)
        assert sum("127.0.0.1:%d" % dead in line for line in lines) == 1
    finally:
        a.stop()


def test_max_conns_shared_by_workers(portvakt, tmp_path):
    """max_conns=1 counts the requests of both workers: while one holds
    a, neither sends it another."""
    import threading
    release = threading.Event()

    def slow(req):
        if req.target.startswith("/slow"):
            release.wait(10)
        return None

    a, b = EchoUpstream(handler=slow), EchoUpstream(handler=slow)
    t = None
    try:
        port = free_port()
        portvakt("worker_processes 2;\n" + CONF.replace("proxy_read_timeout 1s;", ""), PORT=port,
                 LOG=str(tmp_path / "pick.log"), LOCATION="",
                 UPSTREAM="server %s max_conns=1; server %s;" % (a.addr, b.addr))
        t = threading.Thread(target=http, args=(port,), kwargs={"target": "/slow", "timeout": 15})
        t.start()
        assert a.wait_heads(1, timeout=10)
        for i in range(20):
            assert http(port, target="/fast%d" % i).status == 200
        assert not [r for r in a.heads if r.target.startswith("/fast")]
        assert len(b.requests) == 20
    finally:
        release.set()
        if t:
            t.join(15)
        a.stop()
        b.stop()


def test_failure_state_kept_across_reload(portvakt, tmp_path):
    """A server failed out before a reload stays out after it for the
    rest of its fail_timeout: the new configuration's first request goes
    to the live server, not to the one the old one saw fail (round robin
    starting afresh would try it first)."""
    import os
    import signal
    from conftest import render
    a = EchoUpstream()
    dead = free_port()
    conf = CONF.replace("location / {", 'location = /v { return 200 "@V@"; }\n        location / {')
    try:
        port = free_port()
        log = tmp_path / "pick.log"
        subs = dict(PORT=port, LOG=str(log), LOCATION="",
                    UPSTREAM="server 127.0.0.1:%d max_fails=1 fail_timeout=60s; server %s;" % (dead, a.addr))
        gw = portvakt(conf, V="one", **subs)
        assert http(port, target="/first").status == 200
        assert picks(log, 1)[0] == "127.0.0.1:%d, %s 200" % (dead, a.addr)
        with open(gw.conf_path, "w") as f:
            f.write(render(conf, V="two", **subs))
        os.kill(gw.pid, signal.SIGHUP)
        wait_for(lambda: http(port, target="/v").body == b"two", what="the new config")
        for i in range(6):
            assert http(port, target="/after%d" % i).status == 200
        def proxied():
            return [line for line in log.read_text().splitlines() if not line.startswith("- ")]
        wait_for(lambda: len(proxied()) == 7, what="7 proxied requests logged")
        assert proxied()[1:] == ["%s 200" % a.addr] * 6
    finally:
        a.stop()


def test_retry_budget_is_a_share_of_attempts_in_progress(portvakt, tmp_path):
    """retry_budget 50% min=0: with nothing else in progress a retry is
    refused (the failure is the answer); with two requests in progress
    on the upstream one retry may run, and the same request succeeds."""
    import threading
    release = threading.Event()

    def slow(req):
        if req.target.startswith("/slow"):
            release.wait(10)
        return None

    a = EchoUpstream(handler=slow)
    dead = free_port()
    held = []
    try:
        port = free_port()
        log = tmp_path / "pick.log"
        portvakt(CONF.replace("proxy_read_timeout 1s;", ""), PORT=port, LOG=str(log), LOCATION="",
                 UPSTREAM="hash $arg_k; server 127.0.0.1:%d max_fails=0; server %s; retry_budget 50%% min=0;"
                 % (dead, a.addr))
        # which keys hash to the refusing server: those are refused their retry
        statuses = {k: http(port, target="/?k=%d" % k).status for k in range(12)}
        to_dead = [k for k, s in statuses.items() if s == 502]
        to_a = [k for k, s in statuses.items() if s == 200]
        assert to_dead and to_a
        lines = picks(log, 12)
        assert all(line == "127.0.0.1:%d 502" % dead for line, s in zip(lines, statuses.values()) if s == 502)
        for i in range(2):
            t = threading.Thread(target=http, args=(port,), kwargs={"target": "/slow?k=%d" % to_a[0], "timeout": 15})
            t.start()
            held.append(t)
            assert a.wait_heads(len(to_a) + i + 1, timeout=10)
        assert http(port, target="/?k=%d" % to_dead[0]).status == 200
        assert picks(log, 13)[12] == "127.0.0.1:%d, %s 200" % (dead, a.addr)
    finally:
        release.set()
        for t in held:
            t.join(15)
        a.stop()
