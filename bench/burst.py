"""Memory under a burst: portvakt beside NGINX and HAProxy, from /proc.

    /usr/bin/python3 bench/burst.py                 every proxy, figures on stdout
    /usr/bin/python3 bench/burst.py --write         and bench/results/burst.md
    /usr/bin/python3 bench/burst.py --only portvakt --clients 2000
    /usr/bin/python3 bench/burst.py --baseline OTHER/portvakt --baseline-name REV
                                                    and another build beside

Four figures per proxy (one worker each, the gateway config of
contestants.py, in front of an upstream that holds its answers):

- peak memory per in-flight proxied request: N clients each send one
  request; the upstream answers none until it holds all N, so all N are in
  flight at once. (RSS at that moment - idle RSS) / N.
- memory returned after the burst: every client then reads its answer and
  closes; RSS is sampled for 30 s and compared with the idle start.
- memory per idle connection after a burst: on a fresh proxy, 2,000
  concurrent requests are answered and their connections left idle in
  keepalive; (RSS - RSS before) / 2,000, 1 s and 5 s later.
- idle clients holding every slot: with worker_connections 512 (HAProxy:
  maxconn 512) all held by idle keepalive clients, how many of 100
  newcomers are answered within 5 s.

BURST_WATCH_S shortens the 30 s watch after the burst, for trying it out.

Only memory is measured (no timings), so a busy machine does not skew it.
"""

import argparse
import contextlib
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import contestants  # noqa: E402
import procs  # noqa: E402
import run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRATCH = os.path.join(run.SCRATCH, "burst")
RESULT = os.path.join(HERE, "results", "burst.md")
PORTVAKT = run.PORTVAKT
REPLY = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
         % (len(contestants.UPSTREAM_BODY), contestants.UPSTREAM_BODY)).encode()
IDLE_CLIENTS = 2000
SLOTS = 512        # worker_connections in the slots test, every one held idle
NEWCOMERS = 100    # clients arriving when every slot is held
WATCH_S = int(os.environ.get("BURST_WATCH_S", "30"))


# ------------------------------------------------------------ the upstream


def upstream_main(port):
    """The holding upstream (run as a child process): answers every request
    at once, except while holding: a line "hold N" on stdin makes it keep
    requests unanswered until N are waiting, then answer them all."""
    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin, selectors.EVENT_READ, "control")
    bufs, waiting, hold = {}, [], 0
    while True:
        for key, _ in sel.select():
            if key.data == "listen":
                for _ in range(256):
                    try:
                        s, _ = ls.accept()
                    except BlockingIOError:
                        break
                    s.setblocking(False)
                    bufs[s] = b""
                    sel.register(s, selectors.EVENT_READ, "conn")
            elif key.data == "control":
                line = sys.stdin.readline()
                if not line:
                    return
                hold = int(line.split()[1])
                print("ok", flush=True)
            else:
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    bufs.pop(s, None)
                    s.close()
                    continue
                bufs[s] += data
                while b"\r\n\r\n" in bufs[s]:
                    _, _, bufs[s] = bufs[s].partition(b"\r\n\r\n")
                    waiting.append(s)
        if len(waiting) >= hold and waiting:
            if hold:
                print("held %d" % len(waiting), flush=True)
                sys.stdin.readline()   # "release"
                hold = 0
            for s in waiting:
                try:
                    s.sendall(REPLY)
                except OSError:
                    pass
            waiting = []


class Upstream:
    """The holding upstream as a child process, driven through its stdin."""

    def __init__(self, workdir, cpus):
        self.port = procs.free_port()
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpus, sys.executable, os.path.abspath(__file__),
             "--upstream", str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=workdir,
            preexec_fn=procs._die_with_parent)
        deadline = time.monotonic() + procs.START_TIMEOUT
        while not procs._port_open(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise procs.ServerError("the burst upstream did not start")
            time.sleep(0.02)

    def hold(self, n):
        self.proc.stdin.write("hold %d\n" % n)
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def wait_held(self):
        """Block until the upstream holds its N requests."""
        line = self.proc.stdout.readline()
        if not line.startswith("held"):
            raise RuntimeError("upstream: %r" % line)

    def release(self):
        self.proc.stdin.write("release\n")
        self.proc.stdin.flush()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# ------------------------------------------------------------ clients


def send_all(port, n):
    """n connections, each with one request sent (answers not read)."""
    sources = run.load.source_addresses(n)
    socks = []
    head = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % contestants.TARGET).encode()
    for i in range(n):
        s = socket.socket()
        if sources[i % len(sources)]:
            s.setsockopt(socket.IPPROTO_IP, run.load.IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((sources[i % len(sources)], 0))
        s.settimeout(30)
        s.connect(("127.0.0.1", port))
        s.sendall(head)
        socks.append(s)
    return socks


def read_all(socks):
    """Read one whole answer on each connection; returns how many were 200."""
    ok = 0
    for s in socks:
        data = b""
        while not data.endswith(contestants.UPSTREAM_BODY.encode()):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        ok += data.startswith(b"HTTP/1.1 200")
    return ok


def rss(proxy):
    return procs.status_kb(proxy.pids(), "VmRSS")


def settle(proxy, seconds=1.0):
    time.sleep(seconds)
    return rss(proxy)


# ------------------------------------------------------------ one proxy


def start(name, workdir, up, nofile, cpus):
    c = contestants.Contestant(name, name, 1)
    os.makedirs(workdir, exist_ok=True)
    proxy = run.start_proxy(c, workdir, up.port, nofile, cpus)
    sock, status, _ = run.load.request(proxy.port, contestants.TARGET)
    sock.close()
    if status != 200:
        raise RuntimeError("%s answered %d" % (name, status))
    # warm: a few hundred requests, so caches hold their steady-state share
    for s in send_all(proxy.port, 200):
        s.close()
    return proxy


@contextlib.contextmanager
def measured(name, what, nofile, pin):
    """A fresh directory, the upstream and the proxy started and warm;
    yields (upstream, proxy, settled RSS in KiB) and stops both after."""
    workdir = os.path.join(SCRATCH, "%s-%s" % (name, what))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    up = Upstream(workdir, pin["load"])
    proxy = None
    try:
        proxy = start(name, workdir, up, nofile, pin["proxy"])
        yield up, proxy, settle(proxy, 2.0)
    finally:
        if proxy:
            proxy.stop()
        up.stop()


def hold_in_flight(up, port, n):
    """n requests in flight at once, held by the upstream (which answers
    them on up.release()); returns the client sockets."""
    up.hold(n)
    socks = send_all(port, n)
    up.wait_held()
    return socks


def burst(name, n, nofile, pin):
    """Peak per in-flight request and memory returned after the burst."""
    with measured(name, "burst", nofile, pin) as (up, proxy, idle):
        socks = hold_in_flight(up, proxy.port, n)
        peak = rss(proxy)
        up.release()
        ok = read_all(socks)
        for s in socks:
            s.close()
        closed = time.monotonic()
        trace = []
        while time.monotonic() - closed < WATCH_S:
            time.sleep(1)
            trace.append(rss(proxy))
        return {"idle_kb": idle, "peak_kb": peak, "ok": ok, "n": n,
                "per_request_b": (peak - idle) * 1024 / n, "after_kb": trace[-1],
                "after_5s_kb": trace[4], "ratio": trace[-1] / idle,
                "alive": proxy.alive()}


def idle_after(name, nofile, pin):
    """Bytes per idle keepalive connection left by 2,000 concurrent requests."""
    with measured(name, "idle", nofile, pin) as (up, proxy, base):
        socks = hold_in_flight(up, proxy.port, IDLE_CLIENTS)
        up.release()
        ok = read_all(socks)
        at1 = settle(proxy, 1.0)
        at5 = settle(proxy, 4.0)
        held = len(socks) - run.load.count_closed(socks)
        for s in socks:
            s.close()
        return {"ok": ok, "held": held,
                "idle_1s_b": (at1 - base) * 1024 / IDLE_CLIENTS,
                "idle_5s_b": (at5 - base) * 1024 / IDLE_CLIENTS}


def slots(name, nofile, pin):
    """worker_connections 512 (HAProxy: maxconn 512), every slot held by an
    idle keepalive client; then 100 newcomers, one request each: how many
    are answered within 5 s."""
    workdir = os.path.join(SCRATCH, name + "-slots")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    up = Upstream(workdir, pin["load"])
    proxy = None
    saved = contestants.WORKER_CONNECTIONS
    contestants.WORKER_CONNECTIONS = SLOTS
    try:
        c = contestants.Contestant(name, name, 1)
        proxy = run.start_proxy(c, workdir, up.port, nofile, pin["proxy"])
        time.sleep(0.3)
        idle = send_all(proxy.port, SLOTS)
        read_all(idle)
        newcomers = []
        for _ in range(NEWCOMERS):
            try:
                newcomers.append(send_all(proxy.port, 1)[0])
            except OSError:
                pass
        deadline = time.monotonic() + 5
        served = 0
        for s in newcomers:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                served += s.recv(65536).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
        for s in idle + newcomers:
            s.close()
        return {"served": served}
    finally:
        contestants.WORKER_CONNECTIONS = saved
        if proxy:
            proxy.stop()
        up.stop()


# ------------------------------------------------------------ report


LABELS = {"portvakt": "portvakt", "base": "portvakt before", "nginx": "NGINX", "haproxy": "HAProxy"}


def markdown(res, n, note):
    keys = [k for k in ("portvakt", "base", "nginx", "haproxy") if k in res]
    out = ["| 1 worker | idle RSS MiB | RSS at %d in flight MiB | KiB per in-flight request "
           "| RSS 5 s after MiB | RSS %d s after MiB | %d s after ÷ idle | B per idle conn, 1 s "
           "| B per idle conn, 5 s | newcomers served, %d slots held idle |"
           % (n, WATCH_S, WATCH_S, SLOTS),
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k in keys:
        b, i = res[k]["burst"], res[k]["idle"]
        out.append("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f× | %.0f | %.0f | %d of %d |"
                   % (LABELS[k], b["idle_kb"] / 1024, b["peak_kb"] / 1024,
                      b["per_request_b"] / 1024, b["after_5s_kb"] / 1024,
                      b["after_kb"] / 1024, b["ratio"], i["idle_1s_b"], i["idle_5s_b"],
                      res[k]["slots"]["served"], NEWCOMERS))

    def r(a, b):
        return "%.2f×" % (a / b) if b > 0 else "–"
    if "portvakt" in res:
        out += ["", "| portvakt ÷ | per in-flight request | RSS %d s after the burst "
                "| per idle conn, 1 s | per idle conn, 5 s |" % WATCH_S, "|---|---:|---:|---:|---:|"]
        me = res["portvakt"]
        for k in keys[1:]:
            o = res[k]
            out.append("| %s | %s | %s | %s | %s |" % (
                LABELS[k], r(me["burst"]["per_request_b"], o["burst"]["per_request_b"]),
                r(me["burst"]["after_kb"], o["burst"]["after_kb"]),
                r(me["idle"]["idle_1s_b"], o["idle"]["idle_1s_b"]),
                r(me["idle"]["idle_5s_b"], o["idle"]["idle_5s_b"])))
    out += ["", note]
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    p.add_argument("--only", default="portvakt,nginx,haproxy")
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--write", action="store_true", help="write bench/results/burst.md")
    p.add_argument("--baseline", default="", help="another portvakt binary to measure beside")
    p.add_argument("--baseline-name", default="", help="what the baseline is (e.g. its revision)")
    opts = p.parse_args()
    if opts.upstream:
        return upstream_main(opts.upstream)
    nofile = run.raise_nofile()
    # The proxy needs a descriptor per client and one per upstream request;
    # NGINX's worker_connections (20,000 here) counts both and above 15/16
    # of it starts closing connections to make room: hence 9,000 at most.
    n = min(opts.clients, (nofile - 512) // 2 // 100 * 100, 9000)
    pin = run.pinning(1)
    git = procs.subprocess.run(["git", "-C", run.ROOT, "describe", "--always", "--dirty"],
                               capture_output=True, text=True).stdout.strip()
    res = {}
    plan = [(k, k) for k in opts.only.split(",")]
    if opts.baseline:
        plan.insert(1, ("base", "portvakt"))
    for key, name in plan:
        run.PORTVAKT = os.path.abspath(opts.baseline) if key == "base" else PORTVAKT
        res[key] = {"burst": burst(name, n, nofile, pin), "idle": idle_after(name, nofile, pin),
                    "slots": slots(name, nofile, pin)}
        print(key, res[key], flush=True)
    run.PORTVAKT = PORTVAKT
    note = ("portvakt %s%s. %d clients in the burst; every figure is VmRSS from /proc "
            "(NGINX: master and worker), one run." % (
                git, " beside %s (\"portvakt before\")" % opts.baseline_name if opts.baseline else "", n))
    text = markdown(res, n, note)
    print(text)
    if opts.write:
        with open(RESULT, "w") as f:
            f.write("# Memory under a burst\n\nMade by `bench/burst.py --write`.\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
