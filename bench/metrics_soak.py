"""Metrics under a soak: portvakt proxies a steady wrk load to the bench's
NGINX upstream for DURATION seconds (default 300) while /metrics and
/status are scraped every second; RSS is read every 10 s. The metrics'
memory is fixed by the config, so after the warm-up RSS must not grow.

    /usr/bin/python3 bench/metrics_soak.py [DURATION] [--plain [BINARY]]

--plain: the same load with no report location and no scrape, on BINARY
(default build/portvakt): the baseline the RSS growth is compared with.

Prints a Markdown table (and writes build/bench/metrics_soak.md).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True

import contestants  # noqa: E402
import procs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = os.path.join(ROOT, "build", "bench", "metrics_soak" + ("-plain" if "--plain" in sys.argv else ""))
NGINX = "/usr/sbin/nginx"
NOFILE = 4096

CONF = """\
worker_processes 1;
worker_rlimit_nofile %(nofile)d;
error_log %(dir)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream app { server 127.0.0.1:%(up)d; keepalive 32; }
    server {
        listen 127.0.0.1:%(port)d;
        location /api/ { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
%(reports)s
    }
}
"""


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    duration = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    plain = "--plain" in sys.argv
    binary = os.path.abspath(sys.argv[sys.argv.index("--plain") + 1]) if plain and sys.argv[-1] != "--plain" \
        else os.path.join(ROOT, "build", "portvakt")
    reports = "" if plain else ("        location = /metrics { portvakt_metrics; }\n"
                                "        location = /status { portvakt_status; }")
    os.makedirs(SCRATCH, exist_ok=True)
    up_port, status_port, port = procs.free_port(), procs.free_port(), procs.free_port()
    up_conf = os.path.join(SCRATCH, "upstream.conf")
    with open(up_conf, "w") as f:
        f.write(contestants.upstream_conf(up_port, status_port, SCRATCH, NOFILE))
    conf = os.path.join(SCRATCH, "portvakt.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"nofile": NOFILE, "dir": SCRATCH, "up": up_port, "port": port,
                       "reports": reports})
    upstream = procs.Server("upstream", [NGINX, "-p", SCRATCH, "-e", "stderr", "-c", up_conf],
                            SCRATCH, [up_port, status_port], "0-%d" % (os.cpu_count() - 1)).start()
    gw = procs.Server("portvakt", [binary, "-c", conf],
                      SCRATCH, [port], "0-%d" % (os.cpu_count() - 1)).start()
    wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d%ds" % duration, "http://127.0.0.1:%d/api/x" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    samples, scrapes, t0 = [], 0, time.monotonic()
    try:
        while wrk.poll() is None:
            for path in () if plain else ("/metrics", "/status"):
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
                    r.read()
                scrapes += 1
            el = time.monotonic() - t0
            if not samples or el - samples[-1][0] >= 10:
                samples.append((el, rss_kb(gw.pid)))
            time.sleep(1)
        out = wrk.stdout.read().decode()
    finally:
        if wrk.poll() is None:
            wrk.kill()
        gw.stop()
        upstream.stop()
    reqs = next((l.split()[0] for l in out.splitlines() if "requests in" in l), "?")
    warm = [kb for t, kb in samples if t >= 30] or [kb for _, kb in samples]
    lines = ["| seconds | RSS KiB |", "| ---: | ---: |"] + ["| %.0f | %d |" % s for s in samples]
    lines += ["", "%s requests through the proxy, %d scrapes (/metrics and /status, one each a second)." % (reqs, scrapes),
              "RSS after the 30 s warm-up: first %d KiB, last %d KiB, most %d KiB (growth %+d KiB)."
              % (warm[0], warm[-1], max(warm), warm[-1] - warm[0])]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(SCRATCH, "..", "metrics_soak.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
