"""RFC 8441, WebSocket over HTTP/2: the gateway announces
SETTINGS_ENABLE_CONNECT_PROTOCOL; an extended CONNECT with `:protocol
websocket` is proxied as an HTTP/1.1 WebSocket handshake (the usual map
pattern), the upstream's 101 comes back as a 200, and the stream carries
the WebSocket frames both ways until either side ends it. NGINX 1.22 has
no RFC 8441, so nothing is compared with it."""

import os
import struct

import pytest

from conftest import free_port
from test_h2 import H2Client
from test_websocket import WsEcho

pytestmark = pytest.mark.portvakt_only("NGINX 1.22 has no RFC 8441")

CONF = """
worker_processes 1;
http {
    access_log off;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:@GW@ http2;
        location /ws {
            proxy_pass http://127.0.0.1:@UP@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }
        location / { return 200 "plain\\n"; }
    }
}
"""


def ws_frame(payload, opcode=0x1):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(buf):
    """Unmasked server frames in buf: [(opcode, payload)], rest."""
    out = []
    while len(buf) >= 2:
        n, off = buf[1] & 0x7f, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < off + n:
            break
        out.append((buf[0] & 0x0f, bytes(buf[off:off + n])))
        buf = buf[off + n:]
    return out, buf


@pytest.fixture
def ws_gw(portvakt):
    up = WsEcho()
    gw = free_port()
    portvakt(CONF, GW=gw, UP=up.port)
    yield gw
    up.stop()


def open_ws(gw, path="/ws", protocol="websocket"):
    c = H2Client(gw)
    assert c.pump(lambda: c.conn.remote_settings.enable_connect_protocol == 1), "no ENABLE_CONNECT_PROTOCOL"
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", protocol), (":scheme", "http"),
                              (":path", path), (":authority", "gw"), ("sec-websocket-version", "13")])
    c.responses[sid] = {"headers": None, "data": b"", "ended": False, "reset": None}
    c.flush()
    assert c.pump(lambda: c.responses[sid]["headers"] is not None or c.done(sid))
    return c, sid


def test_websocket_echo_over_h2(ws_gw):
    c, sid = open_ws(ws_gw)
    hs = dict(c.responses[sid]["headers"])
    assert hs[":status"] == "200"
    assert "sec-websocket-accept" not in hs and "upgrade" not in hs
    got = []
    for msg in (b"hello", b"x" * 5000):
        c.conn.send_data(sid, ws_frame(msg))
        c.flush()
        assert c.pump(lambda: ws_parse(c.responses[sid]["data"])[0]), "no echo"
        frames, rest = ws_parse(c.responses[sid]["data"])
        c.responses[sid]["data"] = rest
        got += frames
    assert got == [(1, b"hello"), (1, b"x" * 5000)]
    # the client ending the stream ends the tunnel and the stream
    c.conn.end_stream(sid)
    c.flush()
    assert c.pump(lambda: c.done(sid)), "the stream did not end"
    assert c.responses[sid]["reset"] in (None, 0)
    # the connection still serves requests
    assert c.get("/")[0] == 200
    c.close()


def test_close_frame_ends_the_stream(ws_gw):
    """The upstream answers a close frame and closes: the tunnel ends and
    so does the stream (END_STREAM, then a reset with NO_ERROR at most)."""
    c, sid = open_ws(ws_gw)
    c.conn.send_data(sid, ws_frame(struct.pack("!H", 1000), opcode=0x8))
    c.flush()
    assert c.pump(lambda: c.done(sid)), "the stream did not end"
    frames, _ = ws_parse(c.responses[sid]["data"])
    assert frames and frames[0][0] == 0x8
    assert c.responses[sid]["reset"] in (None, 0)
    assert c.get("/")[0] == 200
    c.close()


def test_other_protocols_and_plain_connect(ws_gw):
    c, sid = open_ws(ws_gw, protocol="not-websocket")
    assert dict(c.responses[sid]["headers"])[":status"] == "501"
    sid2 = c.conn.get_next_available_stream_id()
    c.conn.config.validate_outbound_headers = False  # python3-h2 wants a :path even here
    c.conn.send_headers(sid2, [(":method", "CONNECT"), (":authority", "example.com:443")])
    c.responses[sid2] = {"headers": None, "data": b"", "ended": False, "reset": None}
    c.flush()
    assert c.pump(lambda: c.responses[sid2]["headers"] is not None or c.done(sid2))
    assert dict(c.responses[sid2]["headers"] or [(":status", "reset")])[":status"] == "400"
    c.close()
