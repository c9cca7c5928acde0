"""`make run`: a SIGTERM to make alone (not to its process group) stops
the example, its demo services and its gateway, as Ctrl-C does; so does
make's death by SIGKILL, which leaves no chance to pass anything on."""
import os
import signal
import subprocess
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
        conf = os.path.join(ROOT, "build", "example", "gateway.conf")
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
