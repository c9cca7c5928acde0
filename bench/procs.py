"""Processes: starting servers pinned to CPUs, and what /proc says of them."""

import os
import signal
import socket
import subprocess
import time

START_TIMEOUT = 10.0   # seconds a server gets to listen
STOP_TIMEOUT = 5.0     # seconds a server gets to exit on SIGTERM
CLK_TCK = os.sysconf("SC_CLK_TCK")

_given_ports = set()


def free_port():
    """A loopback TCP port nothing listens on now; never the same one twice
    per run, so TIME_WAIT left by one contestant is not counted for the next."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port")


def haproxy_head(global_extra=(), defaults_extra=()):
    """The global and defaults sections of every bench's HAProxy: one
    thread, and the timeouts the other servers have."""
    def lines(extra):
        return "".join("    %s\n" % line for line in extra)
    return ("global\n    nbthread 1\n    maxconn 4096\n" + lines(global_extra)
            + "defaults\n    mode http\n    timeout client 30s\n    timeout connect 5s\n"
            "    timeout server 30s\n    timeout http-keep-alive 75s\n" + lines(defaults_extra))


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _die_with_parent():
    """In the child: SIGKILL when the bench dies, so an aborted run leaves
    no server behind (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class ServerError(RuntimeError):
    """A server did not start; the message carries its stderr."""


class Server:
    """A foreground server under `taskset -c CPUS`, output kept in files.

    taskset execs the server, so the pid is the server's own; children (NGINX
    workers) inherit the affinity."""

    def __init__(self, name, argv, workdir, ports, cpus):
        self.name = name
        self.argv = ["taskset", "-c", cpus] + argv
        self.workdir = workdir
        self.ports = ports
        self.proc = None
        self.stdout_path = os.path.join(workdir, name + ".stdout")
        self.stderr_path = os.path.join(workdir, name + ".stderr")

    def start(self):
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=self.workdir,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        for port in self.ports:
            while not _port_open(port):
                if self.proc.poll() is not None:
                    raise ServerError("%s exited with %s before listening:\n%s"
                                      % (self.name, self.proc.returncode, self.stderr()))
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError("%s did not listen on %d:\n%s"
                                      % (self.name, port, self.stderr()))
                time.sleep(0.02)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The server and its child processes (NGINX's master and workers)."""
        return [self.pid] + children(self.pid) if self.alive() else []

    def stderr(self, limit=4000):
        """The tail of what the server wrote to stderr."""
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def stop(self):
        """SIGTERM, then SIGKILL if it lingers. Returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def children(pid):
    """Pids whose parent is pid, from /proc/*/stat."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _stat_fields(pid):
    """/proc/PID/stat from field 3 (state) on; the command name in
    parentheses may contain spaces, so split after the last ')'."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pids):
    """User plus system CPU time of the processes, all their threads
    included (/proc/PID/stat fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def status_kb(pids, field):
    """Sum of a /proc/PID/status field in kB (VmRSS, VmHWM) over processes."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total




def all_cpu_ticks():
    """{pid: (name, utime + stime in ticks)} for every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields:
            try:
                with open("/proc/%s/comm" % entry) as f:
                    name = f.read().strip()
            except OSError:
                name = "?"
            out[int(entry)] = (name, int(fields[11]) + int(fields[12]))
    return out


def top_others(before, after, ours, seconds, n=3):
    """The processes other than ours that used most CPU between two
    all_cpu_ticks() snapshots, as "name NN%" (of one CPU), by name.
    A process that started in between counts whole; one that ended is
    missed, which is why the total comes from /proc/stat instead."""
    by_name = {}
    for pid, (name, ticks) in after.items():
        if pid in ours:
            continue
        used = (ticks - before.get(pid, (name, 0))[1]) / CLK_TCK
        if used > 0:
            by_name[name] = by_name.get(name, 0.0) + used
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join("%s %.0f%%" % (name, 100 * s / seconds) for name, s in top
                     if 100 * s / seconds >= 1)
