"""`make run`: a SIGTERM to make alone (not to its process group) stops
the example, its demo services and its gateway, as Ctrl-C does; so does
make's death by SIGKILL, which leaves no chance to pass anything on.
And the example itself, on free ports with its files in the test's
directory: every curl line it prints answers as it says
(scripts/check-demo.sh, which the fresh-machine job runs too)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytestmark = pytest.mark.portvakt_only("portvakt's example runner")


def pids_with(word):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmd:
            out.append(int(p))
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_signal_to_make_stops_everything(sig):
    make = subprocess.Popen(["make", "--no-print-directory", "-C", ROOT, "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    out = ""
    try:
        for line in make.stdout:
            out += line
            if "Ctrl-C stops everything" in line:
                break
        assert "Ctrl-C stops everything" in out, out
        conf = os.path.join(ROOT, "build", "example", "demo.conf")
        runner = [p for p in pids_with("examples/run.py") if os.getsid(p) == make.pid]
        gateway = [p for p in pids_with(conf) if os.getsid(p) == make.pid]
        assert len(runner) == 1 and len(gateway) == 1, (runner, gateway)
        make.send_signal(sig)  # make alone, as `kill PID` does
        make.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = [p for p in runner + gateway if os.path.exists("/proc/%d" % p) and
                    open("/proc/%d/stat" % p).read().split(")")[1].split()[0] != "Z"]
            if not left:
                break
            time.sleep(0.1)
        assert not left, "still running after %s to make: %s" % (sig.name, left)
    finally:
        try:
            os.killpg(make.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        make.wait()


def test_every_printed_curl_line_answers(tmp_path):
    out_path = tmp_path / "run.out"
    with open(out_path, "wb") as out:
        run = subprocess.Popen([sys.executable, os.path.join(ROOT, "examples", "run.py"), "--any-ports",
                                "--dir", str(tmp_path / "example")], stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops everything" not in out_path.read_text():
            assert run.poll() is None and time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.1)
        text = out_path.read_text()
        # the certificate was made for this run, in the test's directory
        assert "The TLS certificate (made now): %s" % (tmp_path / "example" / "tls" / "cert.pem") in text, text
        assert "portvakt doctor on this host: " in text and "checks:" in text, text
        check = subprocess.run(["sh", os.path.join(ROOT, "scripts", "check-demo.sh"), str(out_path)],
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.count("  ok (") >= 14, check.stdout
        run.send_signal(signal.SIGTERM)
        assert run.wait(15) == 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
