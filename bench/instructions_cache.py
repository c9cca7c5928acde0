"""Instructions per request for a 1 KiB static file and for a cache hit of
the same file, counted by callgrind: portvakt builds beside NGINX, one
worker each, sequential keepalive requests (see instructions.py for the
method: two runs, the difference divided by the difference of their
lengths). The origin behind the cache is an NGINX outside callgrind.

    /usr/bin/python3 bench/instructions_cache.py LABEL=BINARY ... [nginx=/usr/sbin/nginx]

A label named nginx runs the binary as NGINX. Results go to
build/bench/instructions-cache/instructions-cache.md.
"""

import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import instructions as ins  # noqa: E402
import procs  # noqa: E402

SCRATCH = os.path.join(ins.ROOT, "build", "bench", "instructions-cache")
TARGETS = (("static file", "/s/f.html"), ("cache hit", "/c/f.html"))


def conf(kind, port, origin, wd):
    main = "worker_processes 1;\nerror_log %s/error.log warn;\n" % wd
    http = "access_log off;\nkeepalive_requests 100000;\n"
    if kind == "nginx":
        main += "daemon off;\nmaster_process off;\npid %s/nginx.pid;\n" % wd
        http += "".join("%s_temp_path %s/%s;\n" % (t, wd, t)
                        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (main + "events { worker_connections 1024; }\nhttp {\n" + http
            + "proxy_cache_path %s/cache keys_zone=z:1m;\n" % wd
            + "server {\nlisten 127.0.0.1:%d;\nroot %s/html;\nlocation /s/ { }\n" % (port, SCRATCH)
            + "location /c/ { proxy_pass http://127.0.0.1:%d/s/; proxy_cache z; proxy_cache_valid 200 1h; }\n"
            % origin + "}\n}\n")


def drive(port, target, n):
    req = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % target).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        buf = b""
        for _ in range(n):
            s.sendall(req)
            status, buf = ins.read_response(s, buf)
            if status != 200:
                raise RuntimeError("status %d" % status)


def measure(label, kind, binary, target, origin):
    totals = []
    for n in (ins.SHORT, ins.LONG):
        wd = os.path.join(SCRATCH, "%s-%s-%d" % (label, target.strip("/").replace("/", "_"), n))
        os.makedirs(wd, exist_ok=True)
        port = procs.free_port()
        path = os.path.join(wd, "gateway.conf")
        with open(path, "w") as f:
            f.write(conf(kind, port, origin, wd))
        out = os.path.join(wd, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary, "-c", path]
        if kind == "nginx":
            argv += ["-p", wd, "-e", "stderr"]
        with open(os.path.join(wd, "stderr"), "wb") as err:
            proc = subprocess.Popen(argv, cwd=wd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            ins.wait_port(port, proc)
            drive(port, target, 3)  # the entry stored, first answers out of the way
            time.sleep(0.5)
            drive(port, target, n)
        finally:
            ins.stop(proc, port)
        totals.append(ins.total_instructions(out))
    return (totals[1] - totals[0]) / (ins.LONG - ins.SHORT)


def main(args):
    os.makedirs(os.path.join(SCRATCH, "html", "s"), exist_ok=True)
    with open(os.path.join(SCRATCH, "html", "s", "f.html"), "wb") as f:
        f.write(b"x" * 1024)
    owd = os.path.join(SCRATCH, "origin")
    os.makedirs(owd, exist_ok=True)
    oport = procs.free_port()
    with open(os.path.join(owd, "origin.conf"), "w") as f:
        f.write("daemon off; master_process off; pid %s/o.pid; error_log %s/e.log;\nevents {}\n"
                "http { access_log off; server { listen 127.0.0.1:%d; root %s/html; } }\n"
                % (owd, owd, oport, SCRATCH))
    origin = subprocess.Popen([ins.NGINX, "-p", owd, "-c", os.path.join(owd, "origin.conf")],
                              stderr=subprocess.DEVNULL)
    rows = []
    try:
        ins.wait_port(oport, origin)
        for a in args:
            label, binary = a.split("=", 1)
            binary = os.path.abspath(binary)
            kind = "nginx" if label == "nginx" else "portvakt"
            rows.append([label] + [measure(label, kind, binary, t, oport) for _, t in TARGETS])
    finally:
        origin.terminate()
        origin.wait()
    text = "| build | %s | %s | hit / static |\n| --- | ---: | ---: | ---: |\n" % tuple(n for n, _ in TARGETS)
    text += "".join("| %s | %.0f | %.0f | %.2f |\n" % (r[0], r[1], r[2], r[2] / r[1]) for r in rows)
    with open(os.path.join(SCRATCH, "instructions-cache.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main(sys.argv[1:] or ["portvakt=" + os.path.join(ins.ROOT, "build", "portvakt"), "nginx=" + ins.NGINX])
