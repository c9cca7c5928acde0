"""portvakt_dashboard in Debian's headless Chromium (python3-selenium,
chromium-driver), loaded while requests run: the numbers it shows match the
status JSON, both charts draw, the browser logs no error, and it fetches
nothing from another origin. A screenshot is kept in the test's tmp_path,
and copied to $PV_ARTEFACTS/dashboard.png when that names a directory
(`PV_ARTEFACTS=build make integration` keeps it under build/: tests write
nowhere else on their own)."""

import json
import shutil
import subprocess

import pytest

from conftest import PORTVAKT, EchoUpstream, free_port, http, wait_for
from dashboard_page import CONF, cell, keep_screenshot, shows_the_status_json, under_load

selenium = pytest.importorskip("selenium", reason="python3-selenium is not installed")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")



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


def test_dashboard_shows_the_status_json(portvakt, browser, tmp_path):
    with under_load(portvakt) as (port, app, halt):
        browser.get("http://127.0.0.1:%d/dashboard" % port)
        assert browser.title == "portvakt"
        shows_the_status_json(browser, port, app, halt)
        keep_screenshot(browser, tmp_path, "dashboard.png")
        # no console errors, and nothing fetched from another origin
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
        origins = set()
        for e in browser.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m.get("method") == "Network.requestWillBeSent":
                origins.add(m["params"]["request"]["url"].split("/")[2])
        assert origins == {"127.0.0.1:%d" % port}, origins


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
