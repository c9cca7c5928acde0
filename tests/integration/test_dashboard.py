"""portvakt_dashboard in Debian's headless Chromium (python3-selenium,
chromium-driver), loaded while requests run: the numbers it shows match the
status JSON, both charts draw, the browser logs no error, and it fetches
nothing from another origin. A screenshot is kept in the test's tmp_path,
and copied to $PV_ARTEFACTS/dashboard.png when that names a directory
(`PV_ARTEFACTS=build make integration` keeps it under build/: tests write
nowhere else on their own)."""

import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import PORTVAKT, EchoUpstream, Reply, free_port, http, wait_for

selenium = pytest.importorskip("selenium", reason="python3-selenium is not installed")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

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


@pytest.fixture
def browser():
    if not CHROMIUM or not DRIVER:
        pytest.skip("chromium and chromium-driver are not installed")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1400", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield d
    d.quit()


def cell(driver, table, key, field):
    return driver.execute_script(
        "var r = document.querySelector('#%s tr[data-key=\"' + arguments[0] + '\"] td[data-field=\"%s\"]');"
        "return r ? r.textContent : null;" % (table, field), key)


def test_dashboard_shows_the_status_json(portvakt, browser, tmp_path):
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
        url = "http://127.0.0.1:%d/dashboard" % port
        browser.get(url)
        assert browser.title == "portvakt"
        # refreshed twice under load: rates and charts have two points
        wait_for(lambda: int(browser.find_element("tag name", "body").get_attribute("data-refreshes") or 0) >= 3,
                 timeout=20, what="three refreshes under load")
        stop.set()
        t.join(10)
        # once the load stopped, the next refresh shows what the JSON says
        seen = int(browser.find_element("tag name", "body").get_attribute("data-refreshes"))
        wait_for(lambda: int(browser.find_element("tag name", "body").get_attribute("data-refreshes")) >= seen + 2,
                 timeout=20, what="two refreshes after the load")
        doc = json.loads(http(port, target="/dashboard?format=json").body)
        api = doc["http"]["location_zones"]["api"]
        assert api["requests"] > 10
        assert cell(browser, "routes", "api", "requests") == format(api["requests"], ",")
        assert cell(browser, "routes", "api", "5xx") == format(api["responses"]["5xx"], ",")
        assert api["responses"]["5xx"] > 0
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
        legend = browser.find_element("id", "legend-rps").text
        assert "api" in legend
        shot = str(tmp_path / "dashboard.png")
        assert browser.save_screenshot(shot) and os.path.getsize(shot) > 10000
        if os.environ.get("PV_ARTEFACTS"):
            os.makedirs(os.environ["PV_ARTEFACTS"], exist_ok=True)
            shutil.copy(shot, os.path.join(os.environ["PV_ARTEFACTS"], "dashboard.png"))
        # no console errors, and nothing fetched from another origin
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        origins = set()
        for e in browser.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m.get("method") == "Network.requestWillBeSent":
                origins.add(m["params"]["request"]["url"].split("/")[2])
        assert origins == {"127.0.0.1:%d" % port}, origins
        assert browser.find_element("id", "err").text == ""
    finally:
        stop.set()
        app.stop()


def test_dashboard_on_a_phone_width(portvakt, browser):
    """At a phone's width nothing overflows the page sideways: wide tables
    scroll inside their section."""
    app = EchoUpstream()
    try:
        port = free_port()
        portvakt(CONF, PORT=port, UP=app.addr)
        assert http(port, target="/api/x").status == 200
        browser.set_window_size(390, 844)
        browser.get("http://127.0.0.1:%d/dashboard" % port)
        wait_for(lambda: int(browser.find_element("tag name", "body").get_attribute("data-refreshes") or 0) >= 1,
                 timeout=20, what="a refresh")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
        assert overflow <= 0, overflow
    finally:
        app.stop()


RES_CONF = """\
worker_processes 1;
error_log stderr warn;
http {
    access_log off;
    gateway_jurisdiction NO;
    upstream oslo { jurisdiction NO; server @UP@; }
    upstream frankfurt { server @UP2@ jurisdiction=DE; }
    server {
        listen 127.0.0.1:@PORT@;
        location /customers/ { residency NO; proxy_pass http://oslo; }
        location /orders/ { residency EEA; proxy_pass http://frankfurt; }
        location /open/ { residency off; return 204; }
        location = /dashboard { portvakt_dashboard; }
    }
}
"""


def test_dashboard_shows_the_residency_map(portvakt, browser):
    """The status document carries the same map as `portvakt residency
    --json`, and the dashboard lists each route with its jurisdiction;
    without a residency scope the panel and the key are absent."""
    app, app2 = EchoUpstream(), EchoUpstream()
    try:
        port = free_port()
        gw = portvakt(RES_CONF, PORT=port, UP=app.addr, UP2=app2.addr)
        doc = json.loads(http(port, target="/dashboard?format=json").body)
        out = subprocess.run([PORTVAKT, "residency", "-c", str(gw.conf_path), "--json"], capture_output=True,
                             text=True, check=True)
        assert doc["residency"] == json.loads(out.stdout)
        assert len(doc["residency"]["reaches"]) == 2
        assert doc["residency"]["gateway"] == "NO"
        assert [r["location"] for r in doc["residency"]["lifted"]] == ["/open/"]
        browser.get("http://127.0.0.1:%d/dashboard" % port)
        wait_for(lambda: int(browser.find_element("tag name", "body").get_attribute("data-refreshes") or 0) >= 1,
                 timeout=20, what="a refresh")
        assert browser.find_element("id", "residency-panel").is_displayed()
        assert cell(browser, "residency", "/customers/ " + app.addr, "jurisdiction") == "NO"
        assert cell(browser, "residency", "/orders/ " + app2.addr, "jurisdiction") == "DE"
        assert "EEA" in cell(browser, "residency", "/orders/ " + app2.addr, "why")
        assert "residency off" in browser.find_element("id", "residency").text
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
    finally:
        app.stop()
        app2.stop()


def test_no_residency_no_panel(portvakt, browser):
    app = EchoUpstream()
    try:
        port = free_port()
        portvakt(CONF, PORT=port, UP=app.addr)
        assert "residency" not in json.loads(http(port, target="/dashboard?format=json").body)
        browser.get("http://127.0.0.1:%d/dashboard" % port)
        wait_for(lambda: int(browser.find_element("tag name", "body").get_attribute("data-refreshes") or 0) >= 1,
                 timeout=20, what="a refresh")
        assert not browser.find_element("id", "residency-panel").is_displayed()
    finally:
        app.stop()
