#!/usr/bin/python3
"""The response cache: a cache hit beside NGINX's and HAProxy's cache hit, beside the
same 1 KiB answer proxied without the cache and served as a static file,
in the same run.

Each server has one worker pinned to CPU 0; wrk (32 keepalive
connections) and the origin (an NGINX serving the file, for the proxied
rows and the first miss) run on CPU 1. Rows: requests per second and the
server's own CPU microseconds per request (user + system from /proc, so
the client's speed does not count).

    /usr/bin/python3 bench/cache.py [--time 5] [--rounds 3] [--out FILE]
    /usr/bin/python3 bench/cache.py --instructions

`aio off` (NGINX's default, where it means the same) reads the entry on
the worker's loop instead of the thread pool.

`--instructions` counts user-space instructions per request under
callgrind (200 and then 1 200 sequential keepalive requests; the
difference over 1 000), which the machine's load does not change.
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
SIZE = 1024

LOCATIONS = """
        location /static/ { alias %(d)s/doc/; }
        location /proxy/ { proxy_pass http://127.0.0.1:%(origin)d/; }
        location /cache/ {
            proxy_cache one; proxy_cache_valid 200 1h;
            proxy_pass http://127.0.0.1:%(origin)d/;
        }
        location /cache-aio-off/ {
            proxy_cache one; proxy_cache_valid 200 1h; aio off;
            proxy_pass http://127.0.0.1:%(origin)d/;
        }
"""


def portvakt(d, port, origin):
    conf = """
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    upstream o { server 127.0.0.1:%(origin)d; keepalive 32; }
    proxy_cache_path %(d)s/pv-cache levels=1:2 keys_zone=one:1m use_temp_path=off;
    server {
        listen 127.0.0.1:%(port)d;
%(locs)s
    }
}
""" % {"d": d, "port": port, "origin": origin, "locs": LOCATIONS % {"d": d, "origin": origin}}
    path = "%s/portvakt-%d.conf" % (d, port)
    open(path, "w").write(conf)
    return [PORTVAKT, "-c", path]


def nginx(d, port, origin):
    conf = """
daemon off; master_process off; worker_processes 1; pid %(d)s/nginx-%(port)d.pid; error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %(d)s/body; proxy_temp_path %(d)s/proxy;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_cache_path %(d)s/nginx-cache levels=1:2 keys_zone=one:1m use_temp_path=off;
    server {
        listen 127.0.0.1:%(port)d;
%(locs)s
    }
}
""" % {"d": d, "port": port, "locs": LOCATIONS % {"d": d, "origin": origin}}
    path = "%s/nginx-%d.conf" % (d, port)
    open(path, "w").write(conf)
    return ["/usr/sbin/nginx", "-p", d, "-c", path]


def origin(d, port):
    conf = """
daemon off; master_process off; worker_processes 1; pid %(d)s/origin.pid; error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off; keepalive_requests 1000000;
    client_body_temp_path %(d)s/body; proxy_temp_path %(d)s/proxy;
    server { listen 127.0.0.1:%(port)d; root %(d)s/doc; location / { } }
}
""" % {"d": d, "port": port}
    path = "%s/origin.conf" % d
    open(path, "w").write(conf)
    return ["/usr/sbin/nginx", "-p", d, "-c", path]


def haproxy(d, port, origin):
    """HAProxy's small cache (no static files, no aio switch: those rows
    are left out)."""
    conf = haproxy_head(defaults_extra=["http-reuse always"]) + """cache one
    total-max-size 16
    max-age 3600
frontend f
    bind 127.0.0.1:%(port)d
    use_backend cached if { path_beg /cache/ }
    default_backend plain
backend cached
    http-request set-path %%[path,regsub(^/cache/,/)]
    http-request cache-use one
    http-response cache-store one
    server s 127.0.0.1:%(origin)d
backend plain
    http-request set-path %%[path,regsub(^/proxy/,/)]
    server s 127.0.0.1:%(origin)d
""" % {"port": port, "origin": origin}
    path = "%s/haproxy-%d.cfg" % (d, port)
    open(path, "w").write(conf)
    return ["/usr/sbin/haproxy", "-db", "-f", path]


CONTESTANTS = [("portvakt", portvakt), ("nginx", nginx), ("haproxy", haproxy)]
# rows a contestant has no counterpart for
SKIP = {("haproxy", "cache hit, aio off"), ("haproxy", "static file")}
ROWS = [("cache hit", "cache/1k.bin"), ("cache hit, aio off", "cache-aio-off/1k.bin"),
        ("static file", "static/1k.bin"), ("proxied, no cache", "proxy/1k.bin")]


def wrk(port, path, seconds):
    out = subprocess.run(["taskset", "-c", CLIENT_CPUS, "wrk", "-t1", "-c32", "-d%ds" % seconds,
                          "http://127.0.0.1:%d/%s" % (port, path)], check=True, capture_output=True).stdout.decode()
    n = int(re.search(r"(\d+) requests in", out).group(1))
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors: (.*)", out):
        raise RuntimeError("wrk: " + out)
    return n


def check(port, path):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                          "http://127.0.0.1:%d/%s" % (port, path)], capture_output=True, timeout=30).stdout.decode()
    if out != "200 %d" % SIZE:
        raise RuntimeError("%s: %s" % (path, out))


def one_round(d, seconds, oport):
    rows = {}
    for name, mk in CONTESTANTS:
        port = free_port()
        srv = Server(name, mk(d, port, oport), d, [port], SERVER_CPU)
        srv.start()
        try:
            time.sleep(0.3)
            for label, path in ROWS:
                if (name, label) in SKIP:
                    continue
                check(port, path)
                check(port, path)  # a cache row: the first was the miss
                pids = srv.pids()
                c0, t0 = cpu_seconds(pids), time.monotonic()
                n = wrk(port, path, seconds)
                c1, t1 = cpu_seconds(pids), time.monotonic()
                rows[(name, label)] = (n / (t1 - t0), (c1 - c0) * 1e6 / max(n, 1))
        finally:
            srv.stop()
    return rows


def instructions(d, oport):
    from instructions import stop, total_instructions, wait_port
    from static import drive
    lines = ["| server | " + " | ".join("%s: instructions per request" % k for k, _ in ROWS) + " |",
             "| --- |" + " ---: |" * len(ROWS)]
    for name, mk in CONTESTANTS:
        cells = []
        for label, path in ROWS:
            if (name, label) in SKIP:
                cells.append("—")
                continue
            totals = []
            for n in (200, 1200):
                port = free_port()
                out = "%s/callgrind-%s-%s-%d.out" % (d, name, label.replace(" ", "_").replace(",", ""), n)
                argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + mk(d, port, oport)
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
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "cache.md"))
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pv-cache-bench-")
    os.makedirs(d + "/doc")
    with open(d + "/doc/1k.bin", "wb") as f:
        f.write(bytes(i % 251 for i in range(SIZE)))
    oport = free_port()
    org = Server("origin", origin(d, oport), d, [oport], CLIENT_CPUS)
    org.start()
    try:
        if a.instructions:
            text = instructions(d, oport)
        else:
            rounds = [one_round(d, a.time, oport) for _ in range(a.rounds)]
            lines = ["| server | " + " | ".join("%s req/s | %s µs CPU/req" % (k, k) for k, _ in ROWS) + " |",
                     "| --- |" + " ---: | ---: |" * len(ROWS)]
            for name, _ in CONTESTANTS:
                cells = []
                for label, _ in ROWS:
                    if (name, label) in SKIP:
                        cells += ["—", "—"]
                        continue
                    cells.append("%.0f" % statistics.median(r[(name, label)][0] for r in rounds))
                    cells.append("%.1f" % statistics.median(r[(name, label)][1] for r in rounds))
                lines.append("| %s | %s |" % (name, " | ".join(cells)))
            text = "\n".join(lines) + "\n"
    finally:
        org.stop()
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
