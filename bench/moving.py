#!/usr/bin/python3
"""A service moves under load, as in Docker Compose: portvakt beside NGINX
and HAProxy, in the same run.

The name app.test stands for a service. Its upstream processes (NGINX,
`return 200`, one process each) listen on the same port at 127.0.0.11,
127.0.0.12, ... While wrk sends keepalive requests through the gateway,
the last of them is killed (SIGKILL, as a crashed container) and, a
second later, started again at a new address, 127.0.0.20, as a recreated
container gets one; the DNS answer for app.test changes at the same
moment (a stub DNS server, with the TTL of 600 s Docker's embedded DNS
gives). Two scenarios:

  - three: the service has three processes and one moves;
  - one: the service has one process, and it moves.

Contestants:

  - nginx: `server app.test:PORT;` in an upstream block, the config a
    Compose user writes; NGINX 1.22 resolves the name once, at start;
  - portvakt (same config): the very same config, so the same behaviour
    is expected;
  - portvakt resolve: `server app.test:PORT resolve;` with `resolver`
    and no `valid=`: the TTL stands, and a failed try asks again;
  - haproxy: `server-template` with a `resolvers` section and health
    checks every second, HAProxy's way of following a name.

A name resolved at start is resolved through /etc/hosts: nginx and the
portvakt row with the same config run in a private mount namespace where
/etc/hosts names the first addresses (needs root and unshare(1)).

Per row: requests wrk completed, client-visible errors (non-2xx answers
and socket errors), how many requests the moved process answered at its
new address, and how long after its restart it got the first one.

    /usr/bin/python3 bench/moving.py [--time 20] [--out FILE]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
from procs import Server, free_port, haproxy_head  # noqa: E402
from dns_stub import A, DnsStub  # noqa: E402

ROOT = os.path.dirname(HERE)
PORTVAKT = os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt"))
NGINX = "/usr/sbin/nginx"
HAPROXY = "/usr/sbin/haproxy"
MOVED_TO = "127.0.0.20"
KILL_AT, RESTART_AFTER = 0.25, 1.0   # share of the run; seconds
PROBE_EVERY = 0.01
TTL = 600  # Docker's embedded DNS


def first_addresses(n):
    return ["127.0.0.%d" % (11 + i) for i in range(n)]


def wait_listening(addr, port, proc, timeout=10):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("a server at %s:%d exited" % (addr, port))
        try:
            socket.create_connection((addr, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on %s:%d" % (addr, port))


class Upstream:
    """One process of the service: NGINX answering 200, logging each
    request's time so the first one after a restart can be read."""

    def __init__(self, d, addr, port):
        self.d, self.addr, self.port = d, addr, port
        self.log = os.path.join(d, "up-%s.log" % addr)
        self.conf = os.path.join(d, "up-%s.conf" % addr)
        with open(self.conf, "w") as f:
            f.write("daemon off; master_process off; worker_processes 1;\n"
                    "pid %s/up-%s.pid; error_log stderr error;\n" % (d, addr)
                    + "events { worker_connections 4096; }\nhttp {\n"
                    "    log_format t $msec;\n"
                    "    access_log %s t buffer=64k flush=1s;\n" % self.log
                    + "    keepalive_requests 10000000;\n"
                    "    client_body_temp_path %s/b; proxy_temp_path %s/p;\n" % (d, d)
                    + "    server { listen %s:%d; location / { return 200 \"ok\\n\"; } }\n}\n"
                    % (addr, port))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", self.d, "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.addr, self.port, self.proc)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def times(self):
        try:
            with open(self.log) as f:
                return [float(x) for x in f.read().split()]
        except OSError:
            return []


def hosts_wrapper(d, addrs):
    """argv prefix: a private mount namespace whose /etc/hosts names
    app.test at addrs, as the host's resolver would at start."""
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
        for a in addrs:
            f.write("%s app.test\n" % a)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', hosts]


GATEWAY = """
worker_processes 1;
error_log stderr error;
%(head)s
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    %(resolver)s
    upstream app { server app.test:%(up)d%(resolve)s; keepalive 32; }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


def gateway(kind, d, port, up, dns_port, addrs):
    resolve = kind == "portvakt resolve"
    conf = GATEWAY % {
        "head": ("daemon off; master_process off; pid %s/gw.pid;" % d) if kind == "nginx" else "",
        "resolver": ("resolver 127.0.0.1:%d valid=1s;" % dns_port) if resolve else
                    ("client_body_temp_path %s/b; proxy_temp_path %s/p;" % (d, d) if kind == "nginx" else ""),
        "up": up, "port": port, "resolve": " resolve" if resolve else ""}
    path = os.path.join(d, "gw-%d.conf" % port)
    with open(path, "w") as f:
        f.write(conf)
    if kind == "nginx":
        return hosts_wrapper(d, addrs) + [NGINX, "-p", d, "-c", path]
    if kind == "portvakt (same config)":
        return hosts_wrapper(d, addrs) + [PORTVAKT, "-c", path]
    return [PORTVAKT, "-c", path]


def haproxy(d, port, up, dns_port, addrs):
    conf = haproxy_head() + """resolvers dns
    nameserver ns 127.0.0.1:%d
    hold valid 1s
    hold obsolete 0s
    timeout resolve 1s
frontend f
    bind 127.0.0.1:%d
    default_backend app
backend app
    http-reuse always
    server-template app %d app.test:%d check inter 1s resolvers dns init-addr none resolve-prefer ipv4
""" % (dns_port, port, len(addrs), up)
    path = os.path.join(d, "haproxy-%d.cfg" % port)
    with open(path, "w") as f:
        f.write(conf)
    return [HAPROXY, "-db", "-f", path]


CONTESTANTS = ["nginx", "portvakt (same config)", "portvakt resolve", "haproxy"]


def wrk(port, seconds):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32", "-d%ds" % seconds,
                          "--timeout", "2s", "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return requests, errors


def settle(port, what, timeout=15):
    """The gateway answers 200 before the load starts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://127.0.0.1:%d/" % port], capture_output=True, text=True)
        if r.stdout == "200":
            return
        time.sleep(0.2)
    raise RuntimeError("%s never answered 200" % what)


class Probe:
    """A client apart from the load: one request every PROBE_EVERY seconds,
    each on a new connection, noting the times of its failures; how long
    errors lasted is what a user of the service notices, whatever number
    of fast errors wrk counted meanwhile."""

    def __init__(self, port):
        import threading
        self.port, self.fails, self.sent, self.stopped = port, [], 0, False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        import http.client
        while not self.stopped:
            t = time.time()
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/")
                ok = c.getresponse().status == 200
                c.close()
            except OSError:
                ok = False
            self.sent += 1
            if not ok:
                self.fails.append(t)
            time.sleep(max(0.0, PROBE_EVERY - (time.time() - t)))

    def stop(self):
        self.stopped = True
        self.thread.join(10)


def one_run(kind, n, seconds):
    d = tempfile.mkdtemp(prefix="pv-moving-")
    addrs = first_addresses(n)
    up = free_port()
    dns = DnsStub()
    dns.set("app.test", *[(A, a, TTL) for a in addrs])
    ups = [Upstream(d, a, up) for a in addrs]
    gw = None
    try:
        for u in ups:
            u.start()
        port = free_port()
        argv = (haproxy(d, port, up, dns.port, addrs) if kind == "haproxy"
                else gateway(kind, d, port, up, dns.port, addrs))
        gw = Server(kind.split()[0], argv, d, [port], "0").start()
        settle(port, kind)
        result = {}
        load = subprocess.Popen([sys.executable, __file__, "--wrk", str(port), str(seconds)],
                                stdout=subprocess.PIPE, text=True)
        probe = Probe(port)
        time.sleep(seconds * KILL_AT)
        ups[-1].kill()
        time.sleep(RESTART_AFTER)
        moved = Upstream(d, MOVED_TO, up)
        dns.set("app.test", *[(A, a, TTL) for a in addrs[:-1] + [MOVED_TO]])
        moved.start()
        restarted = time.time()
        out, _ = load.communicate(timeout=seconds + 90)
        probe.stop()
        result["probe_sent"], result["probe_fails"] = probe.sent, len(probe.fails)
        result["error_window"] = (max(probe.fails) - min(probe.fails)) if probe.fails else 0.0
        result["requests"], result["errors"] = (int(x) for x in out.split())
        moved.stop()
        times = moved.times()
        result["moved"] = len(times)
        result["follow_s"] = (min(times) - restarted) if times else None
        ups.append(moved)
        return result
    finally:
        if gw:
            gw.stop()
        for u in ups:
            u.stop()
        dns.stop()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--time", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "moving.md"))
    ap.add_argument("--wrk", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.wrk:
        print("%d %d" % wrk(*a.wrk))
        return
    if os.geteuid() != 0:
        sys.exit("bench/moving.py needs root: nginx and one portvakt row read a private /etc/hosts")
    rows = []
    for n, scenario in ((3, "three processes, one moves"), (1, "one process, it moves")):
        for kind in CONTESTANTS:
            r = one_run(kind, n, a.time)
            print(scenario, kind, r, flush=True)
            rows.append((scenario, kind, r))
    write(a.out, a.time, rows)


def write(path, seconds, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# A service moves under load: portvakt beside NGINX and HAProxy\n\n"
                "`bench/moving.py` (%s): wrk, 32 keepalive connections for %d s; at %d s\n"
                "the service's last process is killed and %.0f s later started at a new\n"
                "address, with the DNS answer changed (TTL %d s). Machine: %s.\n\n"
                % (time.strftime("%Y-%m-%d"), seconds, int(seconds * KILL_AT), RESTART_AFTER, TTL,
                   os.uname().release)
                + "| scenario | gateway | requests | client-visible errors | probe: failed of sent | probe: errors from first to last | answered by the moved process | first answer after its restart |\n"
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
        for scenario, kind, r in rows:
            follow = "never" if r["follow_s"] is None else "%.2f s" % r["follow_s"]
            f.write("| %s | %s | %d | %d | %d of %d | %.2f s | %d | %s |\n"
                    % (scenario, kind, r["requests"], r["errors"], r["probe_fails"], r["probe_sent"],
                       r["error_window"], r["moved"], follow))
    print("wrote", path)


if __name__ == "__main__":
    main()
