"""`portvakt doctor`: the host audit against a config, run on fake /proc and
/sys trees (tests/integration/fixtures/sysroot-*) through --sys-root, so
the results do not depend on the machine running the tests:

  sysroot-good        a tuned host, cgroup v2, no CPU quota, 1 GiB memory limit
  sysroot-bad         somaxconn 128, no syncookies, no tw_reuse, default ports
  sysroot-cgv2-quota  cgroup v2 cpu.max "50000 100000", 64 MiB on the parent
  sysroot-cgv1        cgroup v1 cfs quota 50000/100000, 512 MiB (docker
                      --cpus=0.5 --memory=512m, the brief's compose limits)

The descriptor limit is the real process's (getrlimit has no file), so each
run raises its soft limit first. PV_DOCTOR_STEAL_MS=0 makes the steal
sample instant; a static /proc/stat then shows no steal.
"""

import json
import os
import pty
import re
import resource
import shutil
import subprocess
import threading
import time

import pytest

from conftest import PORTVAKT

pytestmark = pytest.mark.portvakt_only("portvakt's own doctor command")

# the doctor runs with cwd "/", so a relative PORTVAKT must be made absolute
BIN = os.path.abspath(PORTVAKT)
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
GOOD = os.path.join(FIXTURES, "sysroot-good")
BAD = os.path.join(FIXTURES, "sysroot-bad")
CGV2 = os.path.join(FIXTURES, "sysroot-cgv2-quota")
CGV1 = os.path.join(FIXTURES, "sysroot-cgv1")

IDS = ["somaxconn", "tcp_max_syn_backlog", "tcp_syncookies", "tcp_tw_reuse",
       "ip_local_port_range", "file_max", "nofile", "cgroup_cpu", "cgroup_memory",
       "steal", "ktls"]
SYSCTL_KEYS = {
    "somaxconn": "net.core.somaxconn",
    "tcp_max_syn_backlog": "net.ipv4.tcp_max_syn_backlog",
    "tcp_syncookies": "net.ipv4.tcp_syncookies",
    "tcp_tw_reuse": "net.ipv4.tcp_tw_reuse",
    "ip_local_port_range": "net.ipv4.ip_local_port_range",
    "file_max": "fs.file-max",
}

# Two workers, pooled loopback upstream, backlog within a tuned somaxconn.
GOOD_CONF = """
worker_processes 2;
events { worker_connections 512; }
http {
    upstream auth { server 127.0.0.1:8081; keepalive 32; }
    server {
        listen 127.0.0.1:8080 backlog=1024;
        location / {
            proxy_pass http://auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""

# The brief's failure: a backlog of 4096 on a host whose somaxconn is 128;
# the upstream has no keepalive.
BAD_CONF = """
http {
    upstream inventory { server 10.10.0.6:8080; }
    server {
        listen 127.0.0.1:8080 backlog=4096;
        location / { proxy_pass http://inventory; }
    }
}
"""


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))


def _env(steal_ms="0", **extra):
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env["PV_DOCTOR_STEAL_MS"] = steal_ms
    env.update(extra)
    return env


def _argv(args, root):
    if not os.access(BIN, os.X_OK):
        pytest.fail("%s is not built (run make)" % BIN, pytrace=False)
    argv = [BIN, "doctor"] + list(args)
    if root is not None:
        argv += ["--sys-root", root]
    return argv


def doctor(*args, root=None, steal_ms="0", timeout=30, **env):
    """Run `portvakt doctor ARGS [--sys-root ROOT]`; (rc, stdout, stderr).
    Fails the test on a sanitizer report (make test-asan runs this suite
    on an ASan+UBSan build)."""
    p = subprocess.run(_argv(args, root), stdin=subprocess.DEVNULL, capture_output=True,
                       env=_env(steal_ms, **env), preexec_fn=_raise_nofile,
                       timeout=timeout, cwd="/")
    err = p.stderr.decode()
    for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert mark not in err, err
    return p.returncode, p.stdout.decode(), err


def checks(*args, **kw):
    """Run with --json; (rc, {id: check}) after checking the document's shape."""
    rc, out, err = doctor(*(list(args) + ["--json"]), **kw)
    assert out.endswith("\n") and out.count("\n") == 1, out
    doc = json.loads(out)
    assert list(doc) == ["checks"]
    assert [c["id"] for c in doc["checks"]] == IDS, err
    for c in doc["checks"]:
        assert list(c) == ["id", "status", "value", "want", "why", "fix"]
        assert all(isinstance(v, str) for v in c.values())
        assert c["status"] in ("ok", "warn", "fail")
        assert c["why"], c
        assert (c["fix"] == "") == (c["status"] == "ok"), c
    return rc, {c["id"]: c for c in doc["checks"]}


def conf(tmp_path, text, name="gw.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def copy_root(src, tmp_path, name="root"):
    dst = str(tmp_path / name)
    shutil.copytree(src, dst)
    return dst


def set_sysctl(root, key, value):
    path = os.path.join(root, "proc", "sys", *key.split("."))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("%s\n" % value)


# ---------------------------------------------------------------- outcomes


def test_good_host_all_ok(tmp_path):
    path = conf(tmp_path, GOOD_CONF)
    rc, res = checks("-c", path, root=GOOD)
    assert rc == 0
    assert {i: c["status"] for i, c in res.items()} == {i: "ok" for i in IDS}
    assert res["somaxconn"]["value"] == "4096"
    assert "1024" in res["somaxconn"]["want"]
    assert "1 GiB" in res["cgroup_memory"]["value"]
    assert "2 workers x 512 worker_connections" in res["cgroup_memory"]["why"]

    rc, out, _ = doctor("-c", path, root=GOOD)
    assert rc == 0
    assert "11 checks: 11 ok, 0 warn, 0 fail" in out
    assert path in out.splitlines()[0]
    assert "\033[" not in out  # stdout is not a terminal


def test_bad_host_somaxconn_fails(tmp_path):
    path = conf(tmp_path, BAD_CONF)
    rc, res = checks("-c", path, root=BAD)
    assert rc == 2
    s = res["somaxconn"]
    assert s["status"] == "fail"
    assert s["value"] == "128"
    assert "4096" in s["want"]
    assert "net.core.somaxconn" in s["fix"]
    assert "sysctl -w net.core.somaxconn=4096" in s["fix"]
    assert "%s:5" % path in s["why"]  # the listen line
    # syncookies are off too, so an overflowing SYN queue drops
    assert res["tcp_max_syn_backlog"]["status"] == "fail"
    assert res["tcp_syncookies"]["status"] == "warn"
    assert res["tcp_tw_reuse"]["status"] == "warn"
    # no keepalive: 512 new connections/s x 60 s of TIME_WAIT > 28232 ports
    pr = res["ip_local_port_range"]
    assert pr["status"] == "warn"
    assert "30720" in pr["want"]
    assert "no keepalive" in pr["why"] and "TIME_WAIT" in pr["why"]
    assert "keepalive 32" in pr["fix"]
    assert res["file_max"]["status"] == "ok"


def test_table_shows_why_and_fix(tmp_path):
    path = conf(tmp_path, BAD_CONF)
    rc, out, _ = doctor("-c", path, root=BAD)
    assert rc == 2
    lines = out.splitlines()
    assert re.match(r"CHECK +STATUS +VALUE +WANT$", [l for l in lines if l.startswith("CHECK")][0])
    row = [l for l in lines if l.startswith("somaxconn ")][0]
    assert row.split()[:3] == ["somaxconn", "FAIL", "128"]
    i = lines.index(row)
    assert lines[i + 1].startswith("    why: ")
    fix = [l for l in lines[i:] if l.startswith("    fix: ")][0]
    assert fix == "    fix: sysctl -w net.core.somaxconn=4096"
    assert "fail" in lines[-1] and lines[-1].startswith("11 checks:")


def _tty_output(argv, env):
    """Run argv with stdout on a pseudo-terminal; returns what it printed."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.DEVNULL, env=env, preexec_fn=_raise_nofile)
        os.close(slave)
        slave = None
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
        p.wait(30)
        return data.decode()
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_colour_only_on_a_terminal_without_no_color(tmp_path):
    path = conf(tmp_path, BAD_CONF)
    argv = _argv(["-c", path], BAD)
    out = _tty_output(argv, _env())
    assert "\033[1;31mFAIL" in out
    assert "\033[32mOK" in out
    out = _tty_output(argv, _env(NO_COLOR="1"))
    assert "\033[" not in out and "FAIL" in out


def test_cgroup_v2_quota_below_workers(tmp_path):
    path = conf(tmp_path, GOOD_CONF.replace("worker_processes 2;", "worker_processes 4;"))
    rc, res = checks("-c", path, root=CGV2)
    assert rc == 2
    cpu = res["cgroup_cpu"]
    assert cpu["status"] == "fail"  # 4 workers on half a CPU: at least twice the quota
    assert "0.50 CPUs" in cpu["value"]
    assert "/sys/fs/cgroup/system.slice/docker-3f2a.scope/cpu.max" in cpu["value"]
    assert "<= 1" in cpu["want"]
    assert "worker_processes auto;" in cpu["fix"] and "--cpus=4" in cpu["fix"]
    # the parent's 64 MiB applies: 4 x 512 x 48 KiB = 96 MiB of buffers
    mem = res["cgroup_memory"]
    assert mem["status"] == "fail"
    assert "64 MiB" in mem["value"] and "system.slice/memory.max" in mem["value"]
    assert "= 96 MiB" in mem["why"]

    # `auto` follows the quota: one worker, within the quota
    path = conf(tmp_path, GOOD_CONF.replace("worker_processes 2;", "worker_processes auto;"), "auto.conf")
    rc, res = checks("-c", path, root=CGV2)
    assert res["cgroup_cpu"]["status"] == "ok"
    assert "auto = 1" in res["cgroup_cpu"]["why"]
    assert res["cgroup_memory"]["status"] == "warn"  # 24 MiB of buffers + 64 MiB headroom > 64 MiB


def test_cgroup_v1_quota_and_memory(tmp_path):
    rc, res = checks("-c", conf(tmp_path, GOOD_CONF), root=CGV1)
    cpu = res["cgroup_cpu"]
    assert cpu["status"] == "fail"  # 2 workers on half a CPU: four times the quota
    assert rc == 2
    assert "0.50 CPUs" in cpu["value"] and "cpu.cfs_quota_us" in cpu["value"]
    assert res["cgroup_memory"]["status"] == "ok"
    assert "512 MiB" in res["cgroup_memory"]["value"]

    # 4 workers x 4096 connections x 48 KiB = 768 MiB > the 512 MiB limit
    big = GOOD_CONF.replace("worker_processes 2;", "worker_processes 4;") \
                   .replace("worker_connections 512;", "worker_connections 4096;")
    rc, res = checks("-c", conf(tmp_path, big, "big.conf"), root=CGV1)
    assert rc == 2
    assert res["cgroup_cpu"]["status"] == "fail"
    mem = res["cgroup_memory"]
    assert mem["status"] == "fail"
    assert "= 768 MiB" in mem["why"]
    assert "--memory=832m" in mem["fix"]


def test_json_has_every_check(tmp_path):
    rc, res = checks("-c", conf(tmp_path, BAD_CONF), root=BAD)
    assert list(res) == IDS
    # values are JSON-escaped strings: a path with a quote survives
    odd = tmp_path / 'we"ird'
    odd.mkdir()
    path = conf(odd, BAD_CONF)
    rc, res = checks("-c", path, root=BAD)
    assert path in res["somaxconn"]["why"]


def test_sysctl_fragment_has_only_failing_keys(tmp_path):
    path = conf(tmp_path, BAD_CONF)
    _, res = checks("-c", path, root=BAD)
    rc, out, _ = doctor("-c", path, "--sysctl", root=BAD)
    assert rc == 2
    lines = out.splitlines()
    assert lines[0] == "# /etc/sysctl.d/60-portvakt.conf \u2014 generated by portvakt doctor for " + path
    settings = {}
    for l in lines:
        if not l or l.startswith("#"):
            continue
        m = re.match(r"^([a-z0-9_.-]+) = (\S.*)$", l)
        assert m, l
        settings[m.group(1)] = m.group(2)
    failing = {SYSCTL_KEYS[i] for i, c in res.items() if i in SYSCTL_KEYS and c["status"] != "ok"}
    assert set(settings) == failing
    assert settings["net.core.somaxconn"] == "4096"
    assert settings["net.ipv4.tcp_syncookies"] == "1"
    assert settings["net.ipv4.ip_local_port_range"] == "32768 65535"  # 32768 >= 30720 ports
    assert "fs.file-max" not in settings
    # each key comes with why and want comments
    i = lines.index("net.core.somaxconn = 4096")
    assert lines[i - 1].startswith("# want: >= 4096")
    assert any(l.startswith("# somaxconn (FAIL): ") for l in lines[:i])

    rc, out, _ = doctor("-c", conf(tmp_path, GOOD_CONF, "good.conf"), "--sysctl", root=GOOD)
    assert rc == 0
    assert [l for l in out.splitlines() if l and not l.startswith("#")] == []
    assert "nothing to set" in out


def test_brief_config_on_brief_tuning(tmp_path):
    """The brief's gateway config on a host tuned with the brief's sysctl
    file: nothing to fix."""
    root = copy_root(GOOD, tmp_path)
    # the brief's sysctl snippet, verbatim values
    for k, v in (("net.core.somaxconn", "4096"), ("net.ipv4.tcp_tw_reuse", "1"),
                 ("net.ipv4.ip_local_port_range", "1024 65535"),
                 ("net.ipv4.tcp_syncookies", "1"), ("fs.file-max", "2097152")):
        set_sysctl(root, k, v)
    gateway = """http {
    keepalive_timeout 65;
    keepalive_requests 100000;
    upstream auth_service { server 10.10.0.5:8080; keepalive 32; }
    upstream inventory_service { server 10.10.0.6:8080; keepalive 32; }
    server {
        listen 80;
        location /api/auth/ {
            proxy_pass http://auth_service/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
"""
    rc, res = checks("-c", conf(tmp_path, gateway), root=root)
    assert rc == 0
    assert {i: c["status"] for i, c in res.items()} == {i: "ok" for i in IDS}


def test_missing_files_say_unavailable(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, res = checks("-c", conf(tmp_path, GOOD_CONF), root=str(empty))
    assert rc == 1  # WARN only: nothing could be shown to fail
    for i in ("somaxconn", "tcp_max_syn_backlog", "tcp_syncookies", "tcp_tw_reuse",
              "ip_local_port_range", "file_max", "steal", "ktls"):
        assert res[i]["status"] == "warn", res[i]
        assert res[i]["value"] == "unavailable"
        assert str(empty) in res[i]["why"]
    assert res["cgroup_cpu"]["status"] == "ok"
    assert res["cgroup_cpu"]["value"] == "no cgroup found"
    assert "unavailable" in res["nofile"]["value"]  # fs.nr_open


def test_steal_sampled_from_proc_stat(tmp_path):
    root = copy_root(GOOD, tmp_path)
    stat = os.path.join(root, "proc", "stat")
    with open(stat) as f:
        text = f.read()
    first = text.splitlines()[0].split()
    vals = [int(v) for v in first[1:]]
    # 1000 more ticks, 300 of them stolen: 30%
    vals[0] += 700
    vals[7] += 300
    later = "cpu  " + " ".join(str(v) for v in vals) + "\n" + text.split("\n", 1)[1]

    def rewrite():
        time.sleep(0.7)
        tmp = stat + ".new"
        with open(tmp, "w") as f:
            f.write(later)
        os.rename(tmp, stat)

    t = threading.Thread(target=rewrite)
    t.start()
    try:
        rc, res = checks("-c", conf(tmp_path, GOOD_CONF), root=root, steal_ms="2000")
    finally:
        t.join()
    st = res["steal"]
    assert st["status"] == "fail"
    assert st["value"] == "30.0% over 2000 ms"
    assert "15%" in st["why"] and "5%" in st["why"]
    assert rc == 2


def test_config_error_exits_2_with_file_line(tmp_path):
    path = conf(tmp_path, "http {\n    frobnicate on;\n}\n")
    rc, out, err = doctor("-c", path, root=GOOD)
    assert rc == 3
    assert 'unknown directive "frobnicate" in %s:2' % path in err
    assert out == ""


@pytest.mark.parametrize("args", [
    ["--frobnicate"],
    ["-c"],
    ["--sys-root"],
    ["--json", "--sysctl"],
    ["extra"],
])
def test_usage_errors_exit_2(args):
    rc, out, err = doctor(*args)
    assert rc == 3
    assert "Usage: portvakt doctor" in err


def test_help():
    rc, out, _ = doctor("--help")
    assert rc == 0
    assert "PV_DOCTOR_STEAL_MS" in out and "--sys-root" in out


def test_bad_steal_interval_exits_2(tmp_path):
    rc, _, err = doctor("-c", conf(tmp_path, GOOD_CONF), root=GOOD, steal_ms="soon")
    assert rc == 3
    assert "PV_DOCTOR_STEAL_MS" in err


def test_without_config_uses_default_or_generic_wants():
    rc, out, _ = doctor(root=GOOD)
    first = out.splitlines()[0]
    if os.path.exists("/etc/portvakt/portvakt.conf"):
        assert first == "portvakt doctor: /etc/portvakt/portvakt.conf"
    else:
        # auto workers follow this machine's CPUs, so only the wants are fixed
        assert "generic wants" in first
        assert "(auto: " in out
        assert "largest listen backlog 511" in out
        ncpu = len(os.sched_getaffinity(0))
        assert "(auto: no cgroup cpu quota, affinity %d CPUs)" % ncpu in out
        # the exit status follows the worst check: 2 for a FAIL, 1 for a WARN
        m = re.search(r"^(\d+) checks: (\d+) ok, (\d+) warn, (\d+) fail$", out, re.M)
        assert m, out
        assert rc == (2 if int(m.group(4)) else 1 if int(m.group(3)) else 0), out


def test_ktls_asked_for_without_the_kernel_module_warns(tmp_path):
    bad_ulp = tmp_path / "root"
    shutil.copytree(GOOD, str(bad_ulp), symlinks=True)
    (bad_ulp / "proc/sys/net/ipv4/tcp_available_ulp").write_text("mptcp\n")
    plain = conf(tmp_path, GOOD_CONF)
    rc, res = checks("-c", plain, root=str(bad_ulp))
    assert res["ktls"]["status"] == "ok" and res["ktls"]["value"].startswith("not available")
    d = tmp_path / "k"
    d.mkdir()
    ktls = conf(d, GOOD_CONF.replace("http {", "http {\n    ssl_conf_command Options KTLS;", 1))
    rc, res = checks("-c", ktls, root=str(bad_ulp))
    assert res["ktls"]["status"] == "warn"
    assert "ssl_conf_command Options KTLS in " in res["ktls"]["why"]
    assert "modprobe tls" in res["ktls"]["fix"]
    rc, res = checks("-c", ktls, root=GOOD)
    assert res["ktls"]["status"] == "ok" and res["ktls"]["value"].startswith("available")
