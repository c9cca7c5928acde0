"""Lingering close (lingering_close, lingering_time, lingering_timeout), as
NGINX does it: a connection closed after an answer while the client is
still sending a body nobody reads is half-closed and drained, not closed,
so the client can send all it meant to and then read the whole answer.
Without it the unread bytes make the kernel reset the connection, and the
reset can destroy the answer before the client reads it (with
`lingering_close off` that is the old behaviour, which these tests leave
unasserted as it depends on timing). Each case runs on NGINX and then on
portvakt with the same config."""

import signal
import socket
import subprocess

import pytest

from conftest import NGINX, PORTVAKT, fd_links, free_port, wait_for

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        client_max_body_size 1k;
        lingering_timeout 20s;
        location /small { return 200 "small\\n"; }
        location /ret { client_max_body_size 0; return 200 "ret\\n"; }
        location /idle { lingering_timeout 1s; lingering_time 60s; return 200 "idle\\n"; }
        location /long { lingering_timeout 60s; lingering_time 60s; return 200 "long\\n"; }
        location /always { lingering_close always; return 200 "always\\n"; }
    }
}
"""

# far more than the socket buffers on both sides can hold
BODY = 8 * 1024 * 1024
CHUNK = 64 * 1024


def socket_fds(pid):
    return sum(1 for t in fd_links(pid).values() if t.startswith("socket:"))


def read_answer(s):
    """Everything the server sends until it closes its side."""
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            return data
        data += got


def read_page(s):
    """The error page answered, read to its end without waiting for the
    server to close its side (NGINX keeps it open while it discards a
    body; portvakt half-closes at once)."""
    data = b""
    while b"</html>" not in data:
        got = s.recv(65536)
        if not got:
            break
        data += got
    return data


def open_post(port, path, length=BODY):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
               % (path, length)).encode())
    return s


def send_body_then_read(port, path):
    """Send the head and a first part of the body, wait for the answer to
    be sent (it comes before the body is read), send the rest of a body
    much larger than the socket buffers, then read. Returns (whether all
    the body went out, the answer)."""
    s = open_post(port, path)
    try:
        s.sendall(b"x" * CHUNK)
        # the answer is out before the rest of the body is sent
        s.settimeout(15)
        first = s.recv(65536, socket.MSG_PEEK)
        assert first, "no answer"
        sent_all = True
        try:
            left = BODY - CHUNK
            while left:
                n = min(left, CHUNK)
                s.sendall(b"x" * n)
                left -= n
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            sent_all = False
        try:
            answer = read_answer(s)
        except ConnectionResetError:
            answer = b""
        return sent_all, answer
    finally:
        s.close()


def on_both(nginx, portvakt, fn):
    out = []
    for start in (nginx, portvakt):
        srv = start(CONF, GW=free_port())
        try:
            out.append(fn(srv))
        finally:
            srv.stop()
    return out


@pytest.mark.parametrize("path,status,text", [
    ("/small", 413, b"413 Request Entity Too Large"),  # client_max_body_size
    ("/ret", 200, b"ret\n"),                           # return, body never read
    ("/always", 413, b"413 Request Entity Too Large"),
])
def test_answer_survives_unread_body(nginx, portvakt, path, status, text):
    results = on_both(nginx, portvakt, lambda srv: send_body_then_read(srv.port, path))
    for name, (sent_all, answer) in zip(("nginx", "portvakt"), results):
        assert sent_all, "%s: the body could not be sent whole (connection reset)" % name
        assert answer.startswith(b"HTTP/1.1 %d " % status), (name, answer[:200])
        assert text in answer, (name, answer[:400])


def test_lingering_timeout_closes_idle(nginx, portvakt):
    """A lingering client that sends nothing more is closed after
    lingering_timeout (1s here), well before lingering_time (60s)."""

    def run(srv):
        base = socket_fds(srv.pid)
        s = open_post(srv.port, "/idle", 1 << 20)
        try:
            s.sendall(b"x" * CHUNK)
            answer = read_answer(s)  # the server's side ends with the answer
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            wait_for(lambda: socket_fds(srv.pid) <= base, timeout=15,
                     what="the lingering connection to be closed")
            return True
        finally:
            s.close()

    assert on_both(nginx, portvakt, run) == [True, True]


def test_stop_closes_lingering(nginx, portvakt):
    """A graceful stop closes a lingering connection at once (NGINX closes
    its idle and lingering connections when it quits): the server exits
    although lingering_time and lingering_timeout are 60s."""
    for start, sig in ((nginx, signal.SIGQUIT), (portvakt, signal.SIGTERM)):
        srv = start(CONF, GW=free_port())
        base = socket_fds(srv.pid)
        s = open_post(srv.port, "/long", 1 << 20)
        try:
            s.sendall(b"x" * CHUNK)
            answer = read_page(s)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            # lingering: the connection is still held by the server.
            # NGINX lingers only when it has not read all the client sent
            # yet (a timing it does not promise); without it, its half of
            # the comparison says nothing and is passed over
            if socket_fds(srv.pid) <= base and srv.name == "nginx":
                continue
            assert socket_fds(srv.pid) > base
            srv.proc.send_signal(sig)
            srv.proc.wait(15)
            assert srv.proc.returncode == 0, (srv.name, srv.proc.returncode, srv.stderr())
        finally:
            s.close()
            srv.stop()


@pytest.mark.parametrize("line,msg", [
    ("lingering_close maybe;", 'invalid value "maybe"'),
    ("lingering_time soon;", '"lingering_time" directive invalid value'),
    ("lingering_timeout 1s 2s;", 'invalid number of arguments in "lingering_timeout" directive'),
    ("lingering_close on; lingering_close off;", '"lingering_close" directive is duplicate'),
])
def test_directive_errors(tmp_path, line, msg):
    """-t refuses bad values with NGINX's message and FILE:LINE."""
    p = tmp_path / "bad.conf"
    p.write_text("error_log stderr;\npid %s/n.pid;\nevents {}\nhttp {\n"
                 "    server { listen 127.0.0.1:1; %s }\n}\n" % (tmp_path, line))
    want = "%s in %s:5" % (msg, p)
    for argv in ([NGINX, "-t", "-p", str(tmp_path), "-c", str(p)], [PORTVAKT, "-t", "-c", str(p)]):
        r = subprocess.run(argv, capture_output=True, text=True)
        assert r.returncode != 0, argv[0]
        assert want in r.stderr, (argv[0], r.stderr)
