"""Operations: reload (SIGHUP, -s reload), graceful drain (SIGTERM/SIGQUIT),
immediate stop (SIGINT), the pid file, and the limits that break gateways:
worker_connections, descriptor exhaustion (EMFILE), the listen backlog
against net.core.somaxconn and worker_rlimit_nofile.
"""

import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (PORTVAKT, Client, Closed, Gateway, Reply, fd_links, free_port, http,
                      port_open, render, wait_for)

pytestmark = pytest.mark.portvakt_only("portvakt's own process model")

CONF = """
pid @PID@;
worker_processes 2;
worker_shutdown_timeout @WST@;
http {
    access_log off;
    keepalive_timeout 30s;
    upstream up { server 127.0.0.1:@UP@; keepalive 8; }
    server {
        listen 127.0.0.1:@GW@;
        location = /v { return 200 "@VERSION@\\n"; }
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    @EXTRA@
}
"""

# The upstream for the load test: a second listen address of the gateway
# itself would change with the config, so it is a separate portvakt.
BACKEND = """
worker_processes 1;
http {
    access_log off;
    server {
        listen 127.0.0.1:@BE@;
        location / { return 200 "backend\\n"; }
    }
}
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Ops:
    """A portvakt started on CONF whose config file can be rewritten."""

    def __init__(self, tmp_path, up_port, **kw):
        os.makedirs(str(tmp_path), exist_ok=True)
        self.dir = tmp_path
        self.subs = dict(PID=str(tmp_path / "pv.pid"), UP=str(up_port), GW=str(free_port()),
                         VERSION="one", EXTRA="", WST="10s")
        self.subs.update(kw)
        self.path = str(tmp_path / "portvakt.conf")
        write(self.path, render(CONF, **self.subs))
        self.gw = Gateway(tmp_path, self.path, [int(self.subs["GW"])])

    @property
    def port(self):
        return int(self.subs["GW"])

    def rewrite(self, **kw):
        self.subs.update(kw)
        write(self.path, render(CONF, **self.subs))

    def signal(self, sig):
        os.kill(self.gw.pid, sig)


@pytest.fixture
def ops(tmp_path, upstream):
    made = []

    def make(up=None, **kw):
        u = up or upstream()
        o = Ops(tmp_path / ("ops%d" % len(made)), u.port, **kw)
        o.gw.start()
        o.up = u
        made.append(o)
        return o

    yield make
    for o in made:
        o.gw.stop(signal.SIGINT)


def body(port, target="/v"):
    return http(port, "GET", target).body


def test_reload_applies_new_config(ops):
    o = ops()
    assert body(o.port) == b"one\n"
    o.rewrite(VERSION="two")
    o.signal(signal.SIGHUP)
    wait_for(lambda: body(o.port) == b"two\n", what="the new config")


def test_broken_config_keeps_the_old_one_serving(ops):
    o = ops()
    with open(o.path, "a") as f:
        f.write("\nbogus_directive on;\n")
    o.signal(signal.SIGHUP)
    # the error log is written by the log writer thread, line by line as
    # it wakes: wait for the last of the two lines
    wait_for(lambda: "keeps serving" in o.gw.stderr(), what="the error logged")
    err = o.gw.stderr()
    assert re.search(r'unknown directive "bogus_directive" in \S+portvakt\.conf:\d+', err), err
    assert "running configuration keeps serving" in err
    assert body(o.port) == b"one\n"
    assert o.gw.alive()


def pid_in_file(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def test_s_reload_uses_the_pid_file(ops):
    o = ops()
    # The listener takes connections into its backlog before the pid file
    # is written (so with NGINX), and the start-up probe needs no more.
    wait_for(lambda: pid_in_file(o.subs["PID"]) == str(o.gw.pid), what="the pid file")
    o.rewrite(VERSION="three")
    r = subprocess.run([PORTVAKT, "-c", o.path, "-s", "reload"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: body(o.port) == b"three\n", what="the new config")


def test_keepalive_connection_survives_reload_and_sees_new_config(ops):
    o = ops()
    with Client(o.port) as c:
        c.request("GET", "/v")
        assert c.read_response().body == b"one\n"
        o.rewrite(VERSION="two")
        o.signal(signal.SIGHUP)
        wait_for(lambda: body(o.port) == b"two\n", what="the new config")
        c.request("GET", "/v")
        assert c.read_response().body == b"two\n"


def held_upstream(upstream):
    """An upstream that holds every request until u.gate is set."""
    gate = threading.Event()

    def held(req):
        gate.wait(60)
        return Reply(200, body=b"done")

    u = upstream(handler=held)
    u.gate = gate
    return u


def test_in_flight_request_finishes_across_reload(ops, upstream):
    # held at the upstream until the new config serves
    u = held_upstream(upstream)
    o = ops(up=u)
    res = {}

    def slow():
        res["r"] = http(o.port, "GET", "/slow", timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    try:
        u.wait_requests(1)
        o.rewrite(VERSION="two")
        o.signal(signal.SIGHUP)
        wait_for(lambda: body(o.port) == b"two\n", what="the new config")
        assert "r" not in res
    finally:
        u.gate.set()
    t.join(30)
    assert res["r"].status == 200 and res["r"].body == b"done"


def test_listeners_are_added_and_removed(ops):
    o = ops()
    extra = free_port()
    o.rewrite(EXTRA="server { listen 127.0.0.1:%d; return 200 \"extra\\n\"; }" % extra)
    o.signal(signal.SIGHUP)
    wait_for(lambda: port_open(extra), what="the added listener")
    assert body(extra, "/") == b"extra\n"
    o.rewrite(EXTRA="")
    o.signal(signal.SIGHUP)
    wait_for(lambda: not port_open(extra), what="the removed listener to close")
    assert body(o.port) == b"one\n"


def test_pooled_upstream_connections_survive_reload(ops, upstream):
    u = upstream()
    o = ops(up=u)
    assert http(o.port, "GET", "/a").status == 200
    first = set(u.conn_ids())
    o.rewrite(VERSION="two")
    o.signal(signal.SIGHUP)
    wait_for(lambda: body(o.port) == b"two\n", what="the new config")
    for _ in range(4):
        assert http(o.port, "GET", "/b").status == 200
    # Two workers: each may open one connection, and the reload keeps them.
    assert len(set(u.conn_ids())) <= 2, u.conn_ids()
    assert first <= set(u.conn_ids())


def _wrk(port, seconds, path="/p"):
    return subprocess.Popen(["wrk", "-t2", "-c32", "-d%ds" % seconds, "--latency",
                             "http://127.0.0.1:%d%s" % (port, path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wrk_result(proc):
    out, _ = proc.communicate(timeout=60)
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    return int(m.group(1)), out


def test_reloads_under_load_lose_nothing(tmp_path, ops, portvakt):
    be_port = free_port()
    be = portvakt(BACKEND, BE=be_port)

    class Up:
        port = be_port
    o = ops(up=Up())
    w = _wrk(o.port, 5)
    time.sleep(0.5)
    for i in range(8):
        if i == 4:
            with open(o.path, "a") as f:
                f.write("\nserver {\n")  # unbalanced: a broken config
        else:
            o.rewrite(VERSION="v%d" % i)
        o.signal(signal.SIGHUP)
        time.sleep(0.5)
    n, out = _wrk_result(w)
    assert n > 1000, out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    assert o.gw.alive()
    assert be.alive()
    assert body(o.port) == b"v7\n"


def test_sigterm_drains_in_flight_requests(ops, upstream):
    # The request is held at the upstream: while it is, the idle keepalive
    # connection is closed and the process does not exit; once it is
    # answered, the gateway exits.
    u = held_upstream(upstream)
    o = ops(up=u)
    idle = Client(o.port)
    idle.request("GET", "/v")
    idle.read_response()
    res = {}

    def slow():
        with Client(o.port, timeout=30) as c:
            c.request("GET", "/slow")
            res["r"] = c.read_response()
            res["closed"] = c.closed(10)

    t = threading.Thread(target=slow)
    t.start()
    try:
        u.wait_requests(1)
        o.signal(signal.SIGTERM)
        assert idle.closed(10)
        assert o.gw.alive() and "r" not in res
    finally:
        u.gate.set()
    t.join(30)
    assert res["r"].status == 200 and res["r"].body == b"done"
    assert res["r"].header("Connection") == "close"
    assert res["closed"]
    o.gw.proc.wait(30)
    assert o.gw.proc.returncode == 0
    assert not os.path.exists(o.subs["PID"])


def test_listener_closes_when_the_drain_starts(ops, upstream):
    u = held_upstream(upstream)
    o = ops(up=u)
    t = threading.Thread(target=http, args=(o.port, "GET", "/slow"), kwargs={"timeout": 30})
    t.start()
    try:
        u.wait_requests(1)
        o.signal(signal.SIGTERM)
        wait_for(lambda: not port_open(o.port), timeout=5, what="listener closed")
    finally:
        u.gate.set()
        t.join(30)


def test_worker_shutdown_timeout_bounds_the_drain(ops, upstream):
    # The upstream never answers: without worker_shutdown_timeout the
    # drain would last until proxy_read_timeout (60 s), past the 30 s wait.
    u = upstream(reply=Reply(hang=True))
    o = ops(up=u, WST="1s")
    c = Client(o.port, timeout=30)
    c.request("GET", "/hang")
    u.wait_heads(1)
    o.signal(signal.SIGQUIT)
    o.gw.proc.wait(30)
    assert o.gw.proc.returncode == 0
    assert c.closed(10)


def test_sigint_stops_at_once(ops, upstream):
    # A request the upstream never answers: a drain would wait for it
    # (proxy_read_timeout 60 s, worker_shutdown_timeout 300 s), past the
    # 30 s wait.
    u = upstream(reply=Reply(hang=True))
    o = ops(up=u, WST="300s")
    c = Client(o.port, timeout=30)
    c.request("GET", "/hang")
    u.wait_heads(1)
    o.signal(signal.SIGINT)
    o.gw.proc.wait(30)
    assert c.closed(10)
    assert not os.path.exists(o.subs["PID"])


LIMITS = """
worker_processes 1;
@RLIMIT@
events { worker_connections @WC@; }
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ @BACKLOG@;
        location = /metrics { portvakt_metrics; }
        location / { return 200 "ok\\n"; }
    }
}
"""


def _limits(tmp_path, WC="64", RLIMIT="", BACKLOG="", nofile=None):
    gw = free_port()
    path = str(tmp_path / "portvakt.conf")
    write(path, render(LIMITS, GW=str(gw), WC=WC, RLIMIT=RLIMIT, BACKLOG=BACKLOG))
    g = Gateway(tmp_path, path, [gw])
    if nofile:
        g.argv = lambda: ["/bin/sh", "-c", "ulimit -Sn %d && exec %s -c %s" % (nofile, PORTVAKT, path)]
    return g.start()


def client_conns(g):
    """The connections on the gateway's listen port it holds open
    (accepted, in any state but LISTEN), from /proc."""
    inodes = set()
    for link in fd_links(g.pid).values():
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if inode in inodes and int(local.split(":")[1], 16) == g.port and state != "0A":
                n += 1
    return n


def _proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_keepalive_connections_make_room_oldest_first(tmp_path):
    # every slot held by an idle keepalive client: a newcomer is served,
    # and the connection idle the longest is the one closed for it (as
    # NGINX reuses connections); logged at NGINX's level for it, warn
    g = _limits(tmp_path, WC="8", RLIMIT="error_log stderr warn;")
    try:
        # the start-up probe's connection must be gone before counting
        wait_for(lambda: client_conns(g) == 0, timeout=30, what="the probe connection to close")
        held = []
        for _ in range(8):
            c = Client(g.port)
            c.request("GET", "/")
            assert c.read_response().status == 200
            held.append(c)
        # held[1] becomes the most recently idle of the first two
        held[1].request("GET", "/")
        assert held[1].read_response().status == 200
        newcomers = []
        for _ in range(2):
            c = Client(g.port)
            c.request("GET", "/")
            assert c.read_response().status == 200
            newcomers.append(c)
        assert held[0].closed(10)
        assert held[2].closed(10)
        for c in held[1:2] + held[3:] + newcomers:
            c.request("GET", "/")
            assert c.read_response().status == 200
        # written by the log writer thread, a little after the fact
        wait_for(lambda: "8 worker_connections are not enough, closing idle keepalive connections"
                 in g.stderr(), what="the log line")
        for c in held + newcomers:
            c.close()
    finally:
        g.stop()


def test_at_the_limit_newcomers_wait_in_the_backlog(tmp_path):
    # every slot busy with a request in progress: newcomers are neither
    # served nor closed, but wait in the listen backlog and are served as
    # soon as a slot frees
    g = _limits(tmp_path, WC="8")
    try:
        wait_for(lambda: client_conns(g) == 0, timeout=30, what="the probe connection to close")
        busy = [Client(g.port) for _ in range(8)]
        for c in busy:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")   # a head in progress
        wait_for(lambda: client_conns(g) == 8, timeout=30, what="the busy ones to be accepted")
        waiting = [Client(g.port) for _ in range(3)]
        for c in waiting:
            c.request("GET", "/")
        # not served and not closed while every slot is busy
        assert not waiting[0].closed(1.0)
        wait_for(lambda: "8 worker_connections are not enough and none is idle" in g.stderr(),
                 what="the log line")
        # the busy ones are still served
        busy[0].send(b"\r\n")
        assert busy[0].read_response().status == 200
        # slots free: every newcomer is served in turn, none was lost (the
        # idle busy[0] may be closed to make room for one of them)
        busy[1].close()
        busy[2].close()
        for c in waiting:
            assert c.read_response().status == 200
        busy[3].send(b"\r\n")
        assert busy[3].read_response().status == 200
        for c in busy + waiting:
            c.close()
        wait_for(lambda: http(g.port, "GET", "/").status == 200, what="serving again")
    finally:
        g.stop()


def test_descriptor_exhaustion_does_not_spin_or_kill(tmp_path):
    g = _limits(tmp_path, WC="4096", nofile=64)
    try:
        keep = Client(g.port)
        keep.request("GET", "/")
        assert keep.read_response().status == 200
        flood = []
        for _ in range(150):
            try:
                flood.append(socket.create_connection(("127.0.0.1", g.port), timeout=2))
            except OSError:
                break
        time.sleep(0.5)
        cpu0 = _proc_cpu_s(g.pid)
        time.sleep(1.0)
        spent = _proc_cpu_s(g.pid) - cpu0
        assert spent < 0.3, "the loop spins at EMFILE: %.2fs CPU in 1s" % spent
        # existing connections are still served
        keep.request("GET", "/")
        assert keep.read_response().status == 200
        assert g.alive()
        wait_for(lambda: re.search(r"accept\(\) failed \(24: Too many open files\)", g.stderr()),
                 what="the EMFILE log line")
        # counted, and each connection the reserve descriptor took and closed shed
        keep.request("GET", "/metrics")
        text = keep.read_response().body.decode()
        errors = re.search(r"^portvakt_accept_errors_total (\d+)$", text, re.M)
        shed = re.search(r"^portvakt_connections_shed_total (\d+)$", text, re.M)
        assert errors and int(errors.group(1)) >= 1, text[:2000]
        assert shed and int(shed.group(1)) >= 1, text[:2000]
        for s in flood:
            s.close()
        wait_for(lambda: http(g.port, "GET", "/").status == 200, timeout=5, what="serving again")
        keep.close()
    finally:
        g.stop()


def test_backlog_above_somaxconn_is_warned(tmp_path):
    with open("/proc/sys/net/core/somaxconn") as f:
        somax = int(f.read())
    g = _limits(tmp_path, BACKLOG="backlog=%d" % (somax + 1000))
    try:
        wait_for(lambda: "net.core.somaxconn" in g.stderr(), what="the backlog warning")
        assert "backlog=%d" % (somax + 1000) in g.stderr()
    finally:
        g.stop()


def test_nofile_limit_too_low_is_warned(tmp_path):
    g = _limits(tmp_path, WC="4096", nofile=256)
    try:
        wait_for(lambda: "host check nofile" in g.stderr(), what="the nofile warning")
        assert "worker_connections 4096 x 1 workers x 2" in g.stderr()
        assert "worker_rlimit_nofile 8192" in g.stderr()
    finally:
        g.stop()


def test_worker_rlimit_nofile_raises_the_limit(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4096)
    g = _limits(tmp_path, WC="1024", RLIMIT="worker_rlimit_nofile %d;" % want, nofile=256)
    try:
        with open("/proc/%d/limits" % g.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        assert int(line.split()[3]) == want, line
    finally:
        g.stop()
