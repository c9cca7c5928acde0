"""The machine and program versions a result was measured on."""

import os
import platform
import subprocess


def _first_line(argv):
    """First non-empty output line of a command (stdout or stderr: nginx -v
    writes to stderr, wrk -v exits 1)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unavailable (%s)" % e
    for line in (done.stdout + done.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unavailable"


def _read(path, default="unknown"):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _cpu_model():
    flags, model = "", "unknown"
    for line in _read("/proc/cpuinfo", "").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif name.strip() == "flags" and not flags:
            flags = value
    # A guest's steal time and noisy neighbours matter to every figure.
    return model + (" (virtual machine)" if " hypervisor" in flags else "")


def _os_name():
    for line in _read("/etc/os-release", "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return "%s, %s" % (line.split("=", 1)[1].strip('"'),
                               _read("/etc/debian_version"))
    return "unknown"


def _git_revision(root):
    """The tree the portvakt binary was built from; -dirty when it has
    uncommitted changes."""
    return _first_line(["git", "-C", root, "describe", "--always", "--dirty"])


def describe(root, portvakt):
    """Facts for the report header, as (name, value) pairs."""
    mem_kb = 0
    for line in _read("/proc/meminfo", "").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return [
        ("CPU", _cpu_model()),
        ("cores", "%d online, %d usable by the bench"
         % (os.cpu_count(), len(os.sched_getaffinity(0)))),
        ("memory", "%.1f GiB" % (mem_kb / 1048576)),
        ("kernel", platform.release()),
        ("OS", _os_name()),
        ("ephemeral ports", _read("/proc/sys/net/ipv4/ip_local_port_range").replace("\t", "-")),
        ("net.ipv4.tcp_tw_reuse", _read("/proc/sys/net/ipv4/tcp_tw_reuse")),
        ("portvakt", "%s (git %s)" % (_first_line([portvakt, "-v"]), _git_revision(root))),
        ("nginx", _first_line(["/usr/sbin/nginx", "-v"])),
        ("haproxy", _first_line(["/usr/sbin/haproxy", "-v"])),
        ("wrk", _first_line(["wrk", "-v"])),
    ]


def cpu_counters():
    """Seconds, over all CPUs since boot (/proc/stat), spent busy, stolen by
    the hypervisor, and in all. Deltas show how much else ran during a
    measurement and whether the host took CPU away. Busy includes interrupt
    time: with tick-based accounting a task is charged for the softirq work
    (loopback TCP) done on its behalf, which /proc/stat files as softirq."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(x) for x in f.readline().split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return {"busy": busy / tick, "steal": steal / tick,
            "total": (busy + idle + iowait + steal) / tick}
