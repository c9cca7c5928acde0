"""A small client for Firefox's Marionette protocol, so the dashboard can be
tested in Debian's firefox-esr without geckodriver (which Debian does not
package).

Firefox runs headless with its own profile; user.js sets marionette.port
to a free port. Each message is its JSON length in decimal, a colon, then
the JSON: a command is [0, id, name, params], its answer [1, id, error,
result]. On connect Firefox first sends a handshake object.

Page scripts run in the content context. The chrome context (the browser
itself) reads the console service, where Firefox records every script
error of every page, and observes the HTTP requests a page makes: the
equivalents of Chromium's browser and performance logs."""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import _die_with_parent

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")

PREFS = {
    "marionette.port": None,  # set per run
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "extensions.update.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.aboutwelcome.enabled": False,
    "remote.prefs.recommended": True,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
}


class MarionetteError(Exception):
    pass


class Firefox:
    """firefox-esr --headless --marionette on PORT with a fresh profile."""

    def __init__(self, port, width=1280, height=1400, timeout=60.0):
        # the profile and a HOME of its own in one directory: Firefox does
        # not start without a writable HOME, and reads nothing of the user's
        self.dir = tempfile.mkdtemp(prefix="pv-firefox-")
        profile, home = os.path.join(self.dir, "profile"), os.path.join(self.dir, "home")
        os.mkdir(profile)
        os.mkdir(home)
        prefs = dict(PREFS, **{"marionette.port": port})
        with open(os.path.join(profile, "user.js"), "w") as f:
            for k, v in prefs.items():
                f.write("user_pref(%s, %s);\n" % (json.dumps(k), json.dumps(v)))
        env = dict(os.environ, HOME=home, MOZ_HEADLESS="1", MOZ_HEADLESS_WIDTH=str(width),
                   MOZ_HEADLESS_HEIGHT=str(height), MOZ_CRASHREPORTER_DISABLE="1")
        self.proc = subprocess.Popen(
            [FIREFOX, "--headless", "--marionette", "--remote-allow-system-access", "--no-remote",
             "--profile", profile],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self.sock = None
        self.next_id = 0
        try:
            self._connect(port, timeout)
        except BaseException:
            self.quit()
            raise

    def _connect(self, port, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise MarionetteError("firefox did not open marionette on port %d" % port)
                time.sleep(0.1)
        hello = self._read()
        if hello.get("marionetteProtocol") != 3:
            raise MarionetteError("unexpected handshake %r" % hello)
        self.command("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})

    def _read(self):
        n = b""
        while not n.endswith(b":"):
            c = self.sock.recv(1)
            if not c:
                raise MarionetteError("marionette closed the connection")
            n += c
        want, buf = int(n[:-1]), b""
        while len(buf) < want:
            c = self.sock.recv(want - len(buf))
            if not c:
                raise MarionetteError("marionette closed the connection")
            buf += c
        return json.loads(buf)

    def command(self, name, params=None):
        self.next_id += 1
        msg = json.dumps([0, self.next_id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(msg), msg))
        while True:
            kind, mid, err, result = self._read()
            if kind == 1 and mid == self.next_id:
                break
        if err:
            raise MarionetteError("%s: %s: %s" % (name, err.get("error"), err.get("message")))
        return result

    def get(self, url):
        self.command("WebDriver:Navigate", {"url": url})

    def execute_script(self, script, *args):
        return self.command("WebDriver:ExecuteScript", {"script": script, "args": list(args)}).get("value")

    def execute_chrome(self, script, *args):
        """Runs SCRIPT in the browser's own (privileged) context."""
        self.command("Marionette:SetContext", {"value": "chrome"})
        try:
            return self.execute_script(script, *args)
        finally:
            self.command("Marionette:SetContext", {"value": "content"})

    def set_window_size(self, width, height):
        self.command("WebDriver:SetWindowRect", {"width": width, "height": height})

    def save_screenshot(self, path):
        png = base64.b64decode(self.command("WebDriver:TakeScreenshot", {"full": False})["value"])
        with open(path, "wb") as f:
            f.write(png)
        return True

    def watch_requests(self):
        """From now on, records the host:port of every HTTP request a page
        makes (not the browser's own); requests() returns them."""
        self.execute_chrome("""
            if (!window.pvRequests) {
                window.pvRequests = [];
                Services.obs.addObserver({ observe(subject) {
                    const ch = subject.QueryInterface(Ci.nsIChannel), bc = ch.loadInfo.browsingContext;
                    if (bc && bc.isContent)
                        window.pvRequests.push(ch.URI.hostPort);
                } }, "http-on-modify-request");
            }""")

    def requests(self):
        return self.execute_chrome("return window.pvRequests || [];")

    def errors(self, url_prefix):
        """Script errors (not warnings) Firefox recorded for pages under
        URL_PREFIX, as 'source:line: message'."""
        return self.execute_chrome("""
            return Services.console.getMessageArray().filter(m =>
                m instanceof Ci.nsIScriptError && !(m.flags & Ci.nsIScriptError.warningFlag)
                && (m.sourceName.startsWith(arguments[0]) || m.category.startsWith("content"))
            ).map(m => m.sourceName + ":" + m.lineNumber + ": " + m.errorMessage);""", url_prefix)

    def set_phone_width(self, width=390, height=844):
        """A viewport of WIDTH x HEIGHT CSS pixels at two device pixels
        each, as on a phone: Firefox keeps a window at least 500 wide, so
        the window is twice the size and the page zoomed to 200 %."""
        self.set_window_size(2 * width, 2 * height)
        self.execute_chrome("gBrowser.selectedBrowser.fullZoom = 2;")

    def quit(self):
        if self.sock:
            try:
                self.command("Marionette:Quit", {"flags": ["eForceQuit"]})
            except (OSError, MarionetteError, ValueError):
                pass
            self.sock.close()
            self.sock = None
        elif self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
