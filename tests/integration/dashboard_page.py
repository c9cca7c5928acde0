"""What the two dashboard browser tests share (test_dashboard.py in
Chromium, test_dashboard_firefox.py in Firefox): the gateway's config, a
steady load while the page is open, and the checks of the loaded page
against the status JSON. A browser here is anything with
execute_script(script, *args) and save_screenshot(path)."""

import contextlib
import json
import os
import shutil
import threading

from conftest import EchoUpstream, Reply, free_port, http, wait_for

CONF = """\
worker_processes 2;
error_log stderr warn;
http {
    access_log off;
    limit_req_zone $binary_remote_addr zone=perip:1m rate=1000r/s;
    upstream app { server @UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@PORT@;
        server_name dash.test;
        location /api/ { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
                         metrics_name api; limit_req zone=perip burst=100 nodelay; }
        location = /dashboard { allow 127.0.0.1; deny all; portvakt_dashboard; }
    }
}
"""


@contextlib.contextmanager
def under_load(portvakt):
    """The gateway on CONF in front of an app answering 500 for every tenth
    request, with requests running until halt() ends them: (port, app,
    halt)."""
    app = EchoUpstream(handler=lambda req: Reply(status=500 if "boom" in req.target else 200, body=b"ok\n"))
    stop = threading.Event()
    try:
        port = free_port()
        portvakt(CONF, PORT=port, UP=app.addr)

        def load():
            i = 0
            while not stop.is_set():
                http(port, target="/api/%s%d" % ("boom" if i % 10 == 0 else "ok", i))
                i += 1
        t = threading.Thread(target=load, daemon=True)
        t.start()

        def halt():
            stop.set()
            t.join(10)
        yield port, app, halt
    finally:
        stop.set()
        app.stop()


def refreshes(browser):
    return int(browser.execute_script("return document.body.getAttribute('data-refreshes') || 0;"))


def cell(browser, table, key, field):
    return browser.execute_script(
        "var r = document.querySelector('#%s tr[data-key=\"' + arguments[0] + '\"] td[data-field=\"%s\"]');"
        "return r ? r.textContent : null;" % (table, field), key)


def shows_the_status_json(browser, port, app, halt):
    """Three refreshes under load; the load stops; two refreshes later the
    page shows what the status JSON says, and both charts drew."""
    wait_for(lambda: refreshes(browser) >= 3, timeout=20, what="three refreshes under load")
    halt()
    seen = refreshes(browser)
    wait_for(lambda: refreshes(browser) >= seen + 2, timeout=20, what="two refreshes after the load")
    doc = json.loads(http(port, target="/dashboard?format=json").body)
    api = doc["http"]["location_zones"]["api"]
    assert api["requests"] > 10 and api["responses"]["5xx"] > 0
    assert cell(browser, "routes", "api", "requests") == format(api["requests"], ",")
    assert cell(browser, "routes", "api", "5xx") == format(api["responses"]["5xx"], ",")
    peer = doc["http"]["upstreams"]["app"]["peers"][0]
    key = "app " + app.addr
    assert cell(browser, "upstreams", key, "requests") == format(peer["requests"], ",")
    assert cell(browser, "upstreams", key, "state") == "up"
    assert cell(browser, "upstreams", key, "opened") == format(peer["connections_opened"], ",")
    assert cell(browser, "upstreams", key, "reused") == format(peer["connections_reused"], ",")
    assert cell(browser, "limits", "perip", "rejected") == format(doc["http"]["limit_reqs"]["perip"]["rejected"], ",")
    # portvakt doctor's host checks, each as the JSON has it
    checks = doc["host"]["checks"]
    assert {c["id"] for c in checks} >= {"somaxconn", "ip_local_port_range", "nofile"}
    for c in checks:
        assert c["status"] in ("ok", "warn", "fail")
        assert cell(browser, "checks", c["id"], "status") == c["status"].upper()
        assert cell(browser, "checks", c["id"], "value") == c["value"]
    # both charts drew lines: pixels other than the background and the grid
    for cid in ("chart-rps", "chart-p95"):
        colored = browser.execute_script(
            "var c = document.getElementById(arguments[0]), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;"
            "for (var i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && (Math.abs(d[i] - d[i + 2]) > 40)) n++;"
            "return n;", cid)
        assert colored > 50, (cid, colored)
    assert "api" in browser.execute_script("return document.getElementById('legend-rps').textContent;")
    assert browser.execute_script("return document.getElementById('err').textContent;") == ""


def keep_screenshot(browser, tmp_path, name):
    """A screenshot in tmp_path, copied to $PV_ARTEFACTS when that is set."""
    shot = str(tmp_path / name)
    assert browser.save_screenshot(shot) and os.path.getsize(shot) > 10000
    if os.environ.get("PV_ARTEFACTS"):
        os.makedirs(os.environ["PV_ARTEFACTS"], exist_ok=True)
        shutil.copy(shot, os.path.join(os.environ["PV_ARTEFACTS"], name))
