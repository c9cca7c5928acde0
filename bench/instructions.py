"""Instructions per proxied request, counted by callgrind: portvakt (and
an older build of it, to check a change for regressions) beside NGINX and
HAProxy, one worker each, the brief's keepalive gateway config.

    /usr/bin/python3 bench/instructions.py [LABEL=PORTVAKT_BINARY ...]

Instruction counts do not depend on what else the machine is doing, so a
change can be checked on a busy machine: each contestant serves two runs
of sequential keepalive requests (SHORT and LONG of them) under
`valgrind --tool=callgrind`, and the difference of the two totals divided
by LONG - SHORT is the cost of one request with start-up and shutdown
cancelled out. Results go to build/bench/instructions.md.
"""

import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import contestants  # noqa: E402
import procs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = os.path.join(ROOT, "build", "bench", "instructions")
NGINX = "/usr/sbin/nginx"
HAPROXY = "/usr/sbin/haproxy"
SHORT, LONG = 200, 2200
NOFILE = 4096
REQUEST = ("GET %sx HTTP/1.1\r\nHost: bench\r\nUser-Agent: instructions\r\n\r\n"
           % contestants.ROUTE).encode()


def read_response(sock, buf):
    """One response off a keepalive connection; returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed mid-head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if not m:
        raise RuntimeError("no Content-Length in %r" % head[:200])
    need = int(m.group(1))
    while len(rest) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed mid-body")
        rest += chunk
    return status, rest[need:]


def drive(port, n):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        buf = b""
        for _ in range(n):
            s.sendall(REQUEST)
            status, buf = read_response(s, buf)
            if status != 200:
                raise RuntimeError("status %d" % status)


def wait_port(port, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("did not listen on %d" % port)


def gateway_argv(kind, binary, workdir, port, upstream_port):
    c = contestants.Contestant(kind, kind, 1)
    if kind == "haproxy":
        path = os.path.join(workdir, "haproxy.cfg")
        text = contestants.haproxy_conf(c, port, upstream_port, NOFILE)
        argv = [binary, "-db", "-f", path]
    else:
        path = os.path.join(workdir, kind + ".conf")
        text = contestants.gateway_conf(c, port, upstream_port, workdir, NOFILE)
        # one process under callgrind: NGINX without its master
        text = text.replace("master_process on;", "master_process off;")
        argv = [binary, "-c", path] + (["-p", workdir, "-e", "stderr"] if kind == "nginx" else [])
    with open(path, "w") as f:
        f.write(text)
    return argv


def stop(proc, port):
    """SIGTERM. Under valgrind a signal can wait until the process's
    epoll_wait returns, so a connection now and then wakes it."""
    proc.terminate()
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            pass
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def total_instructions(out):
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in %s" % out)


def measure(label, kind, binary, upstream_port):
    totals = []
    for n in (SHORT, LONG):
        workdir = os.path.join(SCRATCH, "%s-%d" % (label, n))
        os.makedirs(workdir, exist_ok=True)
        port = procs.free_port()
        out = os.path.join(workdir, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + \
            gateway_argv(kind, binary, workdir, port, upstream_port)
        with open(os.path.join(workdir, "stderr"), "wb") as err:
            proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_port(port, proc)
            drive(port, n)
        finally:
            stop(proc, port)
        totals.append(total_instructions(out))
    return (totals[1] - totals[0]) / (LONG - SHORT)


def main():
    portvakts = [(a.split("=", 1)[0], os.path.abspath(a.split("=", 1)[1])) for a in sys.argv[1:]] or \
        [["portvakt", os.path.join(ROOT, "build", "portvakt")]]
    os.makedirs(SCRATCH, exist_ok=True)
    up_port, status_port = procs.free_port(), procs.free_port()
    up_conf = os.path.join(SCRATCH, "upstream.conf")
    with open(up_conf, "w") as f:
        f.write(contestants.upstream_conf(up_port, status_port, SCRATCH, NOFILE))
    upstream = procs.Server("upstream", [NGINX, "-p", SCRATCH, "-e", "stderr", "-c", up_conf],
                            SCRATCH, [up_port, status_port], "0-%d" % (os.cpu_count() - 1)).start()
    rows = []
    try:
        for label, binary in portvakts:
            rows.append((label, measure(label, "portvakt", binary, up_port)))
        rows.append(("nginx", measure("nginx", "nginx", NGINX, up_port)))
        rows.append(("haproxy", measure("haproxy", "haproxy", HAPROXY, up_port)))
    finally:
        upstream.stop()
    ref = dict(rows)["nginx"]
    lines = ["| contestant | instructions per request | ratio to NGINX |", "| --- | ---: | ---: |"]
    lines += ["| %s | %.0f | %.2f |" % (label, v, v / ref) for label, v in rows]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(SCRATCH, "instructions.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
