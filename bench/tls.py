#!/usr/bin/python3
"""TLS figures: portvakt beside NGINX and HAProxy in the same run.

Rows, per contestant (one worker / one thread each, pinned to CPU 0; the
clients on the other CPUs):
  - new handshakes per second, ECDSA P-256 and RSA 2048 certificates
    (TLS 1.3, no resumption: `openssl s_time -new`, one request each);
  - resumed handshakes per second (TLS 1.2 session IDs: `s_time -reuse`);
  - HTTPS keepalive requests per second (wrk, 32 connections);
and for each the server's CPU microseconds per handshake or request, from
/proc (user + system), which does not depend on how fast the client is.

Every server answers `200 ok` itself, so the figures are the cost of TLS
and HTTP parsing, not of an upstream. `--ktls` adds a portvakt row with
`ssl_conf_command Options KTLS` (only meaningful when the kernel has the
tls ULP: /proc/sys/net/ipv4/tcp_available_ulp).

    /usr/bin/python3 bench/tls.py [--time 5] [--rounds 3] [--out FILE]
    /usr/bin/python3 bench/tls.py --instructions

CPU time on a busy machine is noisy; `--instructions` counts instructions
under callgrind instead (as bench/instructions.py does for plain HTTP):
each server takes a short and a long run, and the difference divided by
the difference in work is the cost of one HTTPS keepalive request, and of
one new TLS 1.3 handshake (ECDSA P-256) with its request.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import Server, cpu_seconds, free_port, haproxy_head  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTVAKT = os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt"))
SERVER_CPU = "0"
CLIENT_CPUS = "1"


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True).stdout


def make_certs(d):
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", d + "/ec.key", "-out", d + "/ec.crt", "-days", "2", "-subj", "/CN=bench.test")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/rsa.key",
        "-out", d + "/rsa.crt", "-days", "2", "-subj", "/CN=bench.test")
    for k in ("ec", "rsa"):
        with open(d + "/%s.pem" % k, "w") as f:
            f.write(open(d + "/%s.crt" % k).read() + open(d + "/%s.key" % k).read())


def portvakt(d, port, kind, ktls=False):
    conf = """
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    ssl_session_cache shared:BENCH:10m;
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/%s.crt;
        ssl_certificate_key %s/%s.key;
        %s
        location / { return 200 "ok"; }
    }
}
""" % (port, d, kind, d, kind, "ssl_conf_command Options KTLS;" if ktls else "")
    path = "%s/portvakt-%s%s.conf" % (d, kind, "-ktls" if ktls else "")
    open(path, "w").write(conf)
    return [PORTVAKT, "-c", path]


def nginx(d, port, kind):
    conf = """
daemon off; master_process off; worker_processes 1; pid %s/nginx.pid; error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:BENCH:10m;
    client_body_temp_path %s/body; proxy_temp_path %s/proxy;
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s/%s.crt;
        ssl_certificate_key %s/%s.key;
        location / { return 200 "ok"; }
    }
}
""" % (d, d, d, port, d, kind, d, kind)
    path = "%s/nginx-%s.conf" % (d, kind)
    open(path, "w").write(conf)
    return ["/usr/sbin/nginx", "-p", d, "-c", path]


def haproxy(d, port, kind):
    conf = haproxy_head(global_extra=["tune.ssl.cachesize 40000"]) + """frontend f
    bind 127.0.0.1:%d ssl crt %s/%s.pem
    http-request return status 200 content-type text/plain string ok
""" % (port, d, kind)
    path = "%s/haproxy-%s.cfg" % (d, kind)
    open(path, "w").write(conf)
    return ["/usr/sbin/haproxy", "-db", "-f", path]


def s_time(port, mode, seconds, extra=()):
    """Connections made in `seconds` by two s_time clients."""
    argv = ["taskset", "-c", CLIENT_CPUS, "openssl", "s_time", "-connect", "127.0.0.1:%d" % port,
            mode, "-time", str(seconds), "-www", "/"] + list(extra)
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    total = 0
    for p in procs:
        out = p.communicate()[0].decode("utf-8", "replace")
        m = re.findall(r"(\d+) connections in [\d.]+s;", out)
        if not m:
            raise RuntimeError("s_time: " + out[-500:])
        total += int(m[-1])
    return total


def wrk(port, seconds):
    out = run("taskset", "-c", CLIENT_CPUS, "wrk", "-t1", "-c32", "-d%ds" % seconds,
              "https://127.0.0.1:%d/" % port).decode()
    n = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    if bad or errs:
        raise RuntimeError("wrk: " + out)
    return n


def measure(srv, fn):
    pids = srv.pids()
    c0, t0 = cpu_seconds(pids), time.monotonic()
    n = fn()
    c1, t1 = cpu_seconds(pids), time.monotonic()
    return n / (t1 - t0), (c1 - c0) * 1e6 / max(n, 1)


def one_round(d, seconds, ktls):
    rows = {}
    makers = [("portvakt", portvakt), ("nginx", nginx), ("haproxy", haproxy)]
    if ktls:
        makers.append(("portvakt ktls", lambda d, p, k: portvakt(d, p, k, ktls=True)))
    for name, mk in makers:
        for kind in ("ec", "rsa"):
            port = free_port()
            srv = Server("%s-%s" % (name.replace(" ", "-"), kind), mk(d, port, kind), d, [port], SERVER_CPU)
            srv.start()
            try:
                time.sleep(0.3)
                label = "ECDSA P-256" if kind == "ec" else "RSA 2048"
                rows[(name, "new handshakes/s, " + label)] = measure(
                    srv, lambda: s_time(port, "-new", seconds))
                if kind == "ec":
                    rows[(name, "resumed handshakes/s (TLS 1.2)")] = measure(
                        srv, lambda: s_time(port, "-reuse", seconds, ("-tls1_2",)))
                    rows[(name, "HTTPS keepalive req/s")] = measure(srv, lambda: wrk(port, seconds))
            finally:
                srv.stop()
    return rows


def _client_ctx():
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _get(s, close):
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench.test\r\n%s\r\n" % (b"Connection: close\r\n" if close else b""))
    buf = b""
    while not buf.endswith(b"ok"):
        d = s.recv(4096)
        if not d:
            raise RuntimeError("closed early: %r" % buf)
        buf += d
    if not buf.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(buf[:100])


def drive_keepalive(port, n):
    import socket
    with _client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=120)) as s:
        for _ in range(n):
            _get(s, False)


def drive_handshakes(port, n):
    import socket
    ctx = _client_ctx()
    for _ in range(n):
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=120)) as s:
            _get(s, True)


def instructions(d):
    from instructions import stop, total_instructions, wait_port
    rows = []
    for name, mk in (("portvakt", portvakt), ("nginx", nginx), ("haproxy", haproxy)):
        row = [name]
        for drive, short, long_ in ((drive_keepalive, 200, 2200), (drive_handshakes, 20, 120)):
            totals = []
            for n in (short, long_):
                port = free_port()
                out = "%s/callgrind-%s-%s-%d.out" % (d, name, drive.__name__, n)
                argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + mk(d, port, "ec")
                proc = subprocess.Popen(argv, cwd=d, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    wait_port(port, proc, timeout=120)
                    drive(port, n)
                finally:
                    stop(proc, port)
                totals.append(total_instructions(out))
            row.append((totals[1] - totals[0]) / (long_ - short))
        rows.append(row)
    base = {r[0]: r for r in rows}["nginx"]
    lines = ["| server | instructions per HTTPS keepalive request | ratio to NGINX "
             "| instructions per new handshake (ECDSA P-256, TLS 1.3) and its request | ratio to NGINX |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append("| %s | %.0f | %.2f | %.0f | %.2f |" % (r[0], r[1], r[1] / base[1], r[2], r[2] / base[2]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instructions", action="store_true")
    ap.add_argument("--time", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ktls", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "tls.md"))
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pv-tls-bench-")
    make_certs(d)
    if a.instructions:
        text = instructions(d)
        print(text)
        out = a.out if a.out != ap.get_default("out") else os.path.join(ROOT, "build", "bench", "tls-instructions.md")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        return
    rounds = [one_round(d, a.time, a.ktls) for _ in range(a.rounds)]
    keys = list(rounds[0].keys())
    tests = []
    for _, t in keys:
        if t not in tests:
            tests.append(t)
    names = []
    for n, _ in keys:
        if n not in names:
            names.append(n)
    lines = ["| test | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for t in tests:
        cells = []
        for n in names:
            rate = statistics.median(r[(n, t)][0] for r in rounds)
            cpu = statistics.median(r[(n, t)][1] for r in rounds)
            cells.append("%.0f (%.0f µs CPU)" % (rate, cpu))
        lines.append("| %s | %s |" % (t, " | ".join(cells)))
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
