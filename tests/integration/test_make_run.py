"""`make run`: Ctrl-C (SIGINT to make's process group) stops the example,
its demo services and its gateway; so does a SIGTERM to make alone (not
to its process group), and make's death by SIGKILL, which leaves no
chance to pass anything on. The gateway's ports: 8080 and 8443 when they
are free, others with a note when they are taken (in a network namespace
of the test's own, where both cases can be made). And the example
itself, on free ports with its files in the test's directory: every curl
line it prints answers as it says (scripts/check-demo.sh, which the
fresh-machine job runs too)."""
import json
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, -signal.SIGINT], ids=["SIGTERM", "SIGKILL", "Ctrl-C"])
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
        if sig > 0:
            make.send_signal(sig)  # make alone, as `kill PID` does
        else:
            os.killpg(make.pid, -sig)  # the terminal's Ctrl-C: the whole foreground group
        sig = signal.Signals(abs(sig))
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


# Run in a network namespace of its own (unshare --net): loopback up,
# 8080 and 8443 held by listeners when argv[3] is "taken", then
# examples/run.py with its files in argv[2]; prints what it printed and
# the status of a request to the HTTP port it named, and stops it as
# Ctrl-C does.
PORTS_NS = r"""
import fcntl, json, os, re, signal, socket, struct, subprocess, sys, time, urllib.request
run_py, outdir, mode = sys.argv[1:4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b"")))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))
held = []
if mode == "taken":
    for p in (8080, 8443):
        h = socket.socket()
        h.bind(("127.0.0.1", p))
        h.listen(1)
        held.append(h)
log = open(os.path.join(outdir, "run.out"), "w+")
run = subprocess.Popen([sys.executable, run_py, "--dir", outdir], stdout=log, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL)
deadline = time.monotonic() + 60
while "Ctrl-C stops everything" not in open(log.name).read() and run.poll() is None and time.monotonic() < deadline:
    time.sleep(0.1)
text = open(log.name).read()
m = re.search(r"listening on http://127\.0\.0\.1:(\d+) and https://127\.0\.0\.1:(\d+)", text)
status = None
if m:
    status = urllib.request.urlopen("http://127.0.0.1:%s/readyz" % m.group(1), timeout=10).status
run.send_signal(signal.SIGINT)
try:
    rc = run.wait(15)
except subprocess.TimeoutExpired:
    # say where it hangs: its threads' stacks (run.py dumps them on
    # SIGUSR1), its log, and what still runs
    run.send_signal(signal.SIGUSR1)
    time.sleep(1)
    try:
        ps = subprocess.run(["ps", "-p", str(run.pid), "--ppid", str(run.pid), "-o", "pid,ppid,stat,wchan:32,args"],
                            capture_output=True, text=True).stdout
    except OSError as e:
        ps = str(e)
    raise SystemExit("examples/run.py did not stop within 15 s of Ctrl-C\n--- its log:\n%s\n--- ps:\n%s"
                     % (open(log.name).read()[-3000:], ps))
print(json.dumps({"text": text, "ports": [int(m.group(1)), int(m.group(2))] if m else None,
                  "status": status, "exit": rc}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a network namespace of its own)")
@pytest.mark.parametrize("mode", ["free", "taken"])
def test_fixed_ports_or_free_ones_with_a_note(tmp_path, mode):
    r = subprocess.run(["unshare", "--net", "--fork", sys.executable, "-c", PORTS_NS,
                        os.path.join(ROOT, "examples", "run.py"), str(tmp_path), mode],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = json.loads(r.stdout)
    text = seen["text"]
    assert seen["status"] == 200 and seen["exit"] == 0, seen
    if mode == "free":
        assert seen["ports"] == [8080, 8443], text
        assert "is taken" not in text, text
    else:
        gw, tls = seen["ports"]
        assert gw not in (8080, 8443) and tls not in (8080, 8443), text
        assert "(port 8080 is taken on this machine: using %d)" % gw in text, text
        assert "(port 8443 is taken on this machine: using %d)" % tls in text, text
