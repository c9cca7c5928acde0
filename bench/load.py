"""Load and counters: wrk runs, idle client connections, upstream accepts."""

import os
import select
import socket
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "latency.lua")

# IP_BIND_ADDRESS_NO_PORT (linux/in.h): bind a source address but pick the
# port at connect(), so each source address has the whole port range per
# destination.
IP_BIND_ADDRESS_NO_PORT = 24


class WrkError(RuntimeError):
    """wrk failed or printed no figures; the message carries its output."""


def run_wrk(url, connections, threads, seconds, cpus, headers=()):
    """One wrk run; returns the figures latency.lua printed (requests,
    duration_us, p50_us ... p99.9_us, errors_*) and wrk's own output.
    headers ("Name: value") are sent with every request."""
    argv = ["taskset", "-c", cpus, "wrk", "-t%d" % threads, "-c%d" % connections,
            "-d%ds" % seconds, "--timeout", "5s", "-s", LUA]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    figures, text = {}, []
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "BENCH":
            figures[parts[1]] = float(parts[2])
        else:
            text.append(line)
    if done.returncode != 0 or "requests" not in figures:
        raise WrkError("wrk exited with %d:\n%s%s"
                       % (done.returncode, done.stdout, done.stderr))
    figures["errors"] = sum(v for k, v in figures.items() if k.startswith("errors_"))
    figures["output"] = "\n".join(text)   # wrk's own summary, for problem reports
    return figures


def _read_response(sock):
    """Read one HTTP/1.1 response with Content-Length; returns (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the response body")
        body += chunk
    return int(lines[0].split()[1]), body


def request(port, target, source=None, headers=()):
    """Open a keepalive connection, make one GET (with the extra headers)
    and keep the socket open. Returns (socket, status, body)."""
    sock = socket.socket()
    try:
        if source:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        head = "GET %s HTTP/1.1\r\nHost: bench\r\n" % target
        sock.sendall((head + "".join(h + "\r\n" for h in headers) + "\r\n").encode())
        status, body = _read_response(sock)
        return sock, status, body
    except BaseException:
        sock.close()
        raise


def source_addresses(count):
    """Loopback source addresses enough for count connections to one port:
    127.0.0.1 alone when the ephemeral port range holds twice count, else
    127.0.0.1, .2, ... so that no address runs short of ports."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    per_address = max(1, (high - low + 1) // 2)
    n = -(-count // per_address)
    return ["127.0.0.%d" % (i + 1) for i in range(n)] if n > 1 else [None]


def open_idle(port, target, count, headers=()):
    """count idle keepalive connections, each having made one request, made
    one after another (the proxy's listen backlog never overflows).
    Returns (sockets, failures)."""
    sources = source_addresses(count)
    socks, failures = [], 0
    for i in range(count):
        try:
            sock, status, _ = request(port, target, sources[i % len(sources)], headers)
        except OSError:
            failures += 1
            continue
        socks.append(sock)
        if status != 200:
            failures += 1
    return socks, failures


def count_closed(socks):
    """How many of the sockets the peer has closed (readable at EOF, or
    in error), without blocking."""
    poller = select.poll()
    by_fd = {}
    for s in socks:
        poller.register(s, select.POLLIN)
        by_fd[s.fileno()] = s
    closed = 0
    for fd, events in poller.poll(0):
        if events & (select.POLLERR | select.POLLHUP):
            closed += 1
        elif events & select.POLLIN:
            try:
                closed += by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except OSError:
                closed += 1
    return closed


def upstream_accepts(status_port):
    """The upstream NGINX's stub_status `accepts` counter: every connection
    it has accepted, this query's own included."""
    with socket.create_connection(("127.0.0.1", status_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: status\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    lines = data.decode().split("\r\n\r\n", 1)[1].splitlines()
    # "server accepts handled requests" then " A H R"
    return int(lines[2].split()[0])


def time_wait_count(port):
    """TCP sockets in TIME_WAIT with port at either end (/proc/net/tcp)."""
    hexport = "%04X" % port
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "06" and hexport in (fields[1][-4:], fields[2][-4:]):
                n += 1
    return n
