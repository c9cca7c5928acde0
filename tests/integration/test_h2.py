"""HTTP/2 on the client side: h2c with prior knowledge (`listen ... http2`),
the preface looked for under `http2 on`, streams proxied to the HTTP/1.1
upstreams, bodies both ways with flow control, RFC 9113 checks, the known
attacks (each while a second client is served), GOAWAY on a graceful stop,
and comparisons with NGINX: the same h2c config, requests sent one after
another on one connection as curl sends several URLs (h2c and TLS), and
curl's h2c Upgrade answered over HTTP/1.1.

Clients: python3-h2 for protocol cases, hand-made frames (hyperframe,
hpack) for the attacks, and curl --http2-prior-knowledge."""

import signal
import socket
import subprocess
import threading
import time

import pytest

h2 = pytest.importorskip("h2")
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
import hpack  # noqa: E402
from hyperframe import frame as hf  # noqa: E402

from conftest import TARGET, EchoUpstream, Reply, free_port, wait_for  # noqa: E402

pytestmark = pytest.mark.portvakt_only("HTTP/2 tests run against portvakt; "
                                       "test_differential_h2c compares with NGINX")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

CONF = """\
http {
    client_max_body_size 256k;
    send_timeout 2s;
    keepalive_timeout 3s;
    upstream pool { server 127.0.0.1:@UP@; keepalive 8; }
    server {
        listen 127.0.0.1:@GW@ http2;
        http2_max_concurrent_streams 8;
        location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location = /ret { return 200 "returned $server_protocol $host\\n"; }
        location /small/ { client_max_body_size 1k; proxy_pass http://pool; }
        location /big/ { send_timeout 60s; proxy_pass http://pool; }
        location /nobuf/ {
            proxy_request_buffering off;
            proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection "";
        }
    }
    server {
        listen 127.0.0.1:@MIXED@;
        http2 on;
        location / { proxy_pass http://pool; }
    }
    server {
        listen 127.0.0.1:@SHORT@ http2;
        client_header_timeout 1s;
        location / { proxy_pass http://pool; }
    }
}
"""


class H2Client:
    """A python3-h2 client over one socket: requests, and the events that
    came back per stream."""

    def __init__(self, port, settings=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.responses = {}   # stream id -> {"headers": [...], "data": bytes, "ended": bool, "reset": code}
        self.goaway = None
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None, end=True, authority="gw"):
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", method), (":path", path), (":scheme", "http"), (":authority", authority)]
        hs += list(headers)
        self.conn.send_headers(sid, hs, end_stream=(body is None and end))
        self.responses[sid] = {"headers": None, "data": b"", "ended": False, "reset": None}
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        """Send body within the flow-control windows, reading as needed."""
        view = memoryview(body)
        while view:
            win = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if win <= 0:
                self.flush()
                self.pump(lambda: self.conn.local_flow_control_window(sid) > 0 or
                          self.responses[sid]["reset"] is not None)
                if self.responses[sid]["reset"] is not None:
                    return
                continue
            n = min(win, len(view))
            self.conn.send_data(sid, view[:n].tobytes())
            view = view[n:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def pump_once(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("no answer in time")
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return
        for ev in self.conn.receive_data(data):
            r = self.responses.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                r["headers"] = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                r["data"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.flush()

    def pump(self, until, timeout=10.0):
        end = time.monotonic() + timeout
        while not until():
            if self.closed or time.monotonic() > end:
                return False
            self.pump_once()
        return True

    def get(self, path, timeout=10.0, **kw):
        sid = self.request(path, **kw)
        assert self.pump(lambda: self.done(sid), timeout), "stream %d not answered" % sid
        return self.result(sid)

    def done(self, sid):
        r = self.responses[sid]
        return r["ended"] or r["reset"] is not None

    def result(self, sid):
        r = self.responses[sid]
        hs = dict(r["headers"] or [])
        return int(hs.get(":status", 0)), hs, r["data"], r["reset"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def h2gw(portvakt, upstream):
    up = upstream()
    ports = {"GW": free_port(), "MIXED": free_port(), "SHORT": free_port()}
    gw = portvakt(CONF, UP=up.port, **ports)
    return gw, up, ports


def frames_until_close(sock, timeout=10.0):
    """Read frames until the server closes; (types seen, GOAWAY error code)."""
    sock.settimeout(timeout)
    buf = b""
    types, goaway = [], None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            d = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        except socket.timeout:
            break
        if not d:
            break
        buf += d
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            t = buf[3]
            if t == 7:
                goaway = int.from_bytes(buf[13:17], "big")
            types.append(t)
            buf = buf[9 + ln:]
    return types, goaway


def served_meanwhile(port):
    """A second client gets an answer (the worker is not held)."""
    c = H2Client(port)
    try:
        st, _, body, _ = c.get("/ret")
        return st == 200 and body.startswith(b"returned")
    finally:
        c.close()


def raw_conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(PREFACE + hf.SettingsFrame(0).serialize())
    return s


def headers_frame(sid, path="/ret", end_stream=True, enc=None, extra=()):
    enc = enc or hpack.Encoder()
    block = enc.encode([(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "gw")] +
                       list(extra))
    f = hf.HeadersFrame(sid)
    f.data = block
    f.flags.add("END_HEADERS")
    if end_stream:
        f.flags.add("END_STREAM")
    return f.serialize()


# ---------------------------------------------------------------- requests


def test_get_through_proxy(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    st, hs, body, _ = c.get("/a/b?x=1", headers=[("cookie", "a=1"), ("cookie", "b=2"), ("x-thing", "v")])
    c.close()
    assert st == 200
    assert hs["server"] == "portvakt/0.1.0"  # server_tokens on, NGINX's default
    assert "connection" not in hs and "keep-alive" not in hs
    req = up.last()
    assert req.method == "GET" and req.target == "/a/b?x=1"
    assert req.header("cookie") == "a=1; b=2"
    assert req.header("x-thing") == "v"
    line = gw.wait_access_log(1)[-1]
    assert '"GET /a/b?x=1 HTTP/2.0" 200' in line


def test_return_and_server_protocol(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    st, hs, body, _ = c.get("/ret", authority="example.test")
    c.close()
    assert st == 200
    assert body == b"returned HTTP/2.0 example.test\n"
    assert hs["content-length"] == str(len(body))


def test_curl_prior_knowledge(h2gw):
    gw, up, ports = h2gw
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_version} %{http_code}",
                          "http://127.0.0.1:%d/ret" % ports["GW"]], capture_output=True, timeout=20)
    text = out.stdout.decode()
    assert text.endswith("2 200"), text
    assert "returned HTTP/2.0 127.0.0.1" in text


def test_http2_on_serves_both_protocols(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["MIXED"])
    st, _, _, _ = c.get("/over-h2")
    c.close()
    assert st == 200
    out = subprocess.run(["curl", "-s", "--http1.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          "http://127.0.0.1:%d/over-h1" % ports["MIXED"]], capture_output=True, timeout=20)
    assert out.stdout.decode() == "1.1 200"
    assert [r.target for r in up.requests] == ["/over-h2", "/over-h1"]


def test_listen_http2_speaks_only_http2(h2gw):
    gw, up, ports = h2gw
    s = socket.create_connection(("127.0.0.1", ports["GW"]), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    assert not data.startswith(b"HTTP/1.1")
    assert up.requests == []


def test_many_streams_on_one_connection(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    sids = [c.request("/s/%d" % i) for i in range(8)]
    assert c.pump(lambda: all(c.done(s) for s in sids))
    assert all(c.result(s)[0] == 200 for s in sids)
    sids = [c.request("/t/%d" % i) for i in range(8)]
    assert c.pump(lambda: all(c.done(s) for s in sids))
    c.close()
    assert sorted(r.target for r in up.requests) == sorted(["/s/%d" % i for i in range(8)] +
                                                           ["/t/%d" % i for i in range(8)])


def test_request_body_with_length(h2gw):
    gw, up, ports = h2gw
    body = bytes(range(256)) * 800  # 200 KiB: several windows' worth
    c = H2Client(ports["GW"])
    sid = c.request("/upload", method="POST", headers=[("content-length", str(len(body)))], body=b"", end=False)
    c.send_body(sid, body)
    assert c.pump(lambda: c.done(sid))
    c.close()
    assert c.result(sid)[0] == 200
    req = up.last()
    assert req.header("content-length") == str(len(body))
    assert req.body == body


def test_request_body_without_length_read_whole(h2gw):
    """NGINX's default (proxy_request_buffering on): the body is read whole
    and sent with its length; with buffering off it goes chunked."""
    gw, up, ports = h2gw
    body = b"x" * 100000
    c = H2Client(ports["GW"])
    sid = c.request("/nolen", method="POST", body=body)
    assert c.pump(lambda: c.done(sid))
    assert c.result(sid)[0] == 200
    req = up.last()
    assert not req.chunked and req.header("Content-Length") == "100000" and req.body == body
    sid = c.request("/nobuf/nolen", method="POST", body=body)
    assert c.pump(lambda: c.done(sid))
    c.close()
    assert c.result(sid)[0] == 200
    req = up.last()
    assert req.chunked and req.body == body


def test_request_body_end_stream_alone(h2gw):
    """proxy_request_buffering off, no length: an END_STREAM that comes
    alone (an empty DATA frame) after every byte of the body was taken and
    sent on still ends the chunked body upstream (the last chunk used to
    be left out then, and the request waited for ever, about one run in
    ten of the test above)."""
    gw, up, ports = h2gw
    body = b"y" * 100000
    c = H2Client(ports["GW"])
    sid = c.request("/nobuf/alone", method="POST", body=body, end=False)
    up.wait_heads(1)
    time.sleep(0.5)  # the gateway sends on what it has; the end comes after
    c.conn.end_stream(sid)
    c.flush()
    assert c.pump(lambda: c.done(sid))
    c.close()
    assert c.result(sid)[0] == 200
    req = up.last()
    assert req.chunked and req.body == body


def test_body_over_client_max_body_size(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    st, _, _, _ = c.get("/small/x", method="POST", headers=[("content-length", "5000")], body=b"y" * 5000)
    assert st == 413
    sid = c.request("/small/y", method="POST", body=b"z" * 5000)
    assert c.pump(lambda: c.done(sid))
    assert c.result(sid)[0] == 413
    st, _, _, _ = c.get("/ret")  # the connection goes on
    c.close()
    assert st == 200
    assert up.requests == []


def test_content_length_mismatch_resets_stream(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    c.conn.config.validate_outbound_headers = False
    sid = c.request("/cl", method="POST", headers=[("content-length", "10")], body=b"abc")
    assert c.pump(lambda: c.done(sid))
    assert c.responses[sid]["reset"] == 1  # PROTOCOL_ERROR (RFC 9113 8.1.1)
    st, _, _, _ = c.get("/ret")
    c.close()
    assert st == 200


def test_large_response_with_small_window(h2gw):
    # Some 1,500 window updates: slow on a loaded machine, so a generous
    # wait, and a send_timeout a stalled client process cannot reach.
    gw, up, ports = h2gw
    up.reply = Reply(200, body_size=3 * 1024 * 1024)
    c = H2Client(ports["GW"], settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4096}, timeout=60)
    st, hs, body, _ = c.get("/big/", timeout=300)
    c.close()
    assert st == 200
    assert len(body) == 3 * 1024 * 1024
    assert hs["content-length"] == str(3 * 1024 * 1024)


def test_chunked_upstream_response(h2gw):
    gw, up, ports = h2gw
    up.reply = Reply(200, body=b"0123456789" * 5000, chunked=True, chunk_size=999)
    c = H2Client(ports["GW"])
    st, hs, body, _ = c.get("/chunked")
    c.close()
    assert st == 200 and body == b"0123456789" * 5000
    assert "transfer-encoding" not in hs and "content-length" not in hs


def test_head_and_204(h2gw):
    gw, up, ports = h2gw
    up.handler = lambda req: Reply(204) if req.target == "/nc" else Reply(200, body=b"abc")
    c = H2Client(ports["GW"])
    st, hs, body, _ = c.get("/h", method="HEAD")
    assert st == 200 and body == b"" and hs["content-length"] == "3"
    st, hs, body, _ = c.get("/nc")
    c.close()
    assert st == 204 and body == b""


# ---------------------------------------------------------------- RFC 9113 8.3


def _raw_request(port, fields, end_stream=True):
    """Send one HEADERS with these fields; the frame types that came back
    on stream 1, and the RST_STREAM code if any."""
    s = raw_conn(port)
    enc = hpack.Encoder()
    f = hf.HeadersFrame(1)
    f.data = enc.encode(fields)
    f.flags.add("END_HEADERS")
    if end_stream:
        f.flags.add("END_STREAM")
    s.sendall(f.serialize())
    s.settimeout(5)
    buf, rst, status = b"", None, None
    end = time.monotonic() + 5
    while time.monotonic() < end and rst is None and status is None:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            t, sid, payload = buf[3], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + ln]
            if sid == 1 and t == 3:
                rst = int.from_bytes(payload[:4], "big")
            if sid == 1 and t == 1:
                status = hpack.Decoder().decode(payload)[0][1]
            buf = buf[9 + ln:]
    s.close()
    return rst, status


@pytest.mark.parametrize("fields", [
    [(":method", "GET"), (":scheme", "http"), (":authority", "gw")],                       # no :path
    [(":method", "GET"), (":path", "/"), (":authority", "gw")],                            # no :scheme
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":path", "/again")],         # twice
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), ("x", "1"), (":authority", "gw")],  # after a field
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":bogus", "1")],             # unknown
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), ("connection", "close")],     # connection-specific
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), ("te", "gzip")],              # TE other than trailers
    [(":method", "GET"), (":path", "noslash"), (":scheme", "http")],                        # not origin-form
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "u@gw")],      # userinfo
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "gw"), ("host", "other")],
    [(":method", "GET"), (":path", "/"), (":scheme", "http"), ("Upper", "1")],              # uppercase name
])
def test_malformed_request_is_reset(h2gw, fields):
    gw, up, ports = h2gw
    rst, status = _raw_request(ports["GW"], fields)
    assert rst == 1, (rst, status)  # PROTOCOL_ERROR
    assert up.requests == []
    assert served_meanwhile(ports["GW"])


def test_host_matching_authority_is_fine(h2gw):
    gw, up, ports = h2gw
    rst, status = _raw_request(ports["GW"], [(":method", "GET"), (":path", "/ok"), (":scheme", "http"),
                                             (":authority", "gw"), ("host", "gw")])
    assert status == "200" and rst in (None, 0)


# ---------------------------------------------------------------- attacks


def test_rapid_reset_ends_in_goaway(h2gw):
    gw, up, ports = h2gw
    up.reply = Reply(200, body=b"slow", delay=0.5)
    s = raw_conn(ports["GW"])
    enc = hpack.Encoder()
    out = []
    for i in range(3000):
        sid = 2 * i + 1
        out.append(headers_frame(sid, path="/rr", enc=enc))
        out.append(hf.RstStreamFrame(sid, error_code=8).serialize())
    try:
        s.sendall(b"".join(out))
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert served_meanwhile(ports["GW"])
    types, goaway = frames_until_close(s)
    s.close()
    assert goaway == 0xb  # ENHANCE_YOUR_CALM
    assert len(up.requests) < 3000


def test_continuation_flood(h2gw):
    gw, up, ports = h2gw
    s = raw_conn(ports["GW"])
    enc = hpack.Encoder()
    f = hf.HeadersFrame(1)
    f.data = enc.encode([(":method", "GET"), (":path", "/"), (":scheme", "http")])
    out = [f.serialize()]
    for i in range(200):
        c = hf.ContinuationFrame(1)
        c.data = enc.encode([("x-pad-%d" % i, "v")])
        out.append(c.serialize())
    try:
        s.sendall(b"".join(out))
    except (BrokenPipeError, ConnectionResetError):
        pass
    types, goaway = frames_until_close(s)
    s.close()
    assert goaway is not None and goaway != 0
    assert served_meanwhile(ports["GW"])


@pytest.mark.parametrize("kind", ["ping", "settings", "empty_data", "priority"])
def test_control_frame_floods(h2gw, kind):
    gw, up, ports = h2gw
    s = raw_conn(ports["GW"])
    if kind == "empty_data":
        s.sendall(headers_frame(1, path="/flood", end_stream=False))
    one = {
        "ping": lambda i: hf.PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize(),
        "settings": lambda i: hf.SettingsFrame(0, settings={4: 65535}).serialize(),
        "empty_data": lambda i: hf.DataFrame(1, data=b"").serialize(),
        "priority": lambda i: hf.PriorityFrame(3 + 2 * (i % 50), depends_on=0, stream_weight=16).serialize(),
    }[kind]
    sent = 0
    try:
        for _ in range(10):
            s.sendall(b"".join(one(i) for i in range(sent, sent + 500)))
            sent += 500
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert served_meanwhile(ports["GW"])
    types, goaway = frames_until_close(s)
    s.close()
    assert goaway == 0xb, (kind, goaway)


def test_hpack_bomb_gets_431_or_reset(h2gw):
    gw, up, ports = h2gw
    s = raw_conn(ports["GW"])
    enc = hpack.Encoder()
    big = "b" * 4000
    fields = [(":method", "GET"), (":path", "/bomb"), (":scheme", "http"), (":authority", "gw")]
    # one 4000-byte entry in the dynamic table, then referenced again and again
    block = enc.encode(fields + [("x-bomb", big)] * 60)
    assert len(block) < 5000
    f = hf.HeadersFrame(1)
    f.data = block
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    s.sendall(f.serialize())
    buf = b""
    s.settimeout(5)
    status, rst = None, None
    end = time.monotonic() + 5
    while time.monotonic() < end and status is None and rst is None:
        d = s.recv(65536)
        if not d:
            break
        buf += d
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            t, payload = buf[3], buf[9:9 + ln]
            if t == 1:
                status = hpack.Decoder().decode(payload)[0][1]
            if t == 3:
                rst = int.from_bytes(payload[:4], "big")
            buf = buf[9 + ln:]
    s.close()
    assert status == "431" or rst is not None
    assert up.requests == []
    assert served_meanwhile(ports["GW"])


def test_header_list_over_limit_is_431(h2gw):
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    st, _, _, _ = c.get("/lots", headers=[("x-f%d" % i, "v" * 1000) for i in range(40)])
    c.close()
    assert st == 431
    assert up.requests == []


def test_zero_window_stall_is_timed_out(h2gw):
    gw, up, ports = h2gw
    up.reply = Reply(200, body_size=200000)
    c = H2Client(ports["GW"], settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    sid = c.request("/stall")
    # the head arrives, no body can; send_timeout (2s) resets the stream,
    # then keepalive_timeout (3s) closes the idle connection
    assert c.pump(lambda: c.responses[sid]["headers"] is not None)
    assert served_meanwhile(ports["GW"])
    assert c.pump(lambda: c.responses[sid]["reset"] is not None, timeout=10)
    assert c.responses[sid]["reset"] == 1  # PROTOCOL_ERROR, as NGINX (a stream that timed out)
    assert c.pump(lambda: False, timeout=10) is False and (c.closed or c.goaway is not None)
    c.close()


def test_more_streams_than_allowed_are_refused(h2gw):
    # The upstream holds every request until the gate opens: the 12
    # streams over http2_max_concurrent_streams 8 are refused while the 8
    # are in flight, and the 8 then finish.
    gw, up, ports = h2gw
    gate = threading.Event()

    def held(req):
        gate.wait(60)
        return Reply(200, body=b"late")

    up.handler = held
    s = raw_conn(ports["GW"])
    enc = hpack.Encoder()
    s.sendall(b"".join(headers_frame(2 * i + 1, path="/many", enc=enc) for i in range(20)))
    buf, rst, ok = b"", 0, 0
    s.settimeout(30)
    try:
        while rst + ok < 20:
            if rst == 12 and not gate.is_set():
                assert ok == 0
                up.wait_heads(8, timeout=30)
                gate.set()
            d = s.recv(65536)
            if not d:
                break
            buf += d
            while len(buf) >= 9:
                ln = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + ln:
                    break
                t, flags = buf[3], buf[4]
                if t == 3:
                    rst += 1
                if t in (0, 1) and flags & 1:
                    ok += 1
                buf = buf[9 + ln:]
    finally:
        gate.set()
        s.close()
    assert ok == 8 and rst == 12, (ok, rst)  # http2_max_concurrent_streams 8
    assert len(up.heads) == 8


def test_idle_preface_times_out(h2gw):
    gw, up, ports = h2gw
    # closed (possibly after a SETTINGS) by client_header_timeout, 1 s
    # there: the 30 s wait would otherwise end in socket.timeout
    s = socket.create_connection(("127.0.0.1", ports["SHORT"]), timeout=30)
    s.sendall(PREFACE[:10])
    try:
        while True:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                break
            if not d:
                break
            assert not d.startswith(b"HTTP/"), d
    finally:
        s.close()
    assert up.requests == []


# ---------------------------------------------------------------- stop


@pytest.mark.parametrize("sig", ["SIGQUIT", "SIGHUP"])
def test_stop_and_reload_send_goaway_and_finish_streams(h2gw, sig):
    # The upstream holds the answer until the GOAWAY has come.
    gw, up, ports = h2gw
    gate = threading.Event()

    def held(req):
        gate.wait(60)
        return Reply(200, body=b"finished")

    up.handler = held
    s = raw_conn(ports["GW"])
    s.sendall(headers_frame(1, path="/slow"))
    up.wait_heads(1)
    gw.proc.send_signal(getattr(signal, sig))
    s.settimeout(30)
    buf, goaway, body, ended, status = b"", None, b"", False, None
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            gate.set()
            raise
        if not d:
            break
        buf += d
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            t, flags, sid, payload = buf[3], buf[4], int.from_bytes(buf[5:9], "big"), buf[9:9 + ln]
            if t == 7:
                goaway = (int.from_bytes(payload[:4], "big"), int.from_bytes(payload[4:8], "big"))
                gate.set()
            if sid == 1 and t == 1:
                assert goaway is not None, "the answer came before the GOAWAY"
                status = hpack.Decoder().decode(payload)[0][1]
            if sid == 1 and t == 0:
                body += payload
            if sid == 1 and flags & 1:
                ended = True
            buf = buf[9 + ln:]
    s.close()
    assert goaway == (1, 0)  # last stream 1, NO_ERROR: sent before the answer
    assert status == "200" and body == b"finished" and ended
    if sig == "SIGQUIT":
        assert gw.proc.wait(timeout=10) == 0
    else:
        assert served_meanwhile(ports["GW"])  # new connections after the reload


# ---------------------------------------------------------------- NGINX


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_differential_h2c(portvakt, nginx, tmp_path):
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        location / { proxy_pass http://127.0.0.1:@UP@; proxy_set_header X-Proto $server_protocol; }
        location = /ret { return 200 "r $request_method $uri $server_protocol\\n"; }
        location /gone/ { return 410; }
    }
}
"""
    results = []
    for start in (portvakt, nginx):
        up = EchoUpstream(handler=lambda req: Reply(201, headers=[("X-Up", "1")], body=b"made\n"))
        port = free_port()
        srv = start(conf, GW=port, UP=up.port)
        c = H2Client(port)
        seen = []
        for path, method, hs, body in [("/a?x=1", "GET", [("cookie", "a=1"), ("cookie", "b=2")], None),
                                       ("/p", "POST", [("content-length", "5")], b"hello"),
                                       ("/ret", "GET", [], None),
                                       ("/gone/x", "GET", [], None)]:
            sid = c.request(path, method=method, headers=hs, body=body)
            assert c.pump(lambda: c.done(sid))
            st, rh, data, rst = c.result(sid)
            seen.append((st, rh.get("content-type"), rh.get("x-up"),
                         data.replace(b"nginx/1.22.1", b"SERVER").replace(b"portvakt", b"SERVER")))
        c.close()
        ups = [(r.method, r.target, r.header("cookie"), r.header("x-proto"), r.header("content-length"), r.body)
               for r in up.requests]
        results.append((seen, ups))
        srv.stop()
        up.stop()
    assert results[0][1] == results[1][1]
    for a, b in zip(results[0][0], results[1][0]):
        assert a[:3] == b[:3]
        if a[0] != 410:
            assert a[3] == b[3]


SEQ_CONF = """\
http {
    ssl_certificate @DIR@/c.pem;
    ssl_certificate_key @DIR@/k.pem;
    server {
        listen 127.0.0.1:@H2C@ http2;
        listen 127.0.0.1:@TLS@ ssl http2;
        listen 127.0.0.1:@H1@;
        location = /ret { return 200 "r $uri $server_protocol\\n"; }
        location /up/ { proxy_pass http://127.0.0.1:@UP@; }
        location /s/ { alias @DIR@/www/; }
    }
}
"""

SEQ_PATHS = ["/ret", "/up/a", "/s/f.txt", "/up/b", "/ret", "/s/f.txt"]
CURL_W = "[%{http_version} %{http_code} %{num_connects}]\n"


def curl_like_sequence(sock, paths):
    """Requests one after another on one connection, each sent only when the
    previous stream has ended, with curl's frames: its SETTINGS (push off, a
    32 MiB stream window), a connection WINDOW_UPDATE, the ACK of the
    server's SETTINGS only after the first answer, and one HPACK context
    over all requests. [(status, content-type, body)], and whether the
    server sent GOAWAY or closed before the last answer."""
    enc, dec = hpack.Encoder(), hpack.Decoder()
    st = hf.SettingsFrame(0)
    st.settings = {hf.SettingsFrame.MAX_CONCURRENT_STREAMS: 100,
                   hf.SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 25, hf.SettingsFrame.ENABLE_PUSH: 0}
    wu = hf.WindowUpdateFrame(0)
    wu.window_increment = 0x01ff0001
    sock.sendall(PREFACE + st.serialize() + wu.serialize())
    buf, out, ack_owed, broken = b"", [], False, False
    for i, path in enumerate(paths):
        sid = 2 * i + 1
        try:
            sock.sendall(headers_frame(sid, path, enc=enc, extra=[("user-agent", "curl"), ("accept", "*/*")]))
        except OSError:
            return out, True
        status, ctype, body, ended = 0, None, b"", False
        while not ended and not broken:
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                try:
                    d = sock.recv(65536)
                except ConnectionResetError:
                    d = b""
                if not d:
                    broken = True
                    break
                buf += d
            if broken:
                break
            f, ln = hf.Frame.parse_frame_header(memoryview(buf[:9]))
            f.parse_body(memoryview(buf[9:9 + ln]))
            buf = buf[9 + ln:]
            if isinstance(f, hf.SettingsFrame) and "ACK" not in f.flags:
                ack_owed = True
            elif isinstance(f, hf.GoAwayFrame) or (isinstance(f, hf.RstStreamFrame) and f.stream_id == sid):
                broken = True
            elif isinstance(f, hf.HeadersFrame) and f.stream_id == sid:
                hs = dict((k.decode(), v.decode()) for k, v in dec.decode(f.data, raw=True))
                status, ctype = int(hs[":status"]), hs.get("content-type")
            elif isinstance(f, hf.DataFrame) and f.stream_id == sid:
                body += f.data
            ended = f.stream_id == sid and "END_STREAM" in f.flags
        out.append((status, ctype, body.replace(b"HTTP/2.0", b"H2")))
        if broken:
            break
        if ack_owed:
            sock.sendall(hf.SettingsFrame(0, flags=["ACK"]).serialize())
            ack_owed = False
    return out, broken


def _seq_server(start, tmp_path):
    up = EchoUpstream(handler=lambda req: Reply(200, body=b"up " + req.target.encode() + b"\n"))
    ports = {"H2C": free_port(), "TLS": free_port(), "H1": free_port()}
    srv = start(SEQ_CONF, DIR=str(tmp_path), UP=up.port, **ports)
    return srv, up, ports


def _make_seq_files(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "f.txt").write_bytes(b"static\n")


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_sequential_streams_like_curl_next(portvakt, nginx, tmp_path):
    """Requests sent one after another on one connection, as curl does for
    several URLs or --next: h2c with prior knowledge and h2 over TLS (ALPN)
    answer each of them and keep the connection, as NGINX does."""
    import ssl
    _make_seq_files(tmp_path)
    results = []
    for start in (portvakt, nginx):
        srv, up, ports = _seq_server(start, tmp_path)
        with socket.create_connection(("127.0.0.1", ports["H2C"]), timeout=10) as s:
            h2c = curl_like_sequence(s, SEQ_PATHS)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", ports["TLS"]), timeout=10)) as s:
            assert s.selected_alpn_protocol() == "h2"
            tls = curl_like_sequence(s, SEQ_PATHS)
        url = "https://127.0.0.1:%d" % ports["TLS"]
        argv = ["curl", "-s"]
        for i, path in enumerate(SEQ_PATHS):
            argv += (["--next"] if i else []) + ["-k", "--http2", "-w", CURL_W, url + path]
        r = subprocess.run(argv, capture_output=True, timeout=30)
        results.append((h2c, tls, r.returncode, r.stdout, [q.target for q in up.requests]))
        srv.stop()
        up.stop()
    pv, ng = results
    want = [(200, "text/plain", b"r /ret H2\n"), (200, None, b"up /up/a\n"), (200, "text/plain", b"static\n"),
            (200, None, b"up /up/b\n"), (200, "text/plain", b"r /ret H2\n"), (200, "text/plain", b"static\n")]
    for h2c, tls, rc, out, ups in results:
        assert h2c == (want, False)
        assert tls == (want, False)
        assert rc == 0
        # curl opened one connection: the later URLs went over it
        assert out.count(b"[2 200 1]") == 1 and out.count(b"[2 200 0]") == len(SEQ_PATHS) - 1, out
        assert ups == ["/up/a", "/up/b"] * 3
    assert pv == ng


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_h2c_upgrade_is_answered_over_http11(portvakt, nginx, tmp_path):
    """`curl --http2` on cleartext asks for h2c by Upgrade; NGINX does not
    take it and answers over HTTP/1.1 on the same connection, and so does
    portvakt, for every request of the run."""
    _make_seq_files(tmp_path)
    results = []
    for start in (portvakt, nginx):
        srv, up, ports = _seq_server(start, tmp_path)
        url = "http://127.0.0.1:%d" % ports["H1"]
        argv = ["curl", "-s"]
        for i, path in enumerate(SEQ_PATHS):
            argv += (["--next"] if i else []) + ["--http2", "-w", CURL_W, url + path]
        r = subprocess.run(argv, capture_output=True, timeout=30)
        results.append((r.returncode, r.stdout.replace(b"HTTP/1.1", b"H1")))
        srv.stop()
        up.stop()
    rc, out = results[0]
    assert rc == 0
    assert out.count(b"[1.1 200 1]") == 1 and out.count(b"[1.1 200 0]") == len(SEQ_PATHS) - 1, out
    assert b"r /ret H1\n" in out and b"up /up/b\n" in out and b"static\n" in out
    assert results[0] == results[1]


# ---------------------------------------------------------------- TLS (ALPN)


TLS_CONF = """\
http {
    ssl_certificate @DIR@/c.pem;
    ssl_certificate_key @DIR@/k.pem;
    server { listen 127.0.0.1:@A@ ssl http2; location / { return 200 "$server_protocol $https\\n"; } }
    server { listen 127.0.0.1:@B@ ssl; http2 on; location / { proxy_pass http://127.0.0.1:@UP@; } }
    server { listen 127.0.0.1:@C@ ssl; location / { return 200 "$server_protocol\\n"; } }
}
"""


@pytest.mark.parametrize("which,h2_offered", [("A", True), ("B", True), ("C", False)])
def test_alpn_negotiates_h2_or_http11(portvakt, upstream, tmp_path, which, h2_offered):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    up = upstream()
    ports = {"A": free_port(), "B": free_port(), "C": free_port()}
    portvakt(TLS_CONF, DIR=str(tmp_path), UP=up.port, **ports)
    url = "https://127.0.0.1:%d/x" % ports[which]
    for flag, want in (("--http2", "2" if h2_offered else "1.1"), ("--http1.1", "1.1")):
        out = subprocess.run(["curl", "-sk", flag, "-o", "-", "-w", "\n[%{http_version} %{http_code}]", url],
                             capture_output=True, timeout=20).stdout.decode()
        assert out.endswith("[%s 200]" % want), (flag, out)
        if which == "A":
            assert out.startswith("HTTP/%s on" % ("2.0" if want == "2" else "1.1"))
    if which == "B":
        assert [r.target for r in up.requests] == ["/x", "/x"]


def test_tls_error_on_an_h2_connection_names_the_client(portvakt, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    import ssl
    ports = {"A": free_port(), "B": free_port(), "C": free_port()}
    g = portvakt("error_log stderr info;\n" + TLS_CONF, DIR=str(tmp_path), UP=free_port(), **ports)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    sock = socket.create_connection(("127.0.0.1", ports["A"]), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            data = sock.recv(65536)
            assert data
            inc.write(data)
    sock.sendall(out.read())
    assert obj.selected_alpn_protocol() == "h2"
    # the preface makes it an HTTP/2 connection; then a record no key opens
    obj.write(PREFACE + hf.SettingsFrame(0).serialize())
    sock.sendall(out.read())
    sock.recv(65536)
    sock.sendall(b"\x17\x03\x03\x00\x20" + b"\xaa" * 32)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()
    wait_for(lambda: "SSL_read() failed" in g.stderr(), what="the log line")
    line = [ln for ln in g.stderr().splitlines() if "SSL_read() failed" in ln][0]
    assert line.endswith("while processing the connection, client: 127.0.0.1"), line


def test_idle_h2_connections_make_room_oldest_first(portvakt):
    # every slot held by an idle HTTP/2 connection: a newcomer is served,
    # and the connection idle the longest gets GOAWAY and is closed for it
    gw = free_port()
    g = portvakt("""
worker_processes 1;
events { worker_connections 6; }
error_log stderr warn;
http {
    access_log off;
    server { listen 127.0.0.1:@GW@ http2; location / { return 200 "ok\\n"; } }
}
""", GW=gw)
    time.sleep(0.3)  # the start-up probe's connection is gone
    held = []
    for _ in range(6):
        c = H2Client(gw)
        assert c.get("/")[0] == 200
        held.append(c)
    # held[1] becomes the most recently idle of the first two
    assert held[1].get("/")[0] == 200
    newcomers = []
    for _ in range(2):
        c = H2Client(gw)
        assert c.get("/")[0] == 200
        newcomers.append(c)
    for victim in (held[0], held[2]):
        assert victim.pump(lambda: False, timeout=5) is False and victim.closed
        assert victim.goaway is not None and victim.goaway.error_code == 0
    for c in held[1:2] + held[3:] + newcomers:
        assert c.get("/")[0] == 200
    assert "6 worker_connections are not enough, closing idle keepalive connections" in g.stderr()
    for c in held + newcomers:
        c.sock.close()


def test_request_trailers_end_the_body(h2gw):
    # trailer fields after the body end the stream: the body goes upstream
    # whole, the trailer fields are not passed on (as NGINX)
    gw, up, ports = h2gw
    c = H2Client(ports["GW"])
    sid = c.request("/t", method="POST", body=b"x" * 1000, end=False)
    c.conn.send_headers(sid, [("x-checksum", "abc")], end_stream=True)
    c.flush()
    assert c.pump(lambda: c.done(sid))
    st, _, _, reset = c.result(sid)
    assert st == 200 and reset is None
    req = up.wait_requests(1)[-1]
    assert req.body_len == 1000
    assert "x-checksum" not in {k.lower() for k, _ in req.headers}


def raw_upstream(reply):
    """A one-shot-per-connection upstream answering every request with the
    bytes in reply; returns (port, stop)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            c.sendall(reply)
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv.close


def test_upstream_trailers_go_on_as_an_h2_trailer_block(portvakt):
    body = b"hello"
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"
             b"Connection: close\r\n\r\n5\r\n" + body + b"\r\n0\r\n"
             b"X-Checksum: abc123\r\nGrpc-Status: 0\r\nConnection: close\r\n\r\n")
    up, stop = raw_upstream(reply)
    gw = free_port()
    try:
        portvakt("""
http {
    access_log off;
    server { listen 127.0.0.1:@GW@ http2; location / { proxy_pass http://127.0.0.1:@UP@; } }
}
""", GW=gw, UP=up)
        c = H2Client(gw)
        sid = c.request("/t")
        trailers = []
        data = b""
        ended = False
        while not ended:
            chunk = c.sock.recv(65536)
            assert chunk, "closed"
            for ev in c.conn.receive_data(chunk):
                if isinstance(ev, h2.events.TrailersReceived):
                    trailers = ev.headers
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                elif isinstance(ev, h2.events.StreamEnded):
                    ended = True
            c.flush()
        assert data == body
        # connection-specific fields are left out, names are lowercase
        assert trailers == [("x-checksum", "abc123"), ("grpc-status", "0")]
        # a plain response without trailers ends with its last DATA frame
        assert c.get("/again")[0] == 200
    finally:
        stop()


def _frames(sock, until, timeout=5.0):
    """Frames (type, flags, stream, payload) read until until(frames) holds
    or the server closes."""
    sock.settimeout(timeout)
    buf, out = b"", []
    end = time.monotonic() + timeout
    while time.monotonic() < end and not until(out):
        try:
            d = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        buf += d
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            ln = int.from_bytes(buf[:3], "big")
            out.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + ln]))
            buf = buf[9 + ln:]
    return out


def _no_settings_client(port, first, pieces):
    """Preface, then `first` (frames before the request) and a GET sent in
    `pieces` writes; the frames the server sent until the answer ended."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = PREFACE + first + headers_frame(1)
    step = -(-len(data) // pieces)
    for i in range(0, len(data), step):
        s.sendall(data[i:i + step])
        time.sleep(0.05)
    got = _frames(s, lambda fs: any(f[2] == 1 and f[1] & 1 for f in fs))
    s.close()
    return got


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
@pytest.mark.parametrize("first,pieces", [
    (b"", 1),                                    # a HEADERS frame right after the preface
    (hf.SettingsFrame(0, flags=["ACK"]).serialize(), 1),  # an ACK, as NGINX's test client sends
    (b"", 40),                                   # the first frame head split over reads
], ids=["headers-first", "ack-first", "split"])
def test_client_without_settings_is_served_as_nginx_serves_it(portvakt, nginx, first, pieces):
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        location = /ret { return 200 "r $server_protocol\\n"; }
    }
}
"""
    seen = []
    for start in (portvakt, nginx):
        port = free_port()
        srv = start(conf, GW=port)
        got = _no_settings_client(port, first, pieces)
        srv.stop()
        heads = [f for f in got if f[0] == 1 and f[2] == 1]
        body = b"".join(f[3] for f in got if f[0] == 0 and f[2] == 1)
        acks = [f for f in got if f[0] == 4 and f[1] & 1]
        goaway = [f for f in got if f[0] == 7]
        seen.append((len(heads), body, len(acks), len(goaway)))
    assert seen[0] == seen[1] == (1, b"r HTTP/2.0\n", 0, 0)


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_http2_variable_as_nginx(portvakt, nginx):
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        listen 127.0.0.1:@H1@;
        location = /v { return 200 "[$http2]"; }
    }
}
"""
    seen = []
    for start in (portvakt, nginx):
        gw, h1 = free_port(), free_port()
        srv = start(conf, GW=gw, H1=h1)
        c = H2Client(gw)
        st, _, body, _ = c.get("/v")
        c.close()
        s = socket.create_connection(("127.0.0.1", h1), timeout=10)
        s.sendall(b"GET /v HTTP/1.0\r\n\r\n")
        plain = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            plain += d
        s.close()
        srv.stop()
        seen.append((st, body, plain.split(b"\r\n\r\n", 1)[1]))
    assert seen[0] == seen[1] == (200, b"[h2c]", b"[]")


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
@pytest.mark.parametrize("how", ["keepalive_requests", "reload"])
def test_goaway_lingers_so_the_answer_survives_a_late_frame(portvakt, nginx, tmp_path, how):
    """The answer sits unread in the client's socket when the server is done
    with the connection (GOAWAY, no stream left); a PING sent then must not
    make the kernel reset the connection and destroy the answer, as NGINX's
    lingering close after GOAWAY keeps it."""
    (tmp_path / "big").write_bytes(b"x" * 400000)
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2 sndbuf=1m;
        keepalive_requests @KR@;
        location / { root @DIR@; }
    }
}
"""
    got = []
    for start in (portvakt, nginx):
        port = free_port()
        srv = start(conf, GW=port, DIR=str(tmp_path), KR=1 if how == "keepalive_requests" else 100)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(PREFACE + hf.SettingsFrame(0, settings={4: 1 << 20}).serialize() +
                  hf.WindowUpdateFrame(0, window_increment=1 << 21).serialize() + headers_frame(1, "/big"))
        time.sleep(0.2)  # the server writes the whole answer into its socket buffer
        if how == "reload":
            srv.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
        else:
            time.sleep(0.1)
        ping = hf.PingFrame(0)
        ping.opaque_data = b"SEE-THIS"
        s.sendall(ping.serialize())
        frames = _frames(s, lambda fs: any(f[0] == 7 for f in fs) and any(f[2] == 1 and f[1] & 1 for f in fs))
        s.close()
        srv.stop()
        got.append((sum(len(f[3]) for f in frames if f[0] == 0 and f[2] == 1),
                    [int.from_bytes(f[3][:4], "big") for f in frames if f[0] == 7]))
    # NGINX 1.22's old worker closes an idle connection on a reload
    # without a GOAWAY; portvakt sends one (README)
    assert got[0] == (400000, [1])
    assert got[1] == (400000, [1] if how == "keepalive_requests" else [])


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_tls_address_refuses_unknown_alpn_and_plain_preface_as_nginx(portvakt, nginx, tmp_path):
    """ALPN naming no protocol of ours ends the handshake with the
    no_application_protocol alert, and the h2c preface sent in plain text
    to a TLS address is plain HTTP to an HTTPS port (400), not HTTP/2."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ ssl http2;
        ssl_certificate @DIR@/c.pem;
        ssl_certificate_key @DIR@/k.pem;
        location / { return 200 "ok\\n"; }
    }
}
"""
    seen = []
    for start in (portvakt, nginx):
        port = free_port()
        srv = start(conf, GW=port, DIR=str(tmp_path))
        alpn = {}
        for offer in ("unknown", "h2,http/1.1", "http/1.1"):
            out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-alpn", offer],
                                 input=b"", capture_output=True, timeout=20)
            text = (out.stdout + out.stderr).decode(errors="replace")
            alpn[offer] = ("alert 120" if "alert number 120" in text else
                           "h2" if "ALPN protocol: h2" in text else
                           "http/1.1" if "ALPN protocol: http/1.1" in text else "none")
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(PREFACE)
        got = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
        s.close()
        srv.stop()
        seen.append((alpn, got.split(b"\r\n", 1)[0]))
    assert seen[0] == seen[1] == ({"unknown": "alert 120", "h2,http/1.1": "h2", "http/1.1": "http/1.1"},
                                  b"HTTP/1.1 400 Bad Request")


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_unbuffered_body_of_unknown_length_starts_the_upstream_at_once(portvakt, nginx):
    """The request runs as its head completes: with proxy_request_buffering
    off, the upstream gets the head (and the body chunked) before the
    client has ended its body, as from NGINX."""
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        location / {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_http_version 1.1;
            proxy_request_buffering off;
        }
    }
}
"""
    seen = []
    for start in (portvakt, nginx):
        up = EchoUpstream(handler=lambda req: Reply(200, body=b"got %d\n" % len(req.body)))
        port = free_port()
        srv = start(conf, GW=port, UP=up.port)
        c = H2Client(port)
        sid = c.request("/u", method="POST", body=b"hello", end=False)
        heads = up.wait_heads(1)  # raises when the head waits for the body's end
        c.send_body(sid, b" world", end=True)
        c.flush()
        assert c.pump(lambda: c.done(sid))
        st, _, data, _ = c.result(sid)
        c.close()
        srv.stop()
        up.stop()
        seen.append((len(heads), st, data, up.requests[0].header("transfer-encoding"), up.requests[0].body))
    assert seen[0] == seen[1] == (1, 200, b"got 11\n", "chunked", b"hello world")


@pytest.mark.skipif(TARGET == "nginx", reason="compares both itself")
def test_body_of_unknown_length_over_the_limit_is_413(portvakt, nginx):
    """DATA that arrives with the head, before the location is chosen,
    still counts against the location's client_max_body_size."""
    conf = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        location /large { client_max_body_size 1k; proxy_pass http://127.0.0.1:@UP@; }
    }
}
"""
    seen = []
    for start in (portvakt, nginx):
        up = EchoUpstream(handler=lambda req: Reply(204))
        port = free_port()
        srv = start(conf, GW=port, UP=up.port)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        block = hpack.Encoder().encode([(":method", "POST"), (":path", "/large"), (":scheme", "http"),
                                        (":authority", "gw")])
        h = hf.HeadersFrame(1)
        h.data = block
        h.flags.add("END_HEADERS")
        out = PREFACE + hf.SettingsFrame(0).serialize() + h.serialize()
        for _ in range(10):
            out += hf.DataFrame(1, data=b"0123456789" * 13).serialize()
        s.sendall(out)
        time.sleep(0.1)
        end = hf.DataFrame(1, data=b"")
        end.flags.add("END_STREAM")
        s.sendall(end.serialize())
        got = _frames(s, lambda fs: any(f[0] == 1 and f[2] == 1 for f in fs))
        s.close()
        srv.stop()
        up.stop()
        heads = [hpack.Decoder().decode(f[3]) for f in got if f[0] == 1 and f[2] == 1]
        seen.append((dict(heads[0]).get(":status") if heads else None, len(up.requests)))
    assert seen[0] == seen[1] == ("413", 0)
