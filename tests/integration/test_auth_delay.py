"""auth_delay: a 401 of the access phase (auth_basic, the auth subrequest)
is sent only after the delay, the request parked meanwhile; an answer that
passes is not held, a client gone during the delay costs nothing. Each
answer compared with NGINX's on the same config. The locations proxy: a
`return` would answer in the rewrite phase, before the access phase."""

import base64
import os
import socket
import time

import pytest

from conftest import check_conf, Client, NGINX, free_port, http

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        auth_delay 1s;
        location / {
            auth_basic "zone";
            auth_basic_user_file @USERS@;
            proxy_pass http://127.0.0.1:@GW@/ok;
        }
        location /sub {
            auth_request /check;
            proxy_pass http://127.0.0.1:@GW@/ok;
        }
        location /forbidden {
            auth_request /deny;
            proxy_pass http://127.0.0.1:@GW@/ok;
        }
        location /nodelay {
            auth_delay 0s;
            auth_basic "zone";
            auth_basic_user_file @USERS@;
            proxy_pass http://127.0.0.1:@GW@/ok;
        }
        location = /check { internal; return 401; }
        location = /deny { internal; return 403; }
        location = /ok { return 200 "ok\\n"; }
    }
}
"""

GOOD = [("Authorization", "Basic " + base64.b64encode(b"user:good").decode())]
BAD = [("Authorization", "Basic " + base64.b64encode(b"user:bad").decode())]


def start(kind_start, tmp_path):
    users = tmp_path / "users"
    users.write_text("user:{PLAIN}good\n")
    port = free_port()
    kind_start(CONF, GW=port, USERS=str(users))
    return port


def timed(port, target, headers=None):
    t0 = time.monotonic()
    r = http(port, "GET", target, headers=headers)
    return r, time.monotonic() - t0


@pytest.fixture
def gw(gateway, tmp_path):
    return start(gateway, tmp_path)


# Timers run on the loop's clock of whole milliseconds, as NGINX's do
# (ngx_current_msec): a delay set in the middle of a millisecond ends at
# most that fraction of it early by the client's clock.
TIMER_RESOLUTION = 0.001


def test_refusals_wait_the_delay(gw):
    for target, headers in (("/", BAD), ("/", None), ("/sub", None)):
        r, took = timed(gw, target, headers)
        assert r.status == 401, target
        assert took >= 1.0 - TIMER_RESOLUTION, (target, took)
    r, _ = timed(gw, "/", GOOD)
    assert (r.status, r.body) == (200, b"ok\n")


def test_other_answers_are_not_delayed_by_it(gw):
    # 403 and a location with auth_delay 0 answer at once: checked by the
    # parked 401 still waiting when they are done
    with Client(gw) as c:
        c.request("GET", "/", headers=BAD)
        assert http(gw, "GET", "/forbidden").status == 403
        assert http(gw, "GET", "/nodelay", headers=BAD).status == 401
        c.sock.settimeout(0.05)
        with pytest.raises(socket.timeout):
            c.sock.recv(1)  # the delayed 401 has not come yet
        c.sock.settimeout(5)
        assert c.read_response().status == 401


def test_client_gone_during_the_delay(gw):
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", gw))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    r, _ = timed(gw, "/", GOOD)
    assert r.status == 200


def test_same_answers_as_nginx(portvakt, nginx, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    got = []
    for i, kind in enumerate((portvakt, nginx)):
        d = tmp_path / str(i)
        d.mkdir()
        port = start(kind, d)
        got.append([(r.status, r.header("www-authenticate"))
                    for r in (http(port, "GET", t, headers=h)
                              for t, h in (("/", BAD), ("/", GOOD), ("/sub", None), ("/forbidden", None)))])
    assert got[0] == got[1]


@pytest.mark.parametrize("body,words", [
    ("auth_delay x;", '"auth_delay" directive invalid value'),
    ("auth_delay 1s; auth_delay 2s;", '"auth_delay" directive is duplicate'),
    ("auth_delay 1s 2s;", 'invalid number of arguments in "auth_delay" directive'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n%s\n}\n" % (tmp_path, body))
    for name, (rc, text) in check_conf(path, tmp_path).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)
