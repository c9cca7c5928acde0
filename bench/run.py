"""portvakt beside NGINX and HAProxy, in one run: `make bench`.

    make bench                          every contestant, 5 rounds (about 9
                                        minutes); results in bench/results/
    make bench BENCH_QUICK=1            one short round, for a quick check
    make bench BENCH_ONLY=portvakt,haproxy
                                        only some contestants (proxy names,
                                        labels or groups: main, keepalive,
                                        "pool overflow", policy)
    /usr/bin/python3 bench/run.py --help    every option

One NGINX `return 200` upstream per measurement, then the contestant in
front of it with the brief's gateway config (contestants.py), wrk driving
it, and the counters read from /proc and the upstream's stub_status. Every
server is started on 127.0.0.1 on ports chosen at run time and stopped
afterwards; scratch files go to build/bench/. A full run writes
bench/results/latest.md (+ a dated copy), latest.json and latest.png;
quick or partial runs write to build/bench/results/ instead, so the
committed figures always come from a full run.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep bench/ free of __pycache__

import contestants  # noqa: E402
import load  # noqa: E402
import machine  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import tokens  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTVAKT = os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt"))
NGINX = "/usr/sbin/nginx"
HAPROXY = "/usr/sbin/haproxy"
SCRATCH = os.path.join(ROOT, "build", "bench")
RESULTS = os.path.join(ROOT, "bench", "results")

IDLE_CONNECTIONS = 10000   # the figure; lowered if descriptors are short
WANT_NOFILE = 65536


def parse_args():
    env = os.environ.get
    quick = env("BENCH_QUICK", "") not in ("", "0")
    p = argparse.ArgumentParser(description="portvakt, NGINX and HAProxy side by side.")
    p.add_argument("--quick", action="store_true", default=quick,
                   help="one round of 2 s (env BENCH_QUICK=1)")
    p.add_argument("--only", default=env("BENCH_ONLY", ""),
                   help="comma-separated proxy names, labels or groups (env BENCH_ONLY)")
    p.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "5")),
                   help="rounds; each figure is the median (env BENCH_ROUNDS, default 5)")
    p.add_argument("--duration", type=int, default=int(env("BENCH_DURATION", "5")),
                   help="seconds of measured load per run (env BENCH_DURATION, default 5)")
    # 32 by default: as many clients as `keepalive 32` pools, so the main
    # table measures the proxies with warm pools; the "pool overflow" rows
    # show what happens beyond.
    p.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "32")),
                   help="wrk client connections (env BENCH_CONNECTIONS, default 32)")
    p.add_argument("--before", default=env("BENCH_BEFORE", ""),
                   help="another portvakt binary measured in the same rounds as a "
                        "'portvakt before' row of the main table (env BENCH_BEFORE)")
    p.add_argument("--out", default=env("BENCH_OUT", ""),
                   help="results directory (default: bench/results for a full run)")
    opts = p.parse_args()
    opts.warmup = 1   # wrk takes whole seconds
    if opts.quick:
        opts.rounds, opts.duration = 1, 2
    return opts


def select(table, only):
    """The contestants named by --only (all when empty), in table order."""
    terms = {t.strip() for t in only.split(",") if t.strip()}
    if not terms:
        return list(table)
    chosen = [c for c in table if terms & {c.proxy, c.label, c.key, c.group}]
    if not chosen:
        sys.exit("bench: --only %s matches no contestant" % only)
    return chosen


def raise_nofile():
    """Raise RLIMIT_NOFILE for the bench and the servers it starts (they
    inherit it); without CAP_SYS_RESOURCE only up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, WANT_NOFILE)
    for limits in ((want, max(hard, want) if hard != resource.RLIM_INFINITY else hard),
                   (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle_count(nofile):
    """Idle connections to open: HAProxy refuses to start unless its limit
    covers two descriptors per connection, so that caps the count."""
    return min(IDLE_CONNECTIONS, (nofile - 256) // 2 // 100 * 100)


def check_programs():
    missing = [p for p in (PORTVAKT, NGINX, HAPROXY, shutil.which("wrk"),
                           shutil.which("taskset"), shutil.which("gnuplot"))
               if not p or not os.access(p, os.X_OK)]
    if missing:
        sys.exit("bench: missing programs: %s (run `make setup` and `make`)" % missing)


def pinning(workers):
    """CPU lists for the proxy and for the load (wrk and the upstream).

    The proxy gets CPUs of its own when there are more CPUs than workers;
    otherwise everything shares all CPUs and contends, which the report says."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > workers:
        proxy, rest, shared = cpus[-workers:], cpus[:-workers], False
    else:
        proxy, rest, shared = cpus, cpus, True
    return {"proxy": ",".join(map(str, proxy)), "load": ",".join(map(str, rest)),
            "shared": shared}


# ------------------------------------------------------------ servers


def start_upstream(workdir, nofile, cpus):
    port, status_port = procs.free_port(), procs.free_port()
    path = os.path.join(workdir, "upstream.conf")
    with open(path, "w") as f:
        f.write(contestants.upstream_conf(port, status_port, workdir, nofile))
    server = procs.Server("upstream", [NGINX, "-p", workdir, "-e", "stderr", "-c", path],
                          workdir, [port, status_port], cpus)
    server.port, server.status_port = port, status_port
    return server.start()


def start_proxy(c, workdir, upstream_port, nofile, cpus):
    port = procs.free_port()
    if c.proxy == "haproxy":
        path = os.path.join(workdir, "haproxy.cfg")
        text = contestants.haproxy_conf(c, port, upstream_port, nofile)
        argv = [HAPROXY, "-db", "-f", path]
    else:
        path = os.path.join(workdir, "gateway.conf")
        text = contestants.gateway_conf(c, port, upstream_port, workdir, nofile)
        argv = ([NGINX, "-p", workdir, "-e", "stderr", "-c", path] if c.proxy == "nginx"
                else [c.binary or PORTVAKT, "-c", path])
    with open(path, "w") as f:
        f.write(text)
    server = procs.Server(c.proxy, argv, workdir, [port], cpus)
    server.port, server.conf_path = port, path
    return server.start()


# ------------------------------------------------------------ measuring


def snapshot(proxy, upstream):
    """Counters read just before and just after the measured wrk run."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"t": time.monotonic(),
            "proxy_cpu": procs.cpu_seconds(proxy.pids()),
            "proxy_alive": proxy.alive(),
            "upstream_cpu": procs.cpu_seconds(upstream.pids()),
            # wrk is waited for, so its CPU time lands in RUSAGE_CHILDREN
            "wrk_cpu": children.ru_utime + children.ru_stime,
            "accepts": load.upstream_accepts(upstream.status_port),
            "host": machine.cpu_counters(),
            "all": procs.all_cpu_ticks()}


def figures(wrk, before, after, ours):
    """The per-run figures from wrk's output and the two snapshots; ours
    are the pids not to count as other load (the bench, proxy, upstream)."""
    requests = wrk["requests"]
    wall = after["t"] - before["t"]
    proxy_cpu, upstream_cpu, wrk_cpu = (after[k] - before[k]
                                        for k in ("proxy_cpu", "upstream_cpu", "wrk_cpu"))
    if not after["proxy_alive"]:
        proxy_cpu = None   # its counters went with it
    busy, steal, total = (after["host"][k] - before["host"][k]
                          for k in ("busy", "steal", "total"))
    other = max(0.0, busy - (proxy_cpu or 0) - upstream_cpu - wrk_cpu)
    # The second stub_status query is itself one accepted connection.
    opened = after["accepts"] - before["accepts"] - 1
    return {
        "requests": requests,
        "rps": requests / (wrk["duration_us"] / 1e6),
        "p50_ms": wrk["p50_us"] / 1000, "p95_ms": wrk["p95_us"] / 1000,
        "p99_ms": wrk["p99_us"] / 1000, "p999_ms": wrk["p99.9_us"] / 1000,
        "errors": wrk["errors"], "non_2xx": wrk["errors_status"],
        "cpu_us": proxy_cpu * 1e6 / requests if requests and proxy_cpu is not None else None,
        "proxy_cpu_pct": 100 * proxy_cpu / wall if proxy_cpu is not None else None,
        "upstream_opened": opened,
        "upstream_per_100k": opened * 1e5 / requests if requests else None,
        "other_cpu_pct": 100 * other / wall,
        "other_top": procs.top_others(before["all"], after["all"], ours, wall),
        "steal_pct": 100 * steal / total if total else 0.0,
    }


def idle_cost(proxy, count, headers):
    """Bytes of proxy RSS per idle keepalive client connection: open count
    connections, one request each, and compare VmRSS before and after."""
    before = procs.status_kb(proxy.pids(), "VmRSS")
    socks, failures = load.open_idle(proxy.port, contestants.TARGET, count, headers)
    try:
        time.sleep(0.5)   # let the proxy settle every connection into idle
        after = procs.status_kb(proxy.pids(), "VmRSS")
        held = len(socks) - load.count_closed(socks)
    finally:
        for s in socks:
            s.close()
    per_conn = (after - before) * 1024 / held if held else None
    return {"idle_bytes": per_conn, "idle_held": held, "idle_failures": failures}


def check_reply(port, headers=()):
    """One request before the load: a wrong answer is a problem to report."""
    try:
        sock, status, body = load.request(port, contestants.TARGET, headers=headers)
        sock.close()
    except OSError as e:
        return "no reply to GET %s: %s" % (contestants.TARGET, e)
    if status != 200 or body.decode("latin-1") != contestants.UPSTREAM_BODY:
        return "GET %s answered %d %r" % (contestants.TARGET, status, body[:200])
    return None


def check_refused(port, headers):
    """With an access check configured, a request without the setup's
    headers, and one whose token signature is broken, must get 401:
    otherwise the check is not running and the load would measure a plain
    proxy under a misleading name. Returns a problem or None."""
    for what, sent in (("without its headers", ()),
                       ("with a forged token signature", tokens.forged(headers))):
        if sent is None:
            continue
        try:
            sock, status, body = load.request(port, contestants.TARGET, headers=sent)
            sock.close()
        except OSError as e:
            return "no reply to GET %s %s: %s" % (contestants.TARGET, what, e)
        if status != 401:
            return ("GET %s %s answered %d, not 401 %r"
                    % (contestants.TARGET, what, status, body[:200]))
    return None


def drive(c, proxy, upstream, opts, pin, idle, headers):
    """Warm up, measure one wrk run, then the idle-connection cost."""
    url = "http://127.0.0.1:%d%s" % (proxy.port, contestants.TARGET)
    threads = len(pin["load"].split(","))
    conns = c.connections or opts.connections
    problems = [p for p in [check_reply(proxy.port, headers)] if p]
    if headers:
        refused = check_refused(proxy.port, headers)
        if problems or refused:
            # No figures: they would not be those of the contestant named.
            return {"problems": problems + [p for p in [refused] if p]}
    # Not measured: fills the upstream pool and the proxies' freelists.
    load.run_wrk(url, conns, threads, opts.warmup, pin["load"], headers)
    before = snapshot(proxy, upstream)
    wrk = load.run_wrk(url, conns, threads, opts.duration, pin["load"], headers)
    after = snapshot(proxy, upstream)
    ours = set(proxy.pids() + upstream.pids() + [os.getpid()])
    rec = figures(wrk, before, after, ours)
    rec["time_wait"] = load.time_wait_count(upstream.port)
    # VmHWM before the idle test: the peak under load.
    rec["peak_rss_kb"] = procs.status_kb(proxy.pids(), "VmHWM") if proxy.alive() else None
    if wrk["errors"]:
        problems.append("wrk counted %d errors (%d non-2xx):\n%s"
                        % (wrk["errors"], wrk["errors_status"], wrk["output"]))
    if c.idle_test and proxy.alive():
        rec.update(idle_cost(proxy, idle, headers))
        if rec["idle_failures"] or rec["idle_held"] < idle:
            problems.append("idle test: %d of %d connections failed, %d held"
                            % (rec["idle_failures"], idle, rec["idle_held"]))
    if not proxy.alive():
        problems.append("%s exited with %s during the run" % (c.proxy, proxy.proc.returncode))
    rec["problems"] = problems
    return rec


def measure(c, round_no, opts, nofile, idle):
    """One contestant, one round, on fresh processes and fresh ports."""
    pin = pinning(c.workers)
    workdir = os.path.join(SCRATCH, "runs", "%s-r%d" % (c.key, round_no + 1))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    upstream = proxy = None
    try:
        headers = c.setup(workdir) if c.setup else ()
        upstream = start_upstream(workdir, nofile, pin["load"])
        proxy = start_proxy(c, workdir, upstream.port, nofile, pin["proxy"])
        rec = drive(c, proxy, upstream, opts, pin, idle, headers)
    except (procs.ServerError, load.WrkError, OSError, subprocess.TimeoutExpired,
            subprocess.CalledProcessError) as e:
        rec = {"problems": ["%s: %s" % (type(e).__name__, e)]}
    finally:
        for server in (proxy, upstream):
            if server is not None:
                server.stop()
    if rec["problems"] and proxy is not None:
        rec["stderr"] = proxy.stderr()
        rec["error_log"] = _tail(os.path.join(workdir, "error.log"))
    rec["round"] = round_no + 1
    return rec


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""


def progress(n, total, c, rec):
    """One console line per measurement."""
    if "rps" not in rec:
        return "[%2d/%d] %-26s FAILED: %s" % (n, total, c.key, rec["problems"][0][:200])
    num = lambda key, spec: "?" if rec.get(key) is None else spec % rec[key]  # noqa: E731
    idle = "  idle %s B/conn" % num("idle_bytes", "%.0f") if c.idle_test else ""
    return ("[%2d/%d] %-26s %s req/s  p95 %s ms  p99 %s ms  %s us/req  up-conns/100k %s%s"
            "  other load %s%%%s"
            % (n, total, c.key, num("rps", "%8.0f"), num("p95_ms", "%6.2f"),
               num("p99_ms", "%6.2f"), num("cpu_us", "%5.1f"),
               num("upstream_per_100k", "%6.0f"), idle, num("other_cpu_pct", "%3.0f"),
               "  PROBLEMS" if rec["problems"] else ""))


def main():
    opts = parse_args()
    plan = select(contestants.CONTESTANTS, opts.only)
    full = not opts.quick and len(plan) == len(contestants.CONTESTANTS)
    partial = len(plan) != len(contestants.CONTESTANTS)
    if opts.before:
        # the build before a change, interleaved with the rest in every round
        before = os.path.abspath(opts.before)
        plan += [contestants.Contestant("portvakt before", "portvakt", w, binary=before, idle_test=False)
                 for w in sorted({c.workers for c in plan if c.proxy == "portvakt" and c.group == "main"})]
    outdir = opts.out or (RESULTS if full else os.path.join(SCRATCH, "results"))
    check_programs()
    nofile = raise_nofile()
    idle = idle_count(nofile)
    facts = machine.describe(ROOT, PORTVAKT)
    settings = {"rounds": opts.rounds, "duration": opts.duration, "warmup": opts.warmup,
                "connections": opts.connections, "idle": idle, "nofile": nofile,
                "pinning": {w: pinning(w) for w in sorted({c.workers for c in plan})},
                "quick": opts.quick, "partial": partial}
    print("bench: %d contestants x %d rounds of %gs; access logging off everywhere"
          % (len(plan), opts.rounds, opts.duration))
    started = time.monotonic()
    runs = {c.key: [] for c in plan}
    total, n = len(plan) * opts.rounds, 0
    for r in range(opts.rounds):
        # Rotate the order so that no contestant always runs first or last.
        for c in plan[r % len(plan):] + plan[:r % len(plan)]:
            rec = measure(c, r, opts, nofile, idle)
            runs[c.key].append(rec)
            n += 1
            print(progress(n, total, c, rec), flush=True)
    settings["elapsed"] = time.monotonic() - started
    paths = report.write(outdir, facts, plan, runs, settings)
    print()
    print(report.tables_markdown(plan, runs, settings))
    print("bench: took %.0f s; wrote %s" % (settings["elapsed"], ", ".join(paths)))
    return 1 if any(rec["problems"] for recs in runs.values() for rec in recs) else 0


if __name__ == "__main__":
    sys.exit(main())
