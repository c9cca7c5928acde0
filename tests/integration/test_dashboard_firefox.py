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

import pytest

from conftest import EchoUpstream, free_port, http, wait_for
from dashboard_page import CONF, keep_screenshot, refreshes, shows_the_status_json, under_load
import marionette


@pytest.fixture
def browser():
    if not marionette.FIREFOX:
        pytest.skip("firefox-esr is not installed")
    ff = marionette.Firefox(free_port())
    ff.set_window_size(1280, 1400)
    ff.watch_requests()
    yield ff
    ff.quit()


def test_dashboard_in_firefox(portvakt, browser, tmp_path):
    with under_load(portvakt) as (port, app, halt):
        origin = "http://127.0.0.1:%d" % port
        browser.get(origin + "/dashboard")
        assert browser.execute_script("return document.title;") == "portvakt"
        shows_the_status_json(browser, port, app, halt)
        keep_screenshot(browser, tmp_path, "dashboard-firefox.png")
        # no script error, and nothing fetched from another origin
        assert browser.errors(origin + "/") == []
        assert set(browser.requests()) == {"127.0.0.1:%d" % port}


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
        keep_screenshot(browser, tmp_path, "dashboard-firefox-phone.png")
        assert browser.errors("http://127.0.0.1:%d/" % port) == []
    finally:
        app.stop()
