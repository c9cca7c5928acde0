#!/usr/bin/python3
"""Compression figures: a gzip-compressed 20 KiB JSON answer through
portvakt, NGINX and HAProxy in the same run, and Brotli beside gzip on a
small JSON answer through portvakt.

Every proxy runs one worker / one thread pinned to CPU 0, in front of the
same upstream (NGINX serving two files, uncompressed, on CPU 1); wrk runs
on CPU 1 with `Accept-Encoding` set. Rows: requests per second and the
proxy's CPU microseconds per request (from /proc: user + system), the
median over rounds, and the bytes of one compressed answer. Before the
load, one request checks that the answer is encoded as the row says.

    /usr/bin/python3 bench/compress.py [--time 5] [--rounds 3] [--out FILE]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import Server, cpu_seconds, free_port, haproxy_head  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTVAKT = os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt"))
SERVER_CPU = "0"
CLIENT_CPUS = "1"


def json_body(n):
    items, out = [], b""
    i = 0
    while len(out) < n:
        items.append({"id": i, "name": "item %d" % i, "price": i * 7 % 1000 / 10, "tags": ["a", "b"],
                      "in_stock": i % 3 != 0})
        out = json.dumps({"items": items}).encode()
        i += 1
    return out


def upstream(d, port):
    conf = """
daemon off; master_process off; worker_processes 1; pid %s/up.pid; error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off; keepalive_requests 10000000; default_type application/json;
    client_body_temp_path %s/ub; proxy_temp_path %s/up;
    server { listen 127.0.0.1:%d; root %s/files; }
}
""" % (d, d, d, port, d)
    open(d + "/upstream.conf", "w").write(conf)
    return ["/usr/sbin/nginx", "-p", d, "-c", d + "/upstream.conf"]


def portvakt(d, port, up, extra):
    conf = """
worker_processes 1;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream u { server 127.0.0.1:%d; keepalive 32; }
    gzip_types application/json;
    brotli_types application/json;
    %s
    server {
        listen 127.0.0.1:%d;
        location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
""" % (up, extra, port)
    path = "%s/portvakt-%d.conf" % (d, port)
    open(path, "w").write(conf)
    return [PORTVAKT, "-c", path]


def nginx(d, port, up, extra):
    conf = """
daemon off; master_process off; worker_processes 1; pid %s/nginx-%d.pid; error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %s/b; proxy_temp_path %s/p;
    upstream u { server 127.0.0.1:%d; keepalive 32; }
    gzip_types application/json;
    %s
    server {
        listen 127.0.0.1:%d;
        location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
""" % (d, port, d, d, up, extra, port)
    path = "%s/nginx-%d.conf" % (d, port)
    open(path, "w").write(conf)
    return ["/usr/sbin/nginx", "-p", d, "-c", path]


def haproxy(d, port, up, extra):
    conf = haproxy_head(defaults_extra=["http-reuse always"]) + """frontend f
    bind 127.0.0.1:%d
    default_backend b
backend b
    compression algo gzip
    compression type application/json
    server s 127.0.0.1:%d
""" % (port, up)
    path = "%s/haproxy-%d.cfg" % (d, port)
    open(path, "w").write(conf)
    return ["/usr/sbin/haproxy", "-db", "-f", path]


GZIP = "gzip on; gzip_comp_level 1;"
BROTLI = "brotli on; brotli_comp_level %d;"

# (row, maker, config extra, file, Accept-Encoding, expected Content-Encoding)
ROWS = [
    ("portvakt gzip 1, 20 KiB JSON", portvakt, GZIP, "20k.json", "gzip", "gzip"),
    ("nginx gzip 1, 20 KiB JSON", nginx, GZIP, "20k.json", "gzip", "gzip"),
    ("haproxy gzip, 20 KiB JSON", haproxy, "", "20k.json", "gzip", "gzip"),
    ("portvakt uncompressed, 20 KiB JSON", portvakt, "", "20k.json", "gzip", None),
    ("portvakt gzip 1, 600 B JSON", portvakt, GZIP, "small.json", "gzip", "gzip"),
    ("portvakt brotli 1, 600 B JSON", portvakt, BROTLI % 1, "small.json", "br", "br"),
    ("portvakt brotli 4, 600 B JSON", portvakt, BROTLI % 4, "small.json", "br", "br"),
    ("portvakt brotli 6 (default), 600 B JSON", portvakt, BROTLI % 6, "small.json", "br", "br"),
    ("portvakt uncompressed, 600 B JSON", portvakt, "", "small.json", "br", None),
]


def check(port, path, ae, want):
    req = urllib.request.Request("http://127.0.0.1:%d/%s" % (port, path), headers={"Accept-Encoding": ae})
    with urllib.request.urlopen(req, timeout=5) as r:
        enc = r.headers.get("Content-Encoding")
        body = r.read()
    if enc != want:
        raise RuntimeError("%s: Content-Encoding %r, want %r" % (path, enc, want))
    return len(body)


def wrk(port, path, ae, seconds):
    out = subprocess.run(["taskset", "-c", CLIENT_CPUS, "wrk", "-t1", "-c32", "-d%ds" % seconds,
                          "-H", "Accept-Encoding: " + ae, "http://127.0.0.1:%d/%s" % (port, path)],
                         check=True, capture_output=True).stdout.decode()
    n = int(re.search(r"(\d+) requests in", out).group(1))
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or re.search(r"Socket errors: (.*)", out):
        raise RuntimeError("wrk: " + out)
    return n


def one_round(d, up, seconds):
    rows = {}
    for name, mk, extra, path, ae, want in ROWS:
        port = free_port()
        srv = Server(re.sub(r"[^a-z0-9]+", "-", name.lower()), mk(d, port, up, extra), d, [port], SERVER_CPU)
        srv.start()
        try:
            size = check(port, path, ae, want)
            pids = srv.pids()
            c0, t0 = cpu_seconds(pids), time.monotonic()
            n = wrk(port, path, ae, seconds)
            c1, t1 = cpu_seconds(pids), time.monotonic()
            rows[name] = (n / (t1 - t0), (c1 - c0) * 1e6 / max(n, 1), size)
        finally:
            srv.stop()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "compress.md"))
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pv-compress-")
    os.makedirs(d + "/files")
    open(d + "/files/20k.json", "wb").write(json_body(20 * 1024))
    open(d + "/files/small.json", "wb").write(json_body(600))
    up_port = free_port()
    up = Server("upstream", upstream(d, up_port), d, [up_port], CLIENT_CPUS).start()
    try:
        rounds = [one_round(d, up_port, a.time) for _ in range(a.rounds)]
    finally:
        up.stop()
    lines = ["# Compression", "",
             "`bench/compress.py --time %d --rounds %d`, %s. One worker / thread per proxy on CPU 0, "
             "wrk (1 thread, 32 connections, keepalive) and the upstream (NGINX serving the files) on CPU 1. "
             "Median of %d rounds; CPU is the proxy's user + system time per request."
             % (a.time, a.rounds, time.strftime("%Y-%m-%d"), a.rounds), "",
             "| row | req/s | CPU µs/req | answer bytes |", "| --- | ---: | ---: | ---: |"]
    for name, *_ in ROWS:
        rps = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds)
        lines.append("| %s | %.0f | %.1f | %d |" % (name, rps, cpu, rounds[0][name][2]))
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
