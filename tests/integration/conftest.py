"""Integration test harness for portvakt.

Everything here runs on 127.0.0.0/8 with ports chosen free at run time, and
every process or server a test starts is stopped when the test ends.

Pieces:
  free_port()        a free TCP port on 127.0.0.1
  render()           fill @NAME@ placeholders in a config text
  Gateway            runs build/portvakt -c FILE in the foreground
  Nginx              runs /usr/sbin/nginx on a config made by nginx_conf()
  EchoUpstream       raw-socket HTTP/1.1 upstream that records what it got
  Client / http()    raw-socket client with a small response parser

The `gateway` fixture starts portvakt, or NGINX when PV_TARGET=nginx, so the
suite's expectations can be checked against NGINX 1.22. Tests of behaviour
where portvakt is meant to differ from NGINX (stricter RFC handling, CLI) are
marked `portvakt_only` and skipped in that mode.
"""

import copy
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTVAKT = os.path.abspath(os.environ.get("PORTVAKT", os.path.join(ROOT, "build", "portvakt")))
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
TARGET = os.environ.get("PV_TARGET", "portvakt")
LOOPBACK = "127.0.0.1"

# Seconds a started server gets to accept connections / to stop on SIGTERM.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "portvakt_only(reason): behaviour where portvakt deliberately differs "
        "from NGINX, or portvakt's own CLI; skipped when PV_TARGET=nginx")


def pytest_collection_modifyitems(config, items):
    if TARGET != "nginx":
        return
    for item in items:
        m = item.get_closest_marker("portvakt_only")
        if m is not None:
            why = m.args[0] if m.args else "portvakt-specific"
            item.add_marker(pytest.mark.skip(reason="PV_TARGET=nginx: " + why))


# ---------------------------------------------------------------- ports


_given_ports = set()
_port_lock = threading.Lock()


def free_port(host=LOOPBACK):
    """A TCP port nothing listens on now; never the same one twice per run."""
    with _port_lock:
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            if port not in _given_ports:
                _given_ports.add(port)
                return port
    raise RuntimeError("no free port")


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    """Poll pred() until it returns a truthy value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def render(text, **subs):
    """Replace @NAME@ placeholders; every placeholder must be given."""
    for k, v in subs.items():
        text = text.replace("@" + k + "@", str(v))
    left = re.findall(r"@[A-Z][A-Z0-9_]*@", text)
    if left:
        raise ValueError("unfilled placeholders: %s" % sorted(set(left)))
    return text


def listen_ports(conf_text):
    """TCP ports named by `listen` directives (for waiting until ready)."""
    ports = []
    for d in _directives(conf_text):
        if d[1] != "listen" or not d[4]:
            continue
        p = d[4][0].rsplit(":", 1)[-1]
        if p.isdigit() and int(p) not in ports:
            ports.append(int(p))
    return ports


def port_open(port, host=LOOPBACK):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def fd_links(pid):
    """{fd: what it points to} for a live process's descriptors; one
    closed while they are read is left out."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
    return out


def rss_kb(pid):
    """Resident set size of a process in kB (VmRSS from /proc)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


# ---------------------------------------------------------------- servers


def _die_with_parent():
    """In the child: get SIGKILL if the test process dies, so an aborted run
    leaves no server behind."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Server:
    """A foreground server process with stdout/stderr captured to files."""

    name = "server"

    def __init__(self, workdir, conf_path, ports):
        self.workdir = str(workdir)
        self.conf_path = conf_path
        self.ports = ports
        self.port = ports[0] if ports else None
        self.proc = None
        self.stdout_path = os.path.join(self.workdir, self.name + ".stdout")
        self.stderr_path = os.path.join(self.workdir, self.name + ".stderr")
        self.returncode = None

    def argv(self):
        raise NotImplementedError

    def start(self):
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=self.workdir,
                                         preexec_fn=_die_with_parent)
        finally:
            out.close()
            err.close()
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(self.ports)
        while pending:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                pytest.fail("%s exited with %s before listening:\n%s" % (
                    self.name, self.proc.returncode, self.stderr()), pytrace=False)
            if port_open(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("%s did not listen on %s within %.0fs:\n%s" % (
                    self.name, pending, START_TIMEOUT, self.stderr()), pytrace=False)
            time.sleep(0.02)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop with sig, then SIGKILL after timeout. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def access_log_lines(self):
        return [l for l in self.stdout().splitlines() if l.strip()]

    def wait_access_log(self, n, timeout=5.0):
        """Wait until at least n access log lines were written to stdout."""
        return wait_for(lambda: (len(self.access_log_lines()) >= n
                                 and self.access_log_lines()),
                        timeout, what="%d access log lines" % n)

    def rss_kb(self):
        return rss_kb(self.proc.pid)


class Gateway(_Server):
    """build/portvakt -c FILE, foreground; access log on stdout by default."""

    name = "portvakt"

    def argv(self):
        return [PORTVAKT, "-c", self.conf_path]

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop, then fail the test if a sanitizer reported anything (the
        suite also runs against an ASan+UBSan build: make test-asan)."""
        code = super().stop(sig, timeout)
        err = self.stderr() if os.path.exists(self.stderr_path) else ""
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in err:
                pytest.fail("%s reported:\n%s" % (mark, err[err.index(mark) - 200 if err.index(mark) > 200 else 0:][:6000]),
                            pytrace=False)
        return code

    @classmethod
    def from_text(cls, conf_text, workdir, filename="portvakt.conf"):
        if not os.access(PORTVAKT, os.X_OK):
            pytest.fail("%s is not built (run make)" % PORTVAKT, pytrace=False)
        path = os.path.join(str(workdir), filename)
        with open(path, "w") as f:
            f.write(conf_text)
        return cls(workdir, path, listen_ports(conf_text))


# -- NGINX config generation

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<dq>"(?:\\.|[^"\\])*")
  | (?P<sq>'(?:\\.|[^'\\])*')
  | (?P<punct>[{};])
  | (?P<word>(?:\\.|\$\{[^}]*\}|[^\s{};"'\\])+)
""", re.X | re.S)


def _directives(text):
    """List (context_path, name, start_offset, block_open_end, args) for
    each directive of an NGINX config; context_path is a tuple of enclosing
    block names, e.g. ('http', 'server'); args are the raw argument words."""
    stack = []
    words = []
    start = None
    pos = 0
    out = []
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ValueError("cannot tokenize config at offset %d" % pos)
        kind = m.lastgroup
        pos = m.end()
        if kind in ("ws", "comment"):
            continue
        if kind == "punct":
            p = m.group()
            if p == ";":
                if words:
                    out.append((tuple(stack), words[0], start, None, words[1:]))
                words, start = [], None
            elif p == "{":
                name = words[0] if words else ""
                out.append((tuple(stack), name, start, m.end(), words[1:]))
                stack.append(name)
                words, start = [], None
            else:
                if stack:
                    stack.pop()
                words, start = [], None
            continue
        if not words:
            start = m.start()
        words.append(m.group())
    return out


def nginx_conf(gateway_conf, prefix):
    """Make an NGINX config from a gateway config text, unchanged except for
    what NGINX needs to run in a test: main-context lines (foreground, one
    process, pid and error log in the prefix) and an `events {}` block when
    missing, and inside `http {}` temp paths under the prefix plus an
    access log on stdout when the http level has none (portvakt's default).
    Settings the config already has are never duplicated (NGINX rejects
    duplicates)."""
    ds = _directives(gateway_conf)
    main = {d[1] for d in ds if d[0] == ()}
    http_level = {d[1] for d in ds if d[0] == ("http",)}
    prefix = str(prefix)
    pre = []
    for name, line in (
        ("daemon", "daemon off;"),
        ("master_process", "master_process off;"),
        ("worker_processes", "worker_processes 1;"),
        ("pid", "pid %s/nginx.pid;" % prefix),
        ("error_log", "error_log stderr;"),
    ):
        if name not in main:
            pre.append(line)
    if "events" not in main:
        pre.append("events {}")
    inside = _temp_paths(http_level, prefix)
    if "access_log" not in http_level:
        inside.append("access_log /dev/stdout;")
    return "# test prelude\n" + "\n".join(pre) + "\n" + _into_http(gateway_conf, ds, inside)


def _temp_paths(http_level, prefix):
    """Temp path lines under prefix for those http{} does not set: NGINX
    creates its compiled-in ones (/var/lib/nginx/...) even under -t, which
    an ordinary user cannot."""
    return ["%s %s/%s;" % (name, prefix, name.split("_temp")[0])
            for name in ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
                         "uwsgi_temp_path", "scgi_temp_path")
            if name not in http_level]


def _into_http(text, ds, lines):
    """text with lines put just inside its http{} block, on the same line as
    the brace, so line numbers in messages stay those of text."""
    http = [d for d in ds if d[0] == () and d[1] == "http" and d[3] is not None]
    if not http or not lines:
        return text
    at = http[0][3]
    return text[:at] + " " + " ".join(lines) + text[at:]


def check_conf(path, prefix):
    """`-t` on the config file at path, by portvakt and, when present, by
    NGINX (with -p prefix); {name: (exit code, output)}. NGINX gets the same
    text plus what an ordinary user needs for -t (temp paths and the pid
    file under prefix, an access log it can open), at the same line numbers, and its output
    names the original file."""
    path, prefix = str(path), str(prefix)
    out = {}
    p = subprocess.run([PORTVAKT, "-t", "-c", path], capture_output=True, timeout=10)
    out["portvakt"] = (p.returncode, (p.stdout + p.stderr).decode())
    if os.access(NGINX, os.X_OK):
        with open(path) as f:
            text = f.read()
        ds = _directives(text)
        http_level = {d[1] for d in ds if d[0] == ("http",)}
        copy_path = path + ".nginx"
        inside = _temp_paths(http_level, prefix)
        if "access_log" not in http_level:
            inside.append("access_log /dev/null;")
        copy = _into_http(text, ds, inside)
        if not any(d[0] == () and d[1] == "pid" for d in ds):
            # -t creates the pid file to test it: the compiled-in
            # /run/nginx.pid is root's; same line, so numbers stay
            copy = "pid %s/nginx-t.pid; " % prefix + copy
        with open(copy_path, "w") as f:
            f.write(copy)
        p = subprocess.run([NGINX, "-t", "-p", prefix, "-e", "stderr", "-c", copy_path],
                           capture_output=True, timeout=10)
        out["nginx"] = (p.returncode, (p.stdout + p.stderr).decode().replace(copy_path, path))
    return out


class Nginx(_Server):
    """/usr/sbin/nginx in the foreground, single process, on a config made
    from a gateway config by nginx_conf()."""

    name = "nginx"

    def argv(self):
        return [NGINX, "-p", self.workdir, "-e", "stderr", "-c", self.conf_path]

    @classmethod
    def from_text(cls, conf_text, workdir, filename="nginx.conf"):
        path = os.path.join(str(workdir), filename)
        with open(path, "w") as f:
            f.write(nginx_conf(conf_text, workdir))
        return cls(workdir, path, listen_ports(conf_text))

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        # NGINX's SIGTERM is "fast shutdown", like portvakt's.
        return super().stop(sig, timeout)


def start_server(kind, conf_text, workdir, **subs):
    """Start portvakt or nginx on conf_text with @NAME@ placeholders filled."""
    text = render(conf_text, **subs)
    os.makedirs(str(workdir), exist_ok=True)
    cls = Nginx if kind == "nginx" else Gateway
    return cls.from_text(text, workdir).start()


# ---------------------------------------------------------------- upstream


class Received:
    """One request as the upstream received it."""

    def __init__(self):
        self.method = None
        self.target = None
        self.version = None      # "HTTP/1.1"
        self.headers = []        # [(name, value)] in arrival order, as sent
        self.body = b""          # kept when at most body_keep bytes
        self.body_len = 0
        self.body_sha256 = hashlib.sha256(b"").hexdigest()
        self.chunked = False     # body came with Transfer-Encoding: chunked
        self.trailers = []
        self.raw_head = b""      # request line and header block as received
        self.conn_id = None      # which upstream connection carried it
        self.seq_on_conn = None  # 1 for the first request on that connection
        self.time = None         # time.monotonic() when the head was complete

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has(self, name):
        return self.header(name) is not None

    def names(self):
        return [k.lower() for k, _ in self.headers]

    def as_json(self):
        return {
            "method": self.method, "target": self.target, "version": self.version,
            "headers": [[k, v] for k, v in self.headers],
            "body_len": self.body_len, "body_sha256": self.body_sha256,
            "chunked": self.chunked, "conn_id": self.conn_id,
            "seq_on_conn": self.seq_on_conn,
        }

    def __repr__(self):
        return "<Received %s %s %s conn=%s %r>" % (
            self.method, self.target, self.version, self.conn_id, self.headers)


class Reply:
    """What the upstream answers to one request.

    status/reason/headers/body: the response; Content-Length is added unless
    chunked=True or no_length=True (body then ends at close) or the headers
    already carry one. body_size: send that many generated bytes instead of
    body (streamed, for large responses). close: close the connection after
    the response (adds `Connection: close` unless no_conn_header). delay:
    seconds to wait before answering. hang: never answer (keep the socket
    open until the server stops). reset: close with RST instead of
    answering. raw: send these bytes verbatim instead of a response (then
    close if close=True). interim: bytes sent before the response (e.g. a
    100 Continue)."""

    def __init__(self, status=200, reason=None, headers=None, body=None,
                 chunked=False, close=False, delay=0.0, hang=False, reset=False,
                 raw=None, body_size=None, no_length=False, no_conn_header=False,
                 interim=None, chunk_size=16384):
        self.status = status
        self.reason = reason
        self.headers = list(headers or [])
        self.body = body
        self.chunked = chunked
        self.close = close
        self.delay = delay
        self.hang = hang
        self.reset = reset
        self.raw = raw
        self.body_size = body_size
        self.no_length = no_length
        self.no_conn_header = no_conn_header
        self.interim = interim
        self.chunk_size = chunk_size


REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content",
           301: "Moved Permanently", 302: "Found", 304: "Not Modified",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class _BadRequest(Exception):
    pass


def _fin_arrived(sock):
    """Whether the peer's FIN has arrived on sock: its TCP state is no
    longer ESTABLISHED (a look that never blocks)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1
    except (OSError, ValueError):
        return True


class EchoUpstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 built on raw sockets, so it
    records exactly what arrived: every request (see Received) with the
    connection it came on, and counts connections.

    By default it answers 200 with a JSON echo of the request. Set
    `handler` (callable(Received) -> Reply | None) or `reply` (a Reply used
    for every request) to answer otherwise; both may be changed while it
    runs. idle_close_ms closes a keepalive connection that has been idle
    that long after a response (as servers with short keepalive timeouts
    do). max_requests_per_conn closes after that many responses. Like a
    real server it closes after answering a request that asked for it
    (`Connection: close`, or HTTP/1.0 without keep-alive) unless
    honour_close=False."""

    def __init__(self, host=LOOPBACK, port=0, handler=None, reply=None,
                 idle_close_ms=None, max_requests_per_conn=None,
                 body_keep=1 << 20, honour_close=True):
        self.host = host
        self.handler = handler
        self.reply = reply
        self.idle_close_ms = idle_close_ms
        self.max_requests_per_conn = max_requests_per_conn
        self.body_keep = body_keep
        self.honour_close = honour_close
        self.requests = []          # Received, in completion order
        self.heads = []             # Received as soon as the head arrived
                                    # (body not read yet): for streaming tests
        self.errors = []            # parse errors seen (strings)
        self.connections = 0        # connections accepted
        self.open_connections = 0
        self.max_open = 0           # most connections open at once
        self.max_live = 0           # ... counting one as closed once its FIN has arrived,
                                    # though not yet read (a client that closes one and
                                    # opens another at once has not had both open)
        self.idle_closed = 0        # connections we closed for idleness
        self.peer_closed = 0        # connections the client closed
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._socks = set()
        self._threads = []
        self._stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (host, self.port)
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    # -- inspection

    def wait_requests(self, n, timeout=5.0):
        """Block until n requests have been received; return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("upstream got %d of %d requests" % (
                        len(self.requests), n))
                self._cond.wait(left)
            return list(self.requests)

    def last(self):
        assert self.requests, "upstream received no request"
        return self.requests[-1]

    def conn_ids(self):
        return {r.conn_id for r in self.requests}

    def wait_heads(self, n, timeout=5.0):
        """Block until n request heads have arrived (bodies may be pending)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.heads) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("upstream got %d of %d request heads" % (
                        len(self.heads), n))
                self._cond.wait(left)
            return list(self.heads)

    def clear(self):
        with self._lock:
            self.requests = []
            self.heads = []

    # -- lifecycle

    def stop(self):
        self._stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accepter.join(2)
        for t in list(self._threads):
            t.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- serving

    def _accept_loop(self):
        while not self._stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                cid = self.connections
                self.open_connections += 1
                self.max_open = max(self.max_open, self.open_connections)
                live = 1 + sum(1 for o in self._socks if not _fin_arrived(o))
                self.max_live = max(self.max_live, live)
                self._socks.add(c)
            t = threading.Thread(target=self._serve, args=(c, cid), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, c, cid):
        buf = bytearray()
        seq = 0
        try:
            while not self._stopping:
                idle = seq > 0 and self.idle_close_ms is not None
                c.settimeout(self.idle_close_ms / 1000.0 if idle else 30.0)
                try:
                    req = self._read_request(c, buf, cid)
                except socket.timeout:
                    if idle and not buf:
                        with self._lock:
                            self.idle_closed += 1
                    return
                if req is None:
                    with self._lock:
                        self.peer_closed += 1
                    return
                seq += 1
                req.conn_id = cid
                req.seq_on_conn = seq
                with self._cond:
                    self.requests.append(req)
                    self._cond.notify_all()
                rep = None
                if self.handler is not None:
                    rep = self.handler(req)
                if rep is None:
                    rep = self.reply
                if rep is None:
                    rep = self._echo(req)
                if self.honour_close and self._client_wants_close(req) and not rep.close:
                    rep = copy.copy(rep)
                    rep.close = True
                if not self._respond(c, req, rep):
                    return
                if (self.max_requests_per_conn is not None
                        and seq >= self.max_requests_per_conn):
                    return
        except _BadRequest as e:
            with self._lock:
                self.errors.append(str(e))
            try:
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            except OSError:
                pass
        except OSError:
            pass
        finally:
            with self._lock:
                self.open_connections -= 1
                self._socks.discard(c)
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def _client_wants_close(req):
        tokens = {t.strip().lower() for v in req.header_all("connection")
                  for t in v.split(",")}
        if req.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens

    @staticmethod
    def _echo(req):
        body = json.dumps(req.as_json()).encode() + b"\n"
        return Reply(200, headers=[("Content-Type", "application/json")], body=body)

    def _recv_more(self, c, buf):
        data = c.recv(65536)
        if not data:
            return False
        buf += data
        return True

    def _read_line(self, c, buf):
        while True:
            i = buf.find(b"\n")
            if i >= 0:
                line = bytes(buf[:i + 1])
                del buf[:i + 1]
                return line
            if len(buf) > 1 << 20:
                raise _BadRequest("line too long")
            if not self._recv_more(c, buf):
                raise _BadRequest("eof in line")

    def _read_body(self, c, buf, n, h, keep):
        """Consume n body bytes into hash h, keeping them in `keep` while
        the kept total stays within body_keep (else keep is cleared and
        marked by returning False)."""
        ok = True
        left = n
        while left > 0:
            if not buf:
                c.settimeout(30.0)
                if not self._recv_more(c, buf):
                    raise _BadRequest("eof in body")
            take = min(left, len(buf))
            chunk = bytes(buf[:take])
            del buf[:take]
            h.update(chunk)
            if keep is not None:
                if len(keep) + len(chunk) <= self.body_keep:
                    keep += chunk
                else:
                    ok = False
            left -= take
        return ok

    def _read_request(self, c, buf, cid):
        # Wait for the first byte (an idle timeout here is "idle", not bad).
        while not buf:
            if not self._recv_more(c, buf):
                return None
        c.settimeout(30.0)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                end += 4
                break
            lf = buf.find(b"\n\n")
            if lf >= 0:
                end = lf + 2
                break
            if len(buf) > 1 << 20:
                raise _BadRequest("head too large")
            if not self._recv_more(c, buf):
                if buf:
                    raise _BadRequest("eof in head")
                return None
        head = bytes(buf[:end])
        del buf[:end]
        req = Received()
        req.time = time.monotonic()
        req.raw_head = head
        lines = head.split(b"\n")
        line = lines[0].rstrip(b"\r").decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3:
            raise _BadRequest("bad request line %r" % line)
        req.method, req.target, req.version = parts
        for raw in lines[1:]:
            raw = raw.rstrip(b"\r")
            if not raw:
                continue
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest("header without colon %r" % raw)
            req.headers.append((name, value.strip(" \t")))
        req.conn_id = cid
        with self._cond:
            self.heads.append(req)
            self._cond.notify_all()
        te = ",".join(req.header_all("transfer-encoding")).lower()
        cl = req.header("content-length")
        h = hashlib.sha256()
        keep = bytearray()
        kept_all = True
        total = 0
        if "chunked" in te:
            req.chunked = True
            while True:
                size_line = self._read_line(c, buf).rstrip(b"\r\n")
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("bad chunk size %r" % size_line)
                if size == 0:
                    break
                kept_all &= self._read_body(c, buf, size, h, keep if kept_all else None)
                total += size
                if self._read_line(c, buf).strip():
                    raise _BadRequest("no CRLF after chunk data")
            while True:
                tl = self._read_line(c, buf).rstrip(b"\r\n")
                if not tl:
                    break
                n, _, v = tl.decode("latin-1").partition(":")
                req.trailers.append((n, v.strip()))
        elif cl is not None:
            total = int(cl)
            kept_all = self._read_body(c, buf, total, h, keep)
        req.body_len = total
        req.body = bytes(keep) if kept_all else b""
        req.body_sha256 = h.hexdigest()
        return req

    def _respond(self, c, req, rep):
        """Send rep; return False when the connection must end."""
        if rep.delay:
            time.sleep(rep.delay)
        if rep.hang:
            while not self._stopping:
                time.sleep(0.05)
            return False
        if rep.reset:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if rep.interim:
            c.sendall(rep.interim)
        if rep.raw is not None:
            c.sendall(rep.raw)
            return not rep.close
        head_only = req.method == "HEAD" or rep.status in (204, 304) or rep.status < 200
        body = rep.body if rep.body is not None else b""
        if isinstance(body, str):
            body = body.encode()
        names = {k.lower() for k, _ in rep.headers}
        reason = rep.reason or REASONS.get(rep.status, "Status")
        lines = ["HTTP/1.1 %d %s" % (rep.status, reason)]
        lines += ["%s: %s" % kv for kv in rep.headers]
        size = rep.body_size if rep.body_size is not None else len(body)
        if rep.chunked:
            if "transfer-encoding" not in names:
                lines.append("Transfer-Encoding: chunked")
        elif not rep.no_length and "content-length" not in names \
                and rep.status not in (204, 304) and rep.status >= 200:
            lines.append("Content-Length: %d" % size)
        if rep.close and not rep.no_conn_header and "connection" not in names:
            lines.append("Connection: close")
        c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            if rep.body_size is not None:
                self._send_generated(c, rep.body_size, rep.chunked, rep.chunk_size)
            elif rep.chunked:
                step = max(1, rep.chunk_size)
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    c.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            else:
                c.sendall(body)
            if rep.chunked:
                c.sendall(b"0\r\n\r\n")
        if rep.close or rep.no_length and not rep.chunked:
            return False
        return True

    @staticmethod
    def _send_generated(c, size, chunked, chunk_size):
        block = gen_bytes(max(chunk_size, 1))
        left = size
        while left > 0:
            part = block[:min(left, len(block))]
            if chunked:
                c.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
            else:
                c.sendall(part)
            left -= len(part)


def gen_bytes(n):
    """n bytes of a repeating, position-revealing pattern."""
    pat = bytes(range(33, 127))
    return (pat * (n // len(pat) + 1))[:n]


def gen_sha256(n, block=16384):
    """sha256 of the first n bytes of the stream EchoUpstream generates with
    body_size=n and the given chunk_size (the pattern restarts per block)."""
    h = hashlib.sha256()
    b = gen_bytes(block)
    left = n
    while left > 0:
        part = b[:min(left, len(b))]
        h.update(part)
        left -= len(part)
    return h.hexdigest()


# ---------------------------------------------------------------- client


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []
        self.body = b""
        self.body_len = 0
        self.chunked = False
        self.raw_head = b""
        self.sha256 = None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %s %r %r>" % (self.status, self.reason, self.headers,
                                           self.body[:200])


class Closed(Exception):
    """The server closed the connection before a complete response."""


class BadResponse(Exception):
    """The bytes received are not an HTTP/1.x response."""


class Client:
    """A raw client connection: send any bytes, read responses."""

    def __init__(self, port, host=LOOPBACK, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def request(self, method="GET", target="/", headers=None, body=None,
                host="localhost", version="HTTP/1.1"):
        """Send one request; Host is added unless host=None or given in
        headers; Content-Length is added for a body unless given."""
        headers = list(headers or [])
        names = {k.lower() for k, _ in headers}
        if host is not None and "host" not in names:
            headers.insert(0, ("Host", host))
        if isinstance(body, str):
            body = body.encode()
        if body is not None and "content-length" not in names \
                and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(body))))
        head = "%s %s %s\r\n" % (method, target, version)
        head += "".join("%s: %s\r\n" % kv for kv in headers) + "\r\n"
        self.send(head.encode("latin-1") + (body or b""))

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if not self._fill():
                raise Closed("closed in a line")

    def _take(self, n, sink):
        while n > 0:
            if not self.buf and not self._fill():
                raise Closed("closed with %d body bytes missing" % n)
            t = min(n, len(self.buf))
            sink(bytes(self.buf[:t]))
            del self.buf[:t]
            n -= t

    def read_response(self, method="GET", interim=False, keep_body=64 << 20):
        """Read one response. 1xx responses are skipped unless interim=True.
        Bodies over keep_body bytes are counted and hashed, not kept."""
        while True:
            r = self._read_one(method, keep_body)
            if interim or not (100 <= r.status < 200) or r.status == 101:
                return r

    def _read_one(self, method, keep_body):
        r = Response()
        # The status line; tolerate nothing before it.
        while not self.buf:
            if not self._fill():
                raise Closed("closed before a response")
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                end += 4
                break
            if not self._fill():
                raise Closed("closed in a response head: %r" % bytes(self.buf[:200]))
        head = bytes(self.buf[:end])
        del self.buf[:end]
        r.raw_head = head
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise BadResponse("not an HTTP response: %r" % head[:200])
        r.version = parts[0]
        r.status = int(parts[1])
        r.reason = parts[2] if len(parts) > 2 else ""
        for l in lines[1:]:
            if not l:
                continue
            k, _, v = l.partition(":")
            r.headers.append((k, v.strip()))
        h = hashlib.sha256()
        kept = bytearray()
        total = [0]

        def sink(b):
            h.update(b)
            total[0] += len(b)
            if len(kept) + len(b) <= keep_body:
                kept.extend(b)

        no_body = method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if no_body:
            pass
        elif "chunked" in te:
            r.chunked = True
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line().strip():
                        pass
                    break
                self._take(size, sink)
                if self._line().strip():
                    raise AssertionError("bad chunk terminator")
        elif cl is not None:
            self._take(int(cl), sink)
        else:
            while True:
                if self.buf:
                    sink(bytes(self.buf))
                    self.buf.clear()
                if not self._fill():
                    break
        r.body = bytes(kept)
        r.body_len = total[0]
        r.sha256 = h.hexdigest()
        return r

    def read_to_close(self):
        """Every byte until the server closes: an HTTP/0.9 response, which
        has no head."""
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def closed(self, wait=1.0):
        """True if the server has closed the connection (EOF or reset)
        within `wait` seconds with no further data; False if it stays open.
        Unread bytes make this fail: they are not expected."""
        if self.eof:
            return True
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.eof = True
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            self.buf += data
            raise AssertionError("unexpected data after response: %r" % data[:200])
        self.eof = True
        return True


def http(port, method="GET", target="/", headers=None, body=None, host="localhost",
         version="HTTP/1.1", timeout=5.0):
    """One request on a new connection; returns the Response."""
    with Client(port, timeout=timeout) as c:
        c.request(method, target, headers, body, host=host, version=version)
        return c.read_response(method)


def raw(port, data, method="GET", timeout=5.0):
    """Send raw bytes on a new connection; return (response, closed_after)."""
    with Client(port, timeout=timeout) as c:
        c.send(data)
        r = c.read_response(method)
        return r, c.closed(1.0)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def port():
    """A function returning a fresh free port on 127.0.0.1."""
    return free_port


@pytest.fixture
def upstream():
    """Factory: upstream(**EchoUpstream options) -> started EchoUpstream."""
    made = []

    def make(**kw):
        u = EchoUpstream(**kw)
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


def _server_fixture(tmp_path, kind_fn):
    made = []
    counter = [0]

    def start(conf_text, **subs):
        counter[0] += 1
        kind = kind_fn()
        wd = tmp_path / ("%s%d" % (kind, counter[0]))
        s = start_server(kind, conf_text, wd, **subs)
        made.append(s)
        return s

    return start, made


@pytest.fixture
def gateway(tmp_path):
    """Factory: gateway(conf_text, NAME=value...) starts the server under
    test (portvakt; NGINX when PV_TARGET=nginx) on the rendered config and
    waits until every `listen` port accepts connections."""
    start, made = _server_fixture(tmp_path, lambda: TARGET)
    yield start
    for s in made:
        s.stop()


@pytest.fixture
def portvakt(tmp_path):
    """Factory like `gateway` that always starts portvakt."""
    start, made = _server_fixture(tmp_path, lambda: "portvakt")
    yield start
    for s in made:
        s.stop()


@pytest.fixture
def nginx(tmp_path):
    """Factory like `gateway` that always starts NGINX."""
    start, made = _server_fixture(tmp_path, lambda: "nginx")
    yield start
    for s in made:
        s.stop()


@pytest.fixture
def target_name():
    return TARGET


# ---------------------------------------------------------------- source addresses


class BoundClient(Client):
    """A Client whose connection comes from a chosen 127.0.0.0/8 address,
    so that $remote_addr / $binary_remote_addr differ between clients."""

    def __init__(self, port, source, host=LOOPBACK, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0))
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False


def http_from(source, port, method="GET", target="/", headers=None, body=None,
              host="localhost", timeout=5.0):
    """One request on a new connection from address `source`."""
    with BoundClient(port, source, timeout=timeout) as c:
        c.request(method, target, headers, body, host=host)
        return c.read_response(method)


# ---------------------------------------------------------------- redis


class RedisServer:
    """redis-server on 127.0.0.1 with no persistence; can be stopped and
    started again on the same port (to simulate an outage)."""

    def __init__(self, workdir, port=None, args=(), password=None):
        self.workdir = str(workdir)
        self.port = port or free_port()
        self.args = list(args)       # more redis-server options ("--requirepass", "x", ...)
        self.password = password     # AUTH sent before each command()
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.workdir, "redis%d.log" % self.starts), "wb")
        try:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", LOOPBACK,
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", self.workdir] + self.args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, preexec_fn=_die_with_parent)
        finally:
            log.close()
        wait_for(self.ping, START_TIMEOUT, what="redis-server on port %d" % self.port)
        return self

    def command(self, *args):
        """Send one command (RESP array of bulk strings); return the raw reply."""
        msg = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            msg += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection((LOOPBACK, self.port), timeout=2) as s:
            if self.password is not None:
                p = self.password.encode()
                s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(p), p))
                s.recv(65536)
            s.sendall(msg)
            return s.recv(65536)

    def ping(self):
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    """A started RedisServer (attributes: port, stop(), start())."""
    if not os.access("/usr/bin/redis-server", os.X_OK):
        pytest.skip("redis-server is not installed")
    wd = tmp_path / "redis"
    wd.mkdir()
    r = RedisServer(wd).start()
    yield r
    r.stop()


# ---------------------------------------------------------------- JWT


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def b64url(data):
    """base64url without padding (RFC 7515 section 2)."""
    if isinstance(data, str):
        data = data.encode()
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_uint(n, size=None):
    """A non-negative integer as base64url of its big-endian bytes."""
    size = size or max(1, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(size, "big"))


def openssl(*args, data=None):
    """Run the openssl command line; return its stdout bytes."""
    p = subprocess.run(["openssl"] + [str(a) for a in args], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(map(str, args)),
                                               p.stderr.decode(errors="replace")))
    return p.stdout


def _der_ecdsa_to_raw(der, width):
    """ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs) to JWS's fixed-width
    R || S (RFC 7518 section 3.4)."""

    def length(b, i):
        n = b[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(b[i + 1:i + 1 + k], "big"), i + 1 + k

    assert der[0] == 0x30, "not a DER sequence"
    _, i = length(der, 1)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02, "not a DER integer"
        n, i = length(der, i + 1)
        v = int.from_bytes(der[i:i + n], "big")
        out += v.to_bytes(width, "big")
        i += n
    return out


_SHA = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
_EC_CURVES = {"P-256": ("prime256v1", 32), "P-384": ("secp384r1", 48),
              "P-521": ("secp521r1", 66)}


class JwtKey:
    """A key that signs test tokens and describes itself as a JWK.

    kty "oct" (secret bytes), "RSA" or "EC" (a PEM private key file)."""

    def __init__(self, kty, kid=None, secret=None, pem=None, curve=None, jwk_extra=None):
        self.kty = kty
        self.kid = kid
        self.secret = secret
        self.pem = pem
        self.curve = curve
        self.jwk_extra = dict(jwk_extra or {})

    @classmethod
    def hmac(cls, secret, kid=None, **kw):
        return cls("oct", kid, secret=secret, **kw)

    @classmethod
    def rsa(cls, pem, kid=None, **kw):
        return cls("RSA", kid, pem=str(pem), **kw)

    @classmethod
    def ec(cls, pem, curve, kid=None, **kw):
        return cls("EC", kid, pem=str(pem), curve=curve, **kw)

    @staticmethod
    def generate_rsa(path, bits=2048):
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                "-out", path)
        return str(path)

    @staticmethod
    def generate_ec(path, curve):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:" + _EC_CURVES[curve][0], "-out", path)
        return str(path)

    def jwk(self):
        """The public JWK (the secret itself for "oct")."""
        d = {"kty": self.kty}
        if self.kid is not None:
            d["kid"] = self.kid
        if self.kty == "oct":
            d["k"] = b64url(self.secret)
        elif self.kty == "RSA":
            text = openssl("pkey", "-in", self.pem, "-noout", "-text").decode()
            m = re.search(r"^modulus:\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
            e = re.search(r"^publicExponent: (\d+)", text, re.M)
            n = int(re.sub(r"[\s:]", "", m.group(1)), 16)
            d["n"] = b64url_uint(n)
            d["e"] = b64url_uint(int(e.group(1)))
        else:
            width = _EC_CURVES[self.curve][1]
            der = openssl("pkey", "-in", self.pem, "-pubout", "-outform", "DER")
            point = der[-(1 + 2 * width):]
            assert point[0] == 4, "expected an uncompressed EC point"
            d["crv"] = self.curve
            d["x"] = b64url(point[1:1 + width])
            d["y"] = b64url(point[1 + width:])
        d.update(self.jwk_extra)
        return d

    def public_pem(self):
        return openssl("pkey", "-in", self.pem, "-pubout")

    def sign(self, alg, data):
        """The JWS signature of data with this key for alg."""
        bits = alg[2:]
        if alg.startswith("HS"):
            import hmac as _hmac
            return _hmac.new(self.secret, data, _SHA[bits]).digest()
        args = ["dgst", "-sha" + bits, "-sign", self.pem]
        if alg.startswith("PS"):
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
        sig = openssl(*args, data=data)
        if alg.startswith("ES"):
            sig = _der_ecdsa_to_raw(sig, _EC_CURVES[self.curve][1])
        return sig


def jwks_text(*keys):
    """A JWK Set document holding the keys' public JWKs."""
    return json.dumps({"keys": [k.jwk() for k in keys]}, indent=1)


def make_jwt(claims, key=None, alg="HS256", header=None, kid=True, sign=None):
    """A compact JWS. The header is {"alg", "typ", "kid" (when kid is True
    and the key has one)} updated with `header`; claims and header may
    also be given as raw bytes (for malformed-JSON tests). The signature
    comes from key.sign(alg, ...) or from sign(signing_input) when given;
    with neither, it is empty (alg "none")."""
    if isinstance(header, (bytes, str)):
        h = header if isinstance(header, bytes) else header.encode()
    else:
        hd = {"alg": alg, "typ": "JWT"}
        if kid is True and key is not None and key.kid is not None:
            hd["kid"] = key.kid
        elif isinstance(kid, str):
            hd["kid"] = kid
        hd.update(header or {})
        h = json.dumps(hd, separators=(",", ":")).encode()
    c = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    signing_input = (b64url(h) + "." + b64url(c)).encode()
    if sign is not None:
        sig = sign(signing_input)
    elif key is not None:
        sig = key.sign(alg, signing_input)
    else:
        sig = b""
    return signing_input.decode() + "." + b64url(sig)
