"""Run an installed portvakt under its systemd unit's settings, where
systemd itself cannot run (a test, a chroot). test_install.py starts this
as root in fresh mount and network namespaces (unshare), so the installed
default config can have its own port 80, /run and /var/log:

    unshare --mount --net --fork python3 unit_ns.py ROOT UNIT USER

ROOT is an install tree (DESTDIR, or / for the Debian package), UNIT its
portvakt.service, USER the account to run as (the unit's own when it
exists). What it does, as systemd would for the unit:

  - the loopback interface up; tmpfs on /run and /var/log, with
    /run/portvakt and /var/log/portvakt owned by USER (RuntimeDirectory=,
    LogsDirectory=);
  - ExecStartPre and ExecStart as USER with the unit's LimitNOFILE,
    AmbientCapabilities (so port 80 is bound without root) and
    NoNewPrivileges, through setpriv and prlimit, with NOTIFY_SOCKET set;
  - waits for READY=1, asks / on port 80, sends SIGHUP (RELOADING=1 then
    READY=1), then the unit's KillSignal (STOPPING=1) with a request in
    flight, and checks the exit status.

Prints one JSON object with what it saw; exit status 0 when all went
as expected.
"""
import fcntl
import json
import os
import pwd
import resource
import signal
import socket
import struct
import subprocess
import sys
import time

ROOT, UNIT, USER = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {"notify": [], "steps": []}


def fail(why):
    seen["error"] = why
    print(json.dumps(seen))
    sys.exit(1)


def unit_settings(path):
    """The [Service] lines of the unit, repeated keys kept in order."""
    out, section = {}, None
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            if ln.startswith("["):
                section = ln
                continue
            if section == "[Service]" and "=" in ln:
                k, v = ln.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def lo_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = struct.pack("16sH14s", b"lo", 0, b"")
    flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))  # SIOCSIFFLAGS, IFF_UP
    s.close()


def under_root(cmd):
    """The unit's command with its binary taken from ROOT."""
    words = cmd.split()
    if words[0].startswith("/usr/sbin/"):
        words[0] = os.path.join(ROOT, words[0].lstrip("/"))
    words = [w.replace("/etc/portvakt/", os.path.join(ROOT, "etc/portvakt/")) for w in words]
    return words


u = unit_settings(UNIT)
for want in ("Type", "ExecStart", "ExecStartPre", "LimitNOFILE", "AmbientCapabilities",
             "NoNewPrivileges", "KillSignal", "RuntimeDirectory", "LogsDirectory"):
    if want not in u:
        fail("the unit has no " + want)
if u["Type"] != ["notify"]:
    fail("Type is not notify")

lo_up()
for d in ("/run", "/var/log"):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", d], check=True)
for d in ("/run/" + u["RuntimeDirectory"][0], "/var/log/" + u["LogsDirectory"][0]):
    os.makedirs(d)
    os.chown(d, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)

caps = ",".join("+" + c.lower().replace("cap_", "") for c in u["AmbientCapabilities"][0].split())
pw = pwd.getpwnam(USER)
wrap = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--init-groups",
        "--inh-caps=" + caps, "--ambient-caps=" + caps]
if u["NoNewPrivileges"] == ["yes"]:
    wrap.append("--no-new-privs")
# the unit's LimitNOFILE, or the hard limit this machine allows when it
# is lower and may not be raised here (a container without
# CAP_SYS_RESOURCE); systemd would fail the same way
nofile = int(u["LimitNOFILE"][0])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
except (ValueError, OSError):
    seen["nofile_capped"] = "LimitNOFILE=%d above this machine's hard limit %d" % (nofile, hard)
    nofile = hard
wrap = ["prlimit", "--nofile=%s:%s" % (nofile, nofile), "--"] + wrap

pre = subprocess.run(wrap + under_root(u["ExecStartPre"][0]), capture_output=True, text=True)
seen["steps"].append(["ExecStartPre", pre.returncode, pre.stdout + pre.stderr])
if pre.returncode != 0:
    fail("ExecStartPre failed")

sockpath = "/run/notify.sock"
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(sockpath)
os.chmod(sockpath, 0o777)
ns.settimeout(15)
env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": sockpath, "LANG": "C.UTF-8"}
proc = subprocess.Popen(wrap + under_root(u["ExecStart"][0]), env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_notify(word):
    while True:
        try:
            msg = ns.recv(4096).decode()
        except socket.timeout:
            fail("no %s from portvakt" % word)
        seen["notify"].append(msg)
        if word in msg.split("\n"):
            return


def ask(path="/"):
    c = socket.create_connection(("127.0.0.1", 80), timeout=10)
    c.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
    data = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    c.close()
    return data.decode("latin-1")


wait_notify("READY=1")
with open("/proc/%d/status" % proc.pid) as f:
    st = f.read()
seen["uid"] = [ln.split()[1] for ln in st.splitlines() if ln.startswith("Uid:")][0]
seen["nofile"] = open("/proc/%d/limits" % proc.pid).read().split("Max open files")[1].split()[0]
seen["answer"] = ask().split("\r\n")[0]
proc.send_signal(signal.SIGHUP)
wait_notify("RELOADING=1")
wait_notify("READY=1")
seen["answer_after_reload"] = ask().split("\r\n")[0]

# a request in flight (its head not finished) when the stop comes: it is
# still answered, then the process exits 0
inflight = socket.create_connection(("127.0.0.1", 80), timeout=10)
inflight.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
time.sleep(0.3)
proc.send_signal(getattr(signal, u["KillSignal"][0]))
wait_notify("STOPPING=1")
inflight.sendall(b"\r\n")
got = b""
while True:
    b = inflight.recv(65536)
    if not b:
        break
    got += b
seen["answer_in_flight"] = got.decode("latin-1").split("\r\n")[0]
try:
    out, err = proc.communicate(timeout=30)
except subprocess.TimeoutExpired:
    proc.kill()
    fail("no exit after %s" % u["KillSignal"][0])
seen["exit"] = proc.returncode
seen["stderr"] = err
seen["access_log"] = open("/var/log/portvakt/access.log").read() \
    if os.path.exists("/var/log/portvakt/access.log") else None
print(json.dumps(seen))
