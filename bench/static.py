#!/usr/bin/python3
"""Static files: portvakt beside NGINX and HAProxy in the same run.

Rows, per contestant (one worker / one thread each, pinned to CPU 0; wrk
on the other CPU, 32 keepalive connections): a 1 KiB and a 1 MiB file,
requests per second and the server's CPU microseconds per request (user
+ system from /proc, which does not depend on how fast the client is).

  - portvakt: the default `aio threads` (open, stat and read on the pool);
  - portvakt, `aio off`: the same calls on the loop, as NGINX's default;
  - portvakt, `open_file_cache`: the descriptor kept between requests;
  - portvakt, `sendfile on`, alone and with `open_file_cache`;
  - NGINX with its defaults (sendfile off), and with `sendfile on`;
  - HAProxy serves a file only from memory (`http-request return ...
    file`, loaded at start and limited to its buffer size), so it has the
    1 KiB row alone.

    /usr/bin/python3 bench/static.py [--time 5] [--rounds 3] [--out FILE]
    /usr/bin/python3 bench/static.py --instructions

CPU time on a busy machine is noisy; `--instructions` counts instructions
under callgrind instead (as bench/instructions.py does for proxying): each
server answers 200 and then 1 200 sequential keepalive requests for a file,
and the difference divided by 1 000 is the cost of one. Callgrind counts
user-space instructions of every thread (the pool's too), not the kernel's.
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
FILES = {"1 KiB": ("1k.bin", 1024), "1 MiB": ("1m.bin", 1 << 20)}


def portvakt(d, port, extra=""):
    conf = """
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%d;
        root %s/doc;
        %s
        location / { }
    }
}
""" % (port, d, extra)
    path = "%s/portvakt-%d.conf" % (d, port)
    open(path, "w").write(conf)
    return [PORTVAKT, "-c", path]


def nginx(d, port, extra=""):
    conf = """
daemon off; master_process off; worker_processes 1; pid %s/nginx-%d.pid; error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %s/body; proxy_temp_path %s/proxy;
    server {
        listen 127.0.0.1:%d;
        root %s/doc;
        %s
        location / { }
    }
}
""" % (d, port, d, d, port, d, extra)
    path = "%s/nginx-%d.conf" % (d, port)
    open(path, "w").write(conf)
    return ["/usr/sbin/nginx", "-p", d, "-c", path]


def haproxy(d, port, extra=""):
    conf = haproxy_head() + """frontend f
    bind 127.0.0.1:%d
    http-request return status 200 content-type application/octet-stream file %s/doc/1k.bin
""" % (port, d)
    path = "%s/haproxy-%d.cfg" % (d, port)
    open(path, "w").write(conf)
    return ["/usr/sbin/haproxy", "-db", "-f", path]


CONTESTANTS = [
    ("portvakt", portvakt, "", FILES),
    ("portvakt aio off", portvakt, "aio off;", FILES),
    ("portvakt open_file_cache", portvakt, "open_file_cache max=100;", FILES),
    ("portvakt sendfile on", portvakt, "sendfile on;", FILES),
    ("portvakt sendfile + open_file_cache", portvakt, "sendfile on; open_file_cache max=100;", FILES),
    ("nginx", nginx, "", FILES),
    ("nginx sendfile on", nginx, "sendfile on;", FILES),
    ("haproxy (from memory)", haproxy, "", {"1 KiB": FILES["1 KiB"]}),
]


def wrk(port, path, seconds):
    out = subprocess.run(["taskset", "-c", CLIENT_CPUS, "wrk", "-t1", "-c32", "-d%ds" % seconds,
                          "http://127.0.0.1:%d/%s" % (port, path)], check=True, capture_output=True).stdout.decode()
    n = int(re.search(r"(\d+) requests in", out).group(1))
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors: (.*)", out):
        raise RuntimeError("wrk: " + out)
    return n


def check(port, path, size):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          "http://127.0.0.1:%d/%s" % (port, path)], capture_output=True, timeout=30).stdout.decode()
    if out != "200 %d" % size:
        raise RuntimeError("%s: %s" % (path, out))


def one_round(d, seconds):
    rows = {}
    for name, mk, extra, files in CONTESTANTS:
        port = free_port()
        srv = Server(name.replace(" ", "-").replace("(", "").replace(")", ""), mk(d, port, extra), d, [port],
                     SERVER_CPU)
        srv.start()
        try:
            time.sleep(0.3)
            for label, (path, size) in files.items():
                check(port, path, size)
                pids = srv.pids()
                c0, t0 = cpu_seconds(pids), time.monotonic()
                n = wrk(port, path, seconds)
                c1, t1 = cpu_seconds(pids), time.monotonic()
                rows[(name, label)] = (n / (t1 - t0), (c1 - c0) * 1e6 / max(n, 1))
        finally:
            srv.stop()
    return rows


def drive(port, path, n):
    import socket
    from instructions import read_response
    req = ("GET /%s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        buf = b""
        for _ in range(n):
            s.sendall(req)
            status, buf = read_response(s, buf)
            if status != 200:
                raise RuntimeError("status %d" % status)


def instructions(d):
    from instructions import stop, total_instructions, wait_port
    lines = ["| server | " + " | ".join("%s: instructions per request" % k for k in FILES) + " |",
             "| --- |" + " ---: |" * len(FILES)]
    for name, mk, extra, files in CONTESTANTS:
        cells = []
        for label, (path, _) in FILES.items():
            if label not in files:
                cells.append("-")
                continue
            totals = []
            for n in (200, 1200):
                port = free_port()
                out = "%s/callgrind-%s-%s-%d.out" % (d, name.replace(" ", "_"), path, n)
                argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + mk(d, port, extra)
                proc = subprocess.Popen(argv, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                try:
                    wait_port(port, proc, timeout=120)
                    drive(port, path, n)
                finally:
                    stop(proc, port)
                totals.append(total_instructions(out))
            cells.append("%.0f" % ((totals[1] - totals[0]) / 1000))
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instructions", action="store_true")
    ap.add_argument("--time", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "static.md"))
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pv-static-bench-")
    os.makedirs(d + "/doc")
    for path, size in FILES.values():
        with open("%s/doc/%s" % (d, path), "wb") as f:
            f.write(bytes(i % 251 for i in range(size)))
    if a.instructions:
        text = instructions(d)
        print(text)
        out = a.out if a.out != ap.get_default("out") else os.path.join(ROOT, "build", "bench", "static-instructions.md")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        return
    rounds = [one_round(d, a.time) for _ in range(a.rounds)]
    lines = ["| server | " + " | ".join("%s req/s | %s µs CPU/req" % (k, k) for k in FILES) + " |",
             "| --- |" + " ---: | ---: |" * len(FILES)]
    for name, _, _, files in CONTESTANTS:
        cells = []
        for label in FILES:
            if label not in files:
                cells += ["-", "-"]
                continue
            cells.append("%.0f" % statistics.median(r[(name, label)][0] for r in rounds))
            cells.append("%.1f" % statistics.median(r[(name, label)][1] for r in rounds))
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
