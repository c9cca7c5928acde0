"""Active health checks (health_check, NGINX Plus's syntax; NGINX OSS has
none, so these run on portvakt only): a server failing its check gets no
traffic until it passes again, a mandatory server none before its first
pass, and an upstream with no healthy server answers 503 with
Retry-After."""

from conftest import EchoUpstream, Reply, free_port, http, wait_for

CONF = """\
error_log stderr warn;
http {
    access_log off;
    upstream u {
@UPSTREAM@
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://u;
            health_check interval=200ms uri=/health @CHECK@;
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


def checked_server(state):
    """An upstream whose /health answers 200 while state['ok'], else 503."""
    def handler(req):
        if req.target == "/health":
            return Reply(status=200 if state["ok"] else 503, body=b"")
        return None
    return EchoUpstream(handler=handler)


def app_requests(u):
    return [r for r in u.requests if r.target.startswith("/app")]


def test_failing_check_takes_server_out_and_back(portvakt):
    a_state, b_state = {"ok": True}, {"ok": False}
    a, b = checked_server(a_state), checked_server(b_state)
    try:
        port = free_port()
        gw = portvakt(CONF, PORT=port, CHECK="", UPSTREAM="server %s; server %s;" % (a.addr, b.addr))
        wait_for(lambda: "%s in upstream \"u\" failed its health check (status 503): down" % b.addr in gw.stderr(),
                 timeout=10, what="b's check to fail")
        for i in range(6):
            assert http(port, target="/app%d" % i).status == 200
        assert len(app_requests(a)) == 6 and not app_requests(b)
        b_state["ok"] = True
        wait_for(lambda: "%s in upstream \"u\" passed its health check: up" % b.addr in gw.stderr(),
                 timeout=10, what="b's check to pass")
        for i in range(6):
            assert http(port, target="/app-back%d" % i).status == 200
        assert app_requests(b)
        # once per change
        assert gw.stderr().count("%s in upstream \"u\" failed its health check" % b.addr) == 1
    finally:
        a.stop()
        b.stop()


def test_back_from_failed_checks_slow_start(portvakt):
    """slow_start (NGINX Plus): a server its checks bring back takes a
    small share of requests at first, not its weight's. With weights 10
    and 10 and an hour of slow start, b comes back at weight 1: 2 of 22
    requests (half of them without slow_start)."""
    a_state, b_state = {"ok": True}, {"ok": False}
    a, b = checked_server(a_state), checked_server(b_state)
    try:
        port = free_port()
        gw = portvakt(CONF, PORT=port, CHECK="",
                      UPSTREAM="server %s weight=10; server %s weight=10 slow_start=1h;" % (a.addr, b.addr))
        wait_for(lambda: "%s in upstream \"u\" failed its health check" % b.addr in gw.stderr(),
                 timeout=10, what="b's check to fail")
        b_state["ok"] = True
        wait_for(lambda: "%s in upstream \"u\" passed its health check: up" % b.addr in gw.stderr(),
                 timeout=10, what="b's check to pass")
        for i in range(22):
            assert http(port, target="/app%d" % i).status == 200
        assert 1 <= len(app_requests(b)) <= 3
        assert len(app_requests(a)) == 22 - len(app_requests(b))
    finally:
        a.stop()
        b.stop()


def test_one_worker_checks_every_worker_sees(portvakt):
    """Two workers: each server is checked by one worker only (mandatory,
    so at start, and the next check an hour later: one /health request
    each, not one per worker), and the verdict holds for both workers'
    requests (20 connections spread over both)."""
    a_state, b_state = {"ok": True}, {"ok": False}
    a, b = checked_server(a_state), checked_server(b_state)
    try:
        port = free_port()
        gw = portvakt("worker_processes 2;\n" + CONF.replace("interval=200ms", "interval=1h"), PORT=port,
                      CHECK="mandatory", UPSTREAM="server %s; server %s;" % (a.addr, b.addr))
        wait_for(lambda: "%s in upstream \"u\" failed its health check" % b.addr in gw.stderr(),
                 timeout=10, what="b's check to fail")
        wait_for(lambda: http(port, target="/app-first").status == 200, timeout=10, what="a's check to pass")
        for i in range(20):
            assert http(port, target="/app%d" % i).status == 200
        assert not app_requests(b)
        assert len([r for r in a.requests if r.target == "/health"]) == 1
        assert len([r for r in b.requests if r.target == "/health"]) == 1
    finally:
        a.stop()
        b.stop()


def test_mandatory_gates_traffic_with_503(portvakt):
    state = {"ok": False}
    s = checked_server(state)
    try:
        port = free_port()
        gw = portvakt(CONF, PORT=port, CHECK="mandatory", UPSTREAM="server %s;" % s.addr)
        r = http(port, target="/app")
        assert r.status == 503
        assert r.header("Retry-After") == "1"
        assert not app_requests(s)
        wait_for(lambda: "no healthy servers in upstream \"u\"" in gw.stderr(), what="the reason logged")
        assert http(port, target="/app2").status == 503
        assert metric(port, "portvakt_upstream_health_gated_total", upstream="u") == 2
        assert metric(port, "portvakt_upstream_server_requests_total", upstream="u", server=s.addr) == 0
        state["ok"] = True
        wait_for(lambda: "passed its health check: up" in gw.stderr(), timeout=10, what="the first pass")
        assert http(port, target="/app").status == 200
        assert app_requests(s)
    finally:
        s.stop()


def test_match_block(portvakt):
    """A 200 whose body or header says the server is not ready fails a
    match block that asks for them."""
    state = {"body": b"degraded", "ready": "no"}

    def handler(req):
        if req.target == "/health":
            return Reply(status=200, headers=[("X-Ready", state["ready"])], body=state["body"])
        return None

    def good(req):
        if req.target == "/health":
            return Reply(status=200, headers=[("X-Ready", "yes")], body=b"ok")
        return None

    a, b = EchoUpstream(handler=good), EchoUpstream(handler=handler)
    conf = CONF.replace("http {", "http {\n    match ready { status 200-299; header X-Ready = yes; "
                                  "header ! X-Draining; body ~ \"^ok\"; }", 1)
    try:
        port = free_port()
        gw = portvakt(conf, PORT=port, CHECK="match=ready", UPSTREAM="server %s; server %s;" % (b.addr, a.addr))
        wait_for(lambda: "%s in upstream \"u\" failed its health check (status 200, line 2 of match \"ready\")"
                 % b.addr in gw.stderr(), timeout=10, what="b's match to fail")
        for i in range(4):
            assert http(port, target="/app%d" % i).status == 200
        assert not app_requests(b)
        state["ready"] = "yes"
        state["body"] = b"ok, serving"
        wait_for(lambda: "%s in upstream \"u\" passed its health check: up" % b.addr in gw.stderr(),
                 timeout=10, what="b's match to pass")
        for i in range(4):
            assert http(port, target="/app-back%d" % i).status == 200
        assert app_requests(b)
    finally:
        a.stop()
        b.stop()


def test_health_check_errors(portvakt, tmp_path):
    import subprocess
    from conftest import PORTVAKT
    bad = {
        "health_check interval=0;": "invalid parameter \"interval=0\"",
        "health_check fails=x;": "invalid parameter \"fails=x\"",
        "health_check uri=health;": "invalid parameter \"uri=health\"",
        "health_check match=ok;": "match \"ok\" not found",
        "health_check; health_check;": "\"health_check\" directive is duplicate",
        "health_check jitter=x;": "invalid parameter \"jitter=x\"",
        "health_check persistent;": "invalid parameter \"persistent\"",
        "health_check persistent mandatory;": "invalid parameter \"persistent\"",
    }
    for line, msg in bad.items():
        conf = tmp_path / "bad.conf"
        conf.write_text("http { server { listen 127.0.0.1:%d; location / { proxy_pass http://127.0.0.1:1; %s } } }"
                        % (free_port(), line))
        out = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
        assert out.returncode != 0
        assert msg in out.stderr, (line, out.stderr)
    for block, msg in {"status 99;": "invalid status \"99\"", "status 300-200;": "invalid status \"300-200\"",
                       "header X ~~ y;": "invalid operator \"~~\"", "body = x;": "invalid operator \"=\"",
                       "body ~ \"(\";": "pcre2_compile()", "code 200;": "unknown directive \"code\" in \"match\""}.items():
        conf = tmp_path / "bad.conf"
        conf.write_text("http { match m { %s } server { listen 127.0.0.1:%d; location / { proxy_pass http://127.0.0.1:1;"
                        " health_check match=m; } } }" % (block, free_port()))
        out = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
        assert out.returncode != 0
        assert msg in out.stderr, (block, out.stderr)
    good = tmp_path / "good.conf"
    good.write_text("http { server { listen 127.0.0.1:%d; location / { proxy_pass http://127.0.0.1:1;"
                    " health_check interval=1s jitter=500ms fails=2 passes=3 port=8080 mandatory persistent; } } }"
                    % free_port())
    out = subprocess.run([PORTVAKT, "-t", "-c", str(good)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    conf = tmp_path / "bad.conf"
    conf.write_text("http { server { listen 127.0.0.1:%d; location / { health_check; } } }" % free_port())
    out = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert "\"health_check\" needs \"proxy_pass\" in the same location" in out.stderr


def test_reload_keeps_health(portvakt):
    """After a reload a server the checks had taken out stays out: the new
    configuration checks only after its interval (60s here), and until
    then the state found before the reload holds."""
    import os
    import signal
    from conftest import render
    a_state, b_state = {"ok": True}, {"ok": False}
    a, b = checked_server(a_state), checked_server(b_state)
    conf = CONF.replace("location / {", 'location = /v { return 200 "@V@"; }\n        location / {')
    try:
        port = free_port()
        subs = dict(PORT=port, UPSTREAM="server %s; server %s;" % (a.addr, b.addr))
        gw = portvakt(conf, CHECK="", V="one", **subs)
        wait_for(lambda: "failed its health check" in gw.stderr(), timeout=10, what="b's check to fail")
        with open(gw.conf_path, "w") as f:
            f.write(render(conf, CHECK="", V="two", **subs).replace("interval=200ms", "interval=60s"))
        os.kill(gw.pid, signal.SIGHUP)
        wait_for(lambda: http(port, target="/v").body == b"two", what="the new config")
        for i in range(6):
            assert http(port, target="/app%d" % i).status == 200
        assert len(app_requests(a)) == 6 and not app_requests(b)
    finally:
        a.stop()
        b.stop()


def test_live_and_ready_probes(portvakt, tmp_path):
    state = {"ok": False}
    s = checked_server(state)
    conf = CONF.replace("location / {", "location = /live { portvakt_live; }\n"
                        "        location = /ready { portvakt_ready; }\n        location / {")
    try:
        port = free_port()
        gw = portvakt(conf, PORT=port, CHECK="mandatory", UPSTREAM="server %s;" % s.addr)
        r = http(port, target="/live")
        assert (r.status, r.header("Content-Type"), r.body) == (200, "application/json", b'{"status":"live"}\n')
        r = http(port, target="/ready")
        assert r.status == 503
        assert r.json() == {"status": "not ready", "reason": "no healthy server", "upstreams": ["u"]}
        state["ok"] = True
        wait_for(lambda: http(port, target="/ready").status == 200, timeout=10, what="ready")
        assert http(port, target="/ready").json() == {"status": "ready"}
    finally:
        s.stop()
    import subprocess
    from conftest import PORTVAKT
    bad = tmp_path / "bad.conf"
    bad.write_text("http { server { listen 127.0.0.1:%d; location / { portvakt_ready; proxy_pass http://127.0.0.1:1; } } }"
                   % free_port())
    out = subprocess.run([PORTVAKT, "-t", "-c", str(bad)], capture_output=True, text=True, timeout=10)
    assert "\"portvakt_ready\" and \"proxy_pass\" in one location" in out.stderr


TWO_CONF = """\
error_log stderr warn;
http {
    access_log off;
    upstream u { server @U@; }
    upstream v { server @V@; }
    upstream w { server 127.0.0.1:1; }
    server {
        listen 127.0.0.1:@PORT@;
        location = /ready { portvakt_ready; }
        location /u/ { proxy_pass http://u; health_check interval=200ms uri=/health mandatory; }
        location /v/ { proxy_pass http://v; health_check interval=200ms uri=/health mandatory; }
        location /w/ { proxy_pass http://w; }
    }
}
"""


def test_ready_follows_every_mandatory_upstream(portvakt):
    """Readiness names each mandatory upstream without a healthy server,
    and turns back to 503 when a server it was ready with fails; an
    upstream without mandatory checks (w, never reachable) does not count."""
    u_state, v_state = {"ok": True}, {"ok": False}
    u, v = checked_server(u_state), checked_server(v_state)
    try:
        port = free_port()
        portvakt(TWO_CONF, PORT=port, U=u.addr, V=v.addr)
        wait_for(lambda: http(port, target="/ready").json().get("upstreams") == ["v"], timeout=10,
                 what="only v not ready")
        assert http(port, target="/ready").status == 503
        v_state["ok"] = True
        wait_for(lambda: http(port, target="/ready").status == 200, timeout=10, what="ready")
        u_state["ok"] = False
        v_state["ok"] = False
        wait_for(lambda: http(port, target="/ready").json().get("upstreams") == ["u", "v"], timeout=10,
                 what="both not ready again")
        r = http(port, target="/ready")
        assert r.status == 503 and r.json()["reason"] == "no healthy server"
    finally:
        u.stop()
        v.stop()
