"""POSTs through an upstream that closes every connection right after its
answer, without `Connection: close`: portvakt beside NGINX and HAProxy.

    /usr/bin/python3 bench/closing.py                 every proxy, figures on stdout
    /usr/bin/python3 bench/closing.py --write         and bench/results/closing.md
    /usr/bin/python3 bench/closing.py --seconds 4 --connections 64
    /usr/bin/python3 bench/closing.py --baseline OTHER/portvakt --baseline-name REV

Each proxy runs the gateway config of contestants.py (keepalive pool to the
upstream) with one worker; wrk sends numbered POSTs for a few seconds.
Figures per proxy: the share of POSTs that failed (a non-2xx answer or a
socket error), and how many the upstream received twice (never allowed:
a POST the upstream saw may not be sent again).

The keepalive pool is what makes the failures: a pooled connection the
upstream has just closed looks alive until its FIN is read, and a request
written into it is lost. Only the failure share and the duplicates are
figures here; no timing.
"""

import argparse
import collections
import os
import re
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
SCRATCH = os.path.join(run.SCRATCH, "closing")
RESULT = os.path.join(HERE, "results", "closing.md")
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

# wrk: numbered POSTs (thread id and serial in the target), so the upstream
# can tell a request it receives twice.
LUA = r"""
local n = 0
local counter = 1
setup = function(thread)
   thread:set("id", counter)
   counter = counter + 1
end
request = function()
   n = n + 1
   return wrk.format("POST", "%s?r=" .. tostring(id) .. "-" .. n, {["Content-Type"] = "text/plain"}, "item\n")
end
"""


def upstream_main(port, log_path):
    """Answers every request once its body is in, then closes the
    connection (no `Connection: close`). Each target received is appended
    to log_path when the process is told to stop (SIGTERM)."""
    import signal
    seen = []
    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4096)
    ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    bufs = {}

    def stop(*_):
        with open(log_path, "w") as f:
            f.write("\n".join(seen) + "\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                for _ in range(64):
                    try:
                        s, _ = ls.accept()
                    except BlockingIOError:
                        break
                    s.setblocking(False)
                    bufs[s] = b""
                    sel.register(s, selectors.EVENT_READ, "conn")
                continue
            s = key.fileobj
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            bufs[s] += data
            head, sep, rest = bufs[s].partition(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if sep and len(rest) >= (int(m.group(1)) if m else 0):
                seen.append(head.split(b" ", 2)[1].decode())
                try:
                    s.sendall(REPLY)
                except OSError:
                    pass
                data = b""
            if not data:
                sel.unregister(s)
                del bufs[s]
                s.close()


def one(name, seconds, connections, nofile, pin, binary=""):
    workdir = os.path.join(SCRATCH, name)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    port = procs.free_port()
    log_path = os.path.join(workdir, "received.txt")
    up = subprocess.Popen(["taskset", "-c", pin["load"], sys.executable, os.path.abspath(__file__),
                           "--upstream", str(port), log_path], preexec_fn=procs._die_with_parent)
    proxy = None
    try:
        deadline = time.monotonic() + procs.START_TIMEOUT
        while not procs._port_open(port):
            if time.monotonic() > deadline or up.poll() is not None:
                raise procs.ServerError("the closing upstream did not start")
            time.sleep(0.02)
        c = contestants.Contestant(name, "portvakt" if binary else name, 1, binary=binary)
        proxy = run.start_proxy(c, workdir, port, nofile, pin["proxy"])
        lua = os.path.join(workdir, "post.lua")
        with open(lua, "w") as f:
            f.write(LUA % contestants.TARGET)
        out = subprocess.run(["taskset", "-c", pin["load"], "wrk", "-t2", "-c%d" % connections,
                              "-d%ds" % seconds, "--timeout", "5s", "-s", lua,
                              "http://127.0.0.1:%d%s" % (proxy.port, contestants.TARGET)],
                             capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        if proxy:
            proxy.stop()
        up.terminate()
        up.wait()
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad += sum(int(x) for x in m.groups()) if m else 0
    with open(log_path) as f:
        received = collections.Counter(line for line in f.read().split("\n") if line)
    twice = sum(1 for v in received.values() if v > 1)
    return {"requests": total, "failed": bad, "twice": twice}


def markdown(res, seconds, connections):
    lines = ["# POSTs through an upstream that closes after each answer", "",
             "Made by `bench/closing.py` (%s). One worker per proxy, the gateway config of"
             % time.strftime("%Y-%m-%d"),
             "`contestants.py` (a keepalive pool of %d), wrk with %d connections for %d s."
             % (contestants.KEEPALIVE_POOL, connections, seconds),
             "The upstream closes each connection right after its answer, without",
             "`Connection: close`. Failed: a non-2xx answer or a socket error. Twice:",
             "POSTs the upstream received more than once.", "",
             "| proxy | POSTs | failed | failed % | received twice |",
             "|---|---:|---:|---:|---:|"]
    for name, r in res.items():
        lines.append("| %s | %d | %d | %.1f | %d |" % (name, r["requests"], r["failed"],
                                                      100.0 * r["failed"] / max(r["requests"], 1), r["twice"]))
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--upstream":
        upstream_main(int(sys.argv[2]), sys.argv[3])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=4)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--only", choices=["portvakt", "nginx", "haproxy"])
    p.add_argument("--write", action="store_true")
    p.add_argument("--baseline", default="", help="another portvakt binary to measure beside")
    p.add_argument("--baseline-name", default="", help="what the baseline is (e.g. its revision)")
    a = p.parse_args()
    nofile = run.raise_nofile()
    pin = run.pinning(1)
    res = {}
    for name in ["portvakt", "nginx", "haproxy"]:
        if a.only and name != a.only:
            continue
        res[name] = one(name, a.seconds, a.connections, nofile, pin)
        if name == "portvakt" and a.baseline:
            before = "portvakt before (%s)" % (a.baseline_name or "baseline")
            res[before] = one("before", a.seconds, a.connections, nofile, pin, os.path.abspath(a.baseline))
    text = markdown(res, a.seconds, a.connections)
    print(text)
    if a.write:
        with open(RESULT, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
