"""grpc_pass: gRPC requests from HTTP/2 clients relayed to an h2c gRPC
upstream (python3-h2 on both sides): bodies both ways, the response's
trailers (grpc-status, grpc-message), a trailers-only answer, the fields
NGINX's grpc module sends (:authority, te, grpc_set_header), hidden
response fields, and the failures: upstream down (502), read timeout
(504). The gateway fixture runs the same tests against NGINX with
PV_TARGET=nginx."""

import socket
import ssl
import struct
import threading

import pytest

h2 = pytest.importorskip("h2")
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402

from conftest import free_port  # noqa: E402
from tls_pki import Pki  # noqa: E402


def grpc_msg(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class GrpcUpstream:
    """An h2c server (h2 over TLS with ctx) answering by :path: /svc/Echo
    echoes the body with grpc-status 0 trailers and the request fields it
    saw as x-seen-* response fields; /svc/Stream echoes each DATA as it
    comes (the head with the first); /svc/Fail answers trailers-only
    (grpc-status 5); /svc/Hang never answers. TLS facts (ALPN, SNI) of
    each connection go to `tls_seen`."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        self.tls_seen = []
        if ctx:
            ctx.set_alpn_protocols(["h2"])
            ctx.sni_callback = lambda sock, name, c: self.tls_seen.append(name) and None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.seen = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        if self.ctx:
            try:
                c = self.ctx.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError):
                c.close()
                return
            self.tls_seen.append(c.selected_alpn_protocol())
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        heads, bodies, started = {}, {}, {}
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id] = [(k.decode(), v.decode()) for k, v in ev.headers]
                        bodies[ev.stream_id] = b""
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        if dict(heads[ev.stream_id])[":path"] == "/svc/Stream":
                            if not started.get(ev.stream_id):
                                started[ev.stream_id] = True
                                conn.send_headers(ev.stream_id, [(":status", "200"),
                                                                 ("content-type", "application/grpc")])
                            conn.send_data(ev.stream_id, ev.data)
                    elif isinstance(ev, h2.events.StreamEnded):
                        self._answer(conn, ev.stream_id, heads[ev.stream_id], bodies[ev.stream_id])
                c.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            c.close()

    def _answer(self, conn, sid, head, body):
        self.seen.append((head, body))
        path = dict(head)[":path"]
        if path == "/svc/Stream":
            conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)
            return
        if path.startswith("/svc/Big"):
            conn.send_headers(sid, [(":status", "200"), ("x-big", "~" * 5000)], end_stream=True)
            return
        if path.startswith("/svc/Hang"):
            return
        if path.startswith("/svc/Fail"):
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                                    ("grpc-status", "5"), ("grpc-message", "not found")], end_stream=True)
            return
        seen = [("x-seen-" + k.lstrip(":"), v) for k, v in head if k in (":authority", "te", "x-custom", ":method")]
        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                                ("server", "upstream"), ("x-drop", "1")] + seen)
        for i in range(0, len(body), 8000):
            conn.send_data(sid, body[i:i + 8000])
        conn.send_headers(sid, [("grpc-status", "0"), ("grpc-message", "ok")], end_stream=True)

    def stop(self):
        self.stop_ev.set()
        self.sock.close()


def call(port, path, body, timeout=5.0, extra=()):
    """One gRPC call over h2c: (head dict, body, trailers dict, reset)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", path),
                            (":authority", "client.test"), ("content-type", "application/grpc"),
                            ("te", "trailers")] + list(extra))
    pending = body
    head, data, trailers, reset = None, b"", None, None
    try:
        while True:
            while pending and conn.local_flow_control_window(sid) > 0:
                n = min(len(pending), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                conn.send_data(sid, pending[:n])
                pending = pending[n:]
            if not pending and body is not None:
                conn.end_stream(sid)
                body = None
            s.sendall(conn.data_to_send())
            d = s.recv(65536)
            if not d:
                break
            done = False
            for ev in conn.receive_data(d):
                if isinstance(ev, h2.events.ResponseReceived):
                    head = {k.decode(): v.decode() for k, v in ev.headers}
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.TrailersReceived):
                    trailers = {k.decode(): v.decode() for k, v in ev.headers}
                elif isinstance(ev, h2.events.StreamReset):
                    reset, done = ev.error_code, True
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
            s.sendall(conn.data_to_send())
            if done:
                break
    finally:
        s.close()
    return head, data, trailers, reset


CONF = """\
http {
    upstream grpcs { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@ http2;
        location /svc/ {
            grpc_pass grpc://127.0.0.1:@UP@;
            grpc_set_header X-Custom "c-$request_method";
            grpc_hide_header x-drop;
            grpc_read_timeout 1s;
        }
        location /named/ { rewrite ^/named(/.*)$ $1 break; grpc_pass grpcs; }
        location /down/ { grpc_pass 127.0.0.1:@DOWN@; }
    }
}
"""


@pytest.fixture
def upstream():
    u = GrpcUpstream()
    yield u
    u.stop()


class _Gw:
    def __init__(self, port):
        self.port = port


def start(gateway, upstream):
    port = free_port()
    gateway(CONF, GW=port, UP=upstream.port, DOWN=free_port())
    return _Gw(port)


def test_unary_call_bodies_and_trailers(gateway, upstream):
    gw = start(gateway, upstream)
    msg = grpc_msg(b"hello world")
    head, data, trailers, reset = call(gw.port, "/svc/Echo", msg)
    assert reset is None
    assert head[":status"] == "200"
    assert head["content-type"] == "application/grpc"
    assert data == msg
    assert trailers == {"grpc-status": "0", "grpc-message": "ok"}
    # the fields NGINX sends: :authority is grpc_pass's address, te asked for
    assert head["x-seen-authority"] == "127.0.0.1:%d" % upstream.port
    assert head["x-seen-te"] == "trailers"
    assert head["x-seen-x-custom"] == "c-POST"
    assert head["x-seen-method"] == "POST"
    # grpc_hide_header and the default hidden set (Server: the gateway's own)
    assert "x-drop" not in head
    assert head.get("server") != "upstream"


def test_large_streamed_bodies_both_ways(gateway, upstream):
    gw = start(gateway, upstream)
    payload = bytes(range(256)) * 2048  # 512 KiB: many DATA frames and windows
    msg = grpc_msg(payload)
    head, data, trailers, reset = call(gw.port, "/svc/Echo", msg, timeout=10)
    assert head[":status"] == "200"
    assert len(data) == len(msg) and data == msg
    assert trailers["grpc-status"] == "0"
    assert upstream.seen[-1][1] == msg


def test_trailers_only_error(gateway, upstream):
    gw = start(gateway, upstream)
    head, data, trailers, reset = call(gw.port, "/svc/Fail", grpc_msg(b"x"))
    assert head[":status"] == "200"
    assert head["grpc-status"] == "5"
    assert head["grpc-message"] == "not found"
    assert data == b""


def test_upstream_block_and_rewritten_path(gateway, upstream):
    gw = start(gateway, upstream)
    head, data, trailers, _ = call(gw.port, "/named/svc/Echo", grpc_msg(b"n"))
    assert head[":status"] == "200" and data == grpc_msg(b"n")
    assert trailers["grpc-status"] == "0"
    assert head["x-seen-authority"] == "grpcs"


def test_upstream_down_is_502(gateway, upstream):
    gw = start(gateway, upstream)
    head, data, trailers, _ = call(gw.port, "/down/x", grpc_msg(b"x"))
    assert head[":status"] == "502"
    assert trailers is None


def test_head_beyond_grpc_buffer_size_is_502(gateway, upstream):
    gw = start(gateway, upstream)
    head, data, trailers, _ = call(gw.port, "/svc/Big", grpc_msg(b"x"))
    assert head[":status"] == "502"


def test_read_timeout_is_504(gateway, upstream):
    gw = start(gateway, upstream)
    head, data, trailers, _ = call(gw.port, "/svc/Hang", grpc_msg(b"x"))
    assert head[":status"] == "504"


def test_bidirectional_streaming(gateway, upstream):
    """The client ends its stream only after an answer to its first
    message came: the call must start at once and flow both ways."""
    gw = start(gateway, upstream)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/svc/Stream"),
                          (":authority", "c"), ("content-type", "application/grpc"), ("te", "trailers")])
    conn.send_data(1, grpc_msg(b"first"))
    s.sendall(conn.data_to_send())
    got, trailers, sent_second = b"", None, False
    try:
        while trailers is None:
            d = s.recv(65536)
            assert d, "connection closed"
            for ev in conn.receive_data(d):
                if isinstance(ev, h2.events.DataReceived):
                    got += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, 1)
                elif isinstance(ev, h2.events.TrailersReceived):
                    trailers = dict((k.decode(), v.decode()) for k, v in ev.headers)
            if got == grpc_msg(b"first") and not sent_second:
                conn.send_data(1, grpc_msg(b"second"), end_stream=True)
                sent_second = True
            s.sendall(conn.data_to_send())
    finally:
        s.close()
    assert got == grpc_msg(b"first") + grpc_msg(b"second")
    assert trailers == {"grpc-status": "0"}


TLS_CONF = """\
http {
    server {
        listen 127.0.0.1:@GW@ http2;
        location / {
            grpc_pass grpcs://127.0.0.1:@UP@;
            grpc_ssl_verify on;
            grpc_ssl_trusted_certificate @CA@;
            grpc_ssl_name backend.test;
            grpc_ssl_server_name on;
        }
    }
}
"""


def test_grpcs_offers_h2_and_verifies(gateway, tmp_path):
    pki = Pki(tmp_path / "pki")
    crt, key = pki.issue("up", "backend.test", "ec", sans=["backend.test"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    up = GrpcUpstream(ctx)
    try:
        port = free_port()
        gateway(TLS_CONF, GW=port, UP=up.port, CA=pki.ca[0])
        head, data, trailers, _ = call(port, "/svc/Echo", grpc_msg(b"tls"))
        assert head[":status"] == "200" and data == grpc_msg(b"tls")
        assert trailers["grpc-status"] == "0"
        assert "backend.test" in up.tls_seen and "h2" in up.tls_seen
        assert dict(up.seen[-1][0])[":scheme"] == "https"
    finally:
        up.stop()
