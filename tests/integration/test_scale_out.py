"""The README's "Scale out" recipe, on one machine: two gateway instances
with their own small main files that include the same shared config
files, one Redis for the limits, and a change to the shared files applied
to both by SIGHUP."""
import os
import signal

import pytest

from conftest import http, wait_for

pytestmark = pytest.mark.portvakt_only("Redis-backed zones are a portvakt extension")

SHARED_HTTP = """
limit_req_zone $http_x_client zone=api:1m rate=6r/m redis=127.0.0.1:%(redis)d;
limit_req_status 429;
"""

ROUTES = """
location = /version { return 200 "%(version)s\\n"; }
location / {
    limit_req zone=api burst=2 nodelay;
    proxy_pass http://127.0.0.1:%(up)d;
}
"""

INSTANCE = """
worker_processes 1;
error_log stderr notice;
http {
    include @SHARED@/http.conf;
    server {
        listen 127.0.0.1:@GW@;
        include @SHARED@/routes.conf;
    }
}
"""


def test_two_instances_one_redis_shared_files_reload(portvakt, upstream, port, redis_server, tmp_path):
    up = upstream()
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "http.conf").write_text(SHARED_HTTP % {"redis": redis_server.port})
    (shared / "routes.conf").write_text(ROUTES % {"version": "v1", "up": up.port})
    gws = [portvakt(INSTANCE, GW=port(), SHARED=str(shared)) for _ in range(2)]

    # one limit across both instances: burst 2 + 1 passes in all
    got = [http(gws[i % 2].port, "GET", "/", headers=[("X-Client", "k")], timeout=5).status
           for i in range(8)]
    assert got.count(200) == 3 and got.count(429) == 5, got
    assert len(up.requests) == 3

    # the shared files change; SIGHUP to each instance applies them
    (shared / "routes.conf").write_text(ROUTES % {"version": "v2", "up": up.port})
    for gw in gws:
        assert http(gw.port, "GET", "/version").body == b"v1\n"
        os.kill(gw.pid, signal.SIGHUP)
    for gw in gws:
        wait_for(lambda: http(gw.port, "GET", "/version").body == b"v2\n", 10,
                 what="v2 from the instance on port %d" % gw.port)
        wait_for(lambda: "configuration reloaded" in gw.stderr(), 10, what="the reload logged")
