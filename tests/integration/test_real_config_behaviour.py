"""Five real NGINX gateway configs from the corpus kept beside the
project (never copied into it), prepared by its prepare.py, each run by
portvakt and by NGINX in turn with echo upstreams on every upstream
port, and asked the same requests: one for each location prefix the
config names, on each of its plain-HTTP ports, with its first server
name. The answers (status, Location, Content-Type) and what the upstream
was asked (method, target, the fields that carry the client's request)
must be the same for every request a location routes (one that falls to
the default root depends on where each binary was installed). Skipped where the corpus or NGINX is not at hand."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import NGINX, PORTVAKT, EchoUpstream, free_port, http

from test_real_configs import CORPUS

CONFIGS = ["04-penpot.conf", "14-go-zero-looklook.conf", "19-nginx-api-gateway.conf",
           "20-nginx-api-gateway.conf", "24-cvat.conf"]

# what the upstream is asked that says what the client asked for; the
# fields a gateway adds of its own (request ids, traces) are not compared
UPSTREAM_FIELDS = ("host", "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                   "upgrade", "content-length", "user-agent", "accept")


def locations(text):
    """Paths to ask for: each literal location prefix, and each regex
    location that is a plain path."""
    paths = {"/"}
    for m in re.finditer(r"location\s+(=|\^~|~\*?)?\s*(/[^\s{;]*)\s*\{", text):
        kind, p = m.group(1) or "", m.group(2)
        if kind.startswith("~") and not re.fullmatch(r"[/\w.-]+", p):
            continue
        paths.add(p + "x" if p.endswith("/") else p)
    return sorted(paths)


def server_name(text):
    """The first plain name a server_name line gives (else localhost)."""
    for m in re.finditer(r"server_name\s+([^;]+);", text):
        for name in m.group(1).split():
            if name not in ("_", "default", "\"\"") and "*" not in name and not name.startswith("~"):
                return name
    return "localhost"


def wait_listening(port, proc, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError("exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("port %d never listened" % port)


def observe(port, host, path, ups):
    before = {p: len(u.requests) for p, u in ups.items()}
    r = http(port, "GET", path, host=host, headers=[("User-Agent", "corpus-test"), ("Accept", "*/*")])
    seen = {"status": r.status, "location": r.header("Location"), "type": r.header("Content-Type")}
    asked = [(p, u.requests[-1]) for p, u in ups.items() if len(u.requests) > before[p]]
    if asked:
        p, got = asked[-1]
        fields = {k.lower(): v for k, v in got.headers if k.lower() in UPSTREAM_FIELDS}
        seen["upstream"] = (p, got.method, got.target, sorted(fields.items()))
    return seen


def run(argv, cwd, port, host, paths, ups):
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_listening(port, proc)
        return [(path, observe(port, host, path, ups)) for path in paths]
    finally:
        proc.send_signal(signal.SIGINT if argv[0] == PORTVAKT else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("behaviour")
    # a stretch of ports for the listeners and the upstreams, below the
    # ephemeral range: a port there can be taken at any moment as the
    # local port of an outgoing connection (the upstreams' binds failed so)
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    span = max(low - 11000, 1000)
    base = 10000 + (free_port() % span) // 100 * 100
    subprocess.run([sys.executable, os.path.join(CORPUS, "prepare.py"), str(out),
                    "--listen-base", str(base), "--upstream-base", str(base + 700)],
                   check=True, capture_output=True, timeout=120)
    os.chmod(out, 0o755)
    return out


@pytest.mark.skipif(not CORPUS or not os.access(NGINX, os.X_OK),
                    reason="the corpus of real NGINX configs, or NGINX, is not at hand")
@pytest.mark.parametrize("name", CONFIGS)
def test_answers_as_nginx_does(prepared, name):
    path = prepared / name
    text = path.read_text()
    ports = json.load(open(prepared / "ports.json"))[name]
    plain = [p for orig, p in sorted(ports["listen"].items()) if orig != "443"]
    ups = {}
    try:
        for _, p in sorted(ports["upstream"].items()):
            ups[p] = EchoUpstream(port=p)
        host, paths = server_name(text), locations(text)
        ours = [run([PORTVAKT, "-c", str(path), "-g", "daemon off;"], str(prepared), p, host, paths, ups)
                for p in plain]
        theirs = [run([NGINX, "-c", str(path), "-g", "daemon off;", "-e", "stderr"], str(prepared), p, host,
                      paths, ups) for p in plain]
    finally:
        for u in ups.values():
            u.stop()
    # a path no location proxies falls to the default root, which is
    # where each binary was installed: only the others are compared
    routed = lambda o: "upstream" in o or o["status"] not in (200, 403, 404)
    diffs = [(a[0], a[1], b[1]) for x, y in zip(ours, theirs) for a, b in zip(x, y)
             if (routed(a[1]) or routed(b[1])) and a != b]
    assert any(routed(b[1]) for y in theirs for b in y), "nothing was routed"
    assert not diffs, "\n".join("%s\n  portvakt %r\n  nginx    %r" % d for d in diffs)
