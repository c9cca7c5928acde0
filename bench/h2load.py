"""HTTP/2 (h2c, prior knowledge): portvakt beside NGINX and HAProxy, same run.

    /usr/bin/python3 bench/h2load.py            figures on stdout
    /usr/bin/python3 bench/h2load.py --write    and bench/results/h2load.md

h2load (Debian's nghttp2-client) sends 100 streams at a time over 10
connections (-c 10 -m 10) to each proxy, one worker each, with the
gateway config of contestants.py on a `listen ... http2` address (HAProxy:
`bind ... proto h2`), in front of the same NGINX `return 200` upstream over
HTTP/1.1 keepalive. Per round and proxy: requests/s, and the proxy's CPU
time per request (from /proc); the median of the rounds is reported.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import contestants  # noqa: E402
import procs  # noqa: E402
import run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = os.path.join(HERE, "results", "h2load.md")
SCRATCH = os.path.join(run.SCRATCH, "h2load")


def start_proxy(c, workdir, upstream_port, nofile, cpus):
    port = procs.free_port()
    if c.proxy == "haproxy":
        path = os.path.join(workdir, "haproxy.cfg")
        text = contestants.haproxy_conf(c, port, upstream_port, nofile)
        text = text.replace("bind 127.0.0.1:%d" % port, "bind 127.0.0.1:%d proto h2" % port)
        argv = [run.HAPROXY, "-db", "-f", path]
    else:
        path = os.path.join(workdir, "gateway.conf")
        text = contestants.gateway_conf(c, port, upstream_port, workdir, nofile)
        text = text.replace("listen 127.0.0.1:%d;" % port, "listen 127.0.0.1:%d http2;" % port)
        argv = ([run.NGINX, "-p", workdir, "-e", "stderr", "-c", path] if c.proxy == "nginx"
                else [run.PORTVAKT, "-c", path])
    with open(path, "w") as f:
        f.write(text)
    server = procs.Server(c.proxy, argv, workdir, [port], cpus)
    server.port = port
    return server.start()


def h2load(port, requests, cpus):
    out = subprocess.run(["taskset", "-c", cpus, "h2load", "-n", str(requests), "-c", "10", "-m", "10",
                          "-t", "1", "http://127.0.0.1:%d%s" % (port, contestants.TARGET)],
                         capture_output=True, text=True, timeout=300)
    text = out.stdout
    rps = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     text)
    codes = re.search(r"status codes: (\d+) 2xx", text)
    if not (rps and done and codes):
        raise RuntimeError("h2load output not understood:\n" + text + out.stderr)
    return float(rps.group(1)), int(done.group(1)), int(done.group(2)) + int(done.group(3)), int(codes.group(1))


def measure(label, proxy, rounds, requests, nofile):
    pin = run.pinning(1)
    rows = []
    for r in range(rounds):
        workdir = os.path.join(SCRATCH, "%s-%d" % (label, r))
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        up = run.start_upstream(workdir, nofile, pin["load"])
        c = contestants.Contestant(label, proxy, 1)
        px = start_proxy(c, workdir, up.port, nofile, pin["proxy"])
        try:
            h2load(px.port, 2000, pin["load"])  # warm-up: pools filled, caches grown
            before = procs.cpu_seconds(px.pids())
            rps, ok, bad, twoxx = h2load(px.port, requests, pin["load"])
            after = procs.cpu_seconds(px.pids())
        finally:
            px.stop()
            up.stop()
        rows.append({"rps": rps, "ok": ok, "bad": bad, "2xx": twoxx,
                     "cpu_us": (after - before) * 1e6 / requests})
        time.sleep(0.5)
    return rows


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--write", action="store_true")
    opts = ap.parse_args()
    nofile = run.raise_nofile()
    results = {}
    for label in ("portvakt", "nginx", "haproxy"):
        results[label] = measure(label, label, opts.rounds, opts.requests, nofile)
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = ["# HTTP/2 (h2c): 100 streams over 10 connections",
             "",
             "`bench/h2load.py` at %s, %s; %d rounds of %d requests per proxy, one worker each,"
             % (commit, time.strftime("%Y-%m-%d"), opts.rounds, opts.requests),
             "`h2load -c 10 -m 10` against the gateway config of `contestants.py` on an h2c address,",
             "in front of NGINX `return 200` over HTTP/1.1 keepalive. Medians of the rounds; CPU is the",
             "proxy's own (user + system) per request. Machine: %d CPUs, shared with other work." % os.cpu_count(),
             "",
             "| proxy | requests/s | CPU µs/request | failed or errored | 2xx |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for label, rows in results.items():
        lines.append("| %s | %.0f | %.1f | %d | %d |" % (label, median([r["rps"] for r in rows]),
                                                       median([r["cpu_us"] for r in rows]),
                                                       sum(r["bad"] for r in rows), sum(r["2xx"] for r in rows)))
    lines += ["", "Rounds (requests/s, CPU µs/request):", ""]
    for label, rows in results.items():
        lines.append("- %s: %s" % (label, ", ".join("%.0f / %.1f" % (r["rps"], r["cpu_us"]) for r in rows)))
    text = "\n".join(lines) + "\n"
    print(text)
    if opts.write:
        with open(RESULT, "w") as f:
            f.write(text)
    bad = any(r["bad"] or r["2xx"] != opts.requests for rows in results.values() for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
