"""A failed allocation costs one connection, not the process.

Runs build/fault/portvakt (`make fault`: the same sources built with
-DPV_FAULT_INJECTION), whose environment says which allocations fail:
PV_FAULT_BUF_NTH=N fails the Nth buffer allocation, PV_FAULT_ALLOC_AFTER=N
every allocation after the first N. The connection that needed the memory
is closed (or answered 500 when a response can still be made), the failure
is logged at most once a second, and every other client is served.
"""

import os
import re
import subprocess

import pytest

from conftest import ROOT, PORTVAKT, Client, Gateway, Closed, render, free_port, wait_for

FAULT_BIN = os.path.abspath(os.environ.get("PORTVAKT_FAULT", os.path.join(ROOT, "build", "fault", "portvakt")))

pytestmark = pytest.mark.portvakt_only("allocation-failure injection is portvakt's test build")

CONF = """
worker_processes 1;
events { worker_connections 256; }
http {
    access_log off;
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        location = /local { return 200 "ok\\n"; }
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


class FaultGateway(Gateway):
    name = "portvakt-fault"

    def argv(self):
        return [FAULT_BIN, "-c", self.conf_path]


@pytest.fixture
def fault_gateway(tmp_path, upstream, monkeypatch):
    if not os.access(FAULT_BIN, os.X_OK):
        pytest.fail("%s is not built (run make fault)" % FAULT_BIN, pytrace=False)
    started = []

    def start(**env):
        for k, v in env.items():
            monkeypatch.setenv(k, str(v))
        up = upstream()
        gw = free_port()
        path = str(tmp_path / "portvakt.conf")
        with open(path, "w") as f:
            f.write(render(CONF, UP=up.port, GW=gw))
        g = FaultGateway(tmp_path, path, [gw]).start()
        started.append(g)
        g.up = up
        return g

    yield start
    for g in started:
        g.stop()


def one_request(port, target):
    """A request on a new connection: its status, or None when the
    connection was closed without a response."""
    c = Client(port)
    try:
        c.request("GET", target)
        return c.read_response().status
    except (Closed, ConnectionResetError):
        return None
    finally:
        c.close()


def oom_lines(g):
    return len(re.findall(r"out of memory allocating", g.stderr()))


@pytest.mark.parametrize("target", ["/local", "/proxied"])
@pytest.mark.parametrize("nth", [2, 3, 4, 5, 6])
def test_one_failed_buffer_costs_one_request(fault_gateway, target, nth):
    g = fault_gateway(PV_FAULT_BUF_NTH=nth)
    got = [one_request(g.port, target) for _ in range(8)]
    failed = [s for s in got if s != 200]
    # the failure hit the start-up probe's connection, or exactly one request
    assert len(failed) <= 1, got
    assert failed in ([], [None], [500]), got
    assert got[-4:] == [200] * 4, got
    assert g.alive()
    if failed:
        # the error log is written by its own thread: wait for the line
        wait_for(lambda: oom_lines(g) >= 1, what="the out-of-memory log line")
        assert oom_lines(g) == 1, g.stderr()


def test_every_allocation_failing_leaves_the_process_running(fault_gateway):
    g = fault_gateway(PV_FAULT_ALLOC_AFTER=40)
    got = [one_request(g.port, "/proxied") for _ in range(60)]
    assert got[0] == 200, got
    assert None in got, got
    assert all(s in (200, 500, 502, None) for s in got), got
    assert g.alive()
    # logged at most once a second, with the count of those left out
    wait_for(lambda: "more since the last report" in g.stderr(), what="the out-of-memory log line")
    n = oom_lines(g)
    assert 1 <= n <= 5, g.stderr()
    assert "more since the last report" in g.stderr()


def test_production_binary_has_no_switch():
    with open(PORTVAKT, "rb") as f:
        data = f.read()
    assert b"PV_FAULT_" not in data
    out = subprocess.run(["nm", PORTVAKT], capture_output=True, text=True).stdout
    assert "pv_fault_alloc" not in out
