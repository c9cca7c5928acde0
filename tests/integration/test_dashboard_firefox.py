"""portvakt_dashboard in Debian's headless firefox-esr, driven over
Marionette by tests/integration/marionette.py (Debian has no geckodriver):
the same checks as test_dashboard.py makes in Chromium. Loaded while
requests run, the numbers it shows match the status JSON, both charts
draw, Firefox records no script error for the page, and the page fetches
nothing from another origin; at a phone's width nothing overflows
sideways. Screenshots (dashboard-firefox.png, dashboard-firefox-phone.png)
are kept in each test's tmp_path, and copied to $PV_ARTEFACTS when that
names a directory (`PV_ARTEFACTS=build make integration` keeps them under
build/)."""

import json
import os
import shutil
import threading

import pytest

from conftest import EchoUpstream, Reply, free_port, http, wait_for
import marionette

CONF = """\
worker_processes 2;
error_log stderr warn;
http {
    access_log off;
    limit_req_zone $binary_remote_addr zone=perip:1m rate=1000r/s;
    upstream app { server @UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@PORT@;
        location /api/ { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
                         metrics_name api; limit_req zone=perip burst=100 nodelay; }
        location = /dashboard { allow 127.0.0.1; deny all; portvakt_dashboard; }
    }
}
"""


@pytest.fixture
def browser():
    if not marionette.FIREFOX:
        pytest.skip("firefox-esr is not installed")
    ff = marionette.Firefox(free_port())
    ff.set_window_size(1280, 1400)
    ff.watch_requests()
    yield ff
    ff.quit()


def refreshes(browser):
    return int(browser.execute_script("return document.body.getAttribute('data-refreshes') || 0;"))


def cell(browser, table, key, field):
    return browser.execute_script(
        "var r = document.querySelector('#%s tr[data-key=\"' + arguments[0] + '\"] td[data-field=\"%s\"]');"
        "return r ? r.textContent : null;" % (table, field), key)


def screenshot(browser, tmp_path, name):
    shot = str(tmp_path / name)
    assert browser.save_screenshot(shot) and os.path.getsize(shot) > 10000
    if os.environ.get("PV_ARTEFACTS"):
        os.makedirs(os.environ["PV_ARTEFACTS"], exist_ok=True)
        shutil.copy(shot, os.path.join(os.environ["PV_ARTEFACTS"], name))


def test_dashboard_in_firefox(portvakt, browser, tmp_path):
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
        origin = "http://127.0.0.1:%d" % port
        browser.get(origin + "/dashboard")
        assert browser.execute_script("return document.title;") == "portvakt"
        wait_for(lambda: refreshes(browser) >= 3, timeout=20, what="three refreshes under load")
        stop.set()
        t.join(10)
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
        checks = doc["host"]["checks"]
        assert {c["id"] for c in checks} >= {"somaxconn", "ip_local_port_range", "nofile"}
        for c in checks:
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
        screenshot(browser, tmp_path, "dashboard-firefox.png")
        # no script error, and nothing fetched from another origin
        assert browser.errors(origin + "/") == []
        assert set(browser.requests()) == {"127.0.0.1:%d" % port}
        assert browser.execute_script("return document.getElementById('err').textContent;") == ""
    finally:
        stop.set()
        app.stop()


def test_dashboard_in_firefox_on_a_phone_width(portvakt, browser, tmp_path):
    """At a phone's 390 CSS pixels (two device pixels each) nothing
    overflows the page sideways: wide tables scroll inside their section."""
    app = EchoUpstream()
    try:
        port = free_port()
        portvakt(CONF, PORT=port, UP=app.addr)
        assert http(port, target="/api/x").status == 200
        browser.get("http://127.0.0.1:%d/dashboard" % port)
        browser.set_phone_width(390, 844)
        seen = refreshes(browser)
        wait_for(lambda: refreshes(browser) >= seen + 1, timeout=20, what="a refresh")
        assert browser.execute_script("return window.innerWidth;") == 390
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
        assert overflow <= 0, overflow
        screenshot(browser, tmp_path, "dashboard-firefox-phone.png")
        assert browser.errors("http://127.0.0.1:%d/" % port) == []
    finally:
        app.stop()
