"""Access logging: the default `combined` format on stdout, log_format with
variables and escaping, `access_log off`, and logging to a file (a relative
path resolves against the config file's directory).

Lines may be written a little after the response (the log never blocks the
event loop), so tests wait for them.
"""

import os
import re

import pytest

from conftest import Client, Reply, http, raw, wait_for

COMBINED = re.compile(
    r'^127\.0\.0\.1 - (?P<user>\S+) \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$')

DEFAULT = """
http {
    upstream up { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://up; }
        location = /teapot { return 418; }
    }
}
"""


def test_combined_on_stdout_by_default(gateway, upstream, port):
    up = upstream()
    gw = gateway(DEFAULT, UP=up.port, GW=port())
    r1 = http(gw.port, "GET", "/a?b=c", headers=[("Referer", "http://ref.test/"),
                                                ("User-Agent", "tester/1.0")])
    r2 = http(gw.port, "GET", "/teapot")
    lines = gw.wait_access_log(2)
    assert len(lines) == 2, lines
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m.group("request") == "GET /a?b=c HTTP/1.1"
    assert m.group("status") == "200"
    assert int(m.group("bytes")) == len(r1.body)  # $body_bytes_sent
    assert m.group("referer") == "http://ref.test/"
    assert m.group("ua") == "tester/1.0"
    assert m.group("user") == "-"
    m = COMBINED.match(lines[1])
    assert m, lines[1]
    assert m.group("request") == "GET /teapot HTTP/1.1"
    assert m.group("status") == "418"
    assert int(m.group("bytes")) == len(r2.body)
    assert m.group("referer") == "-" and m.group("ua") == "-"


def test_bad_request_is_logged(gateway, upstream, port):
    up = upstream()
    gw = gateway(DEFAULT, UP=up.port, GW=port())
    r, _ = raw(gw.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert r.status == 400
    lines = gw.wait_access_log(1)
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m.group("status") == "400"


FORMATS = r"""
http {
    log_format vars '$remote_addr|$request_method|$uri|$args|$status|$body_bytes_sent|$http_x_test|$upstream_status|$upstream_addr|$request_length|$host|$server_port|$server_protocol|$request|$request_uri|$remote_user|$proxy_host|$connection_requests|$sent_http_content_type|$content_length';
    log_format timing '$request_time $upstream_response_time $msec $time_iso8601 $bytes_sent';
    log_format js escape=json '{"ua":"$http_user_agent","x":"$http_x_test","u":"$uri"}';
    upstream up { server 127.0.0.1:@UP@; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        access_log /dev/stdout vars;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location /timing/ {
            access_log /dev/stdout timing;
            proxy_pass http://up;
        }
        location /json/ {
            access_log /dev/stdout js;
            return 200 "j";
        }
        location /quiet/ {
            access_log off;
            return 200 "q";
        }
        location /file/ {
            access_log file-access.log;
            return 204;
        }
        location /both/ {
            access_log file-both.log;
            access_log /dev/stdout timing;
            return 204;
        }
    }
}
"""


@pytest.fixture
def fmt(gateway, upstream, port):
    up = upstream()
    g = gateway(FORMATS, UP=up.port, GW=port())
    g.up = up
    return g


def test_log_format_variables(fmt):
    head = (b'POST /p%20q?a=1 HTTP/1.1\r\nHost: Localhost\r\n'
            b'X-Test: a"b\\c\xe9 z\r\nContent-Length: 5\r\n\r\n')
    with Client(fmt.port) as c:
        c.send(head + b"hello")
        r1 = c.read_response()
        c.send(b"GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n")
        c.read_response()
    line = fmt.wait_access_log(1)[0]
    f = line.split("|")
    assert f[0] == "127.0.0.1"
    assert f[1] == "POST"
    assert f[2] == "/p q"
    assert f[3] == "a=1"
    assert f[4] == "200"
    assert f[5] == str(len(r1.body))
    # default escaping: '"', '\', bytes < 0x20 and >= 0x7f as \xHH (a
    # request with control characters in a field never gets this far)
    assert f[6] == r"a\x22b\x5Cc\xE9 z"
    assert f[7] == "200"
    assert f[8] == "127.0.0.1:%d" % fmt.up.port
    assert f[9] == str(len(head) + 5)
    assert f[10] == "localhost"
    assert f[11] == str(fmt.port)
    assert f[12] == "HTTP/1.1"
    assert f[13] == "POST /p%20q?a=1 HTTP/1.1"
    assert f[14] == "/p%20q?a=1"
    assert f[15] == "-"  # empty values are logged as "-"
    assert f[16] == "up"
    assert f[17] == "1"
    assert f[18] == "application/json"
    assert f[19] == "5"
    second = fmt.wait_access_log(2)[1].split("|")
    assert second[17] == "2"
    assert second[6] == "-" and second[19] == "-"


def test_log_format_timing(fmt):
    r = http(fmt.port, "GET", "/timing/x")
    line = fmt.wait_access_log(1)[0]
    m = re.match(r"^(\d+\.\d{3}) (\d+\.\d{3}) (\d+\.\d{3}) "
                 r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d) (\d+)$", line)
    assert m, line
    assert float(m.group(1)) < 5 and float(m.group(2)) < 5
    assert int(m.group(5)) == len(r.raw_head) + len(r.body)


def test_log_format_json_escape(fmt):
    # a control character can only arrive percent-encoded (one in a field
    # value is refused), and $uri holds it decoded
    http(fmt.port, "GET", "/json/%01", headers=[("User-Agent", 'a"b\\c\x7e z'), ("X-Test", "")])
    line = fmt.wait_access_log(1)[0]
    assert line == r'{"ua":"a\"b\\c~ z","x":"","u":"/json/\u0001"}'


def test_access_log_off(fmt):
    http(fmt.port, "GET", "/quiet/x")
    http(fmt.port, "GET", "/json/")
    lines = fmt.wait_access_log(1)
    assert len(lines) == 1 and lines[0].startswith('{"ua"'), lines


def test_access_log_to_relative_file(fmt):
    http(fmt.port, "GET", "/file/x", headers=[("User-Agent", "to-file")])
    path = os.path.join(fmt.workdir, "file-access.log")
    wait_for(lambda: os.path.exists(path) and open(path).read().strip(), 5,
             what="file-access.log")
    lines = open(path).read().splitlines()
    assert len(lines) == 1
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m.group("status") == "204" and m.group("ua") == "to-file"
    http(fmt.port, "GET", "/json/")
    fmt.wait_access_log(1)
    # The file location logs only to the file.
    assert all(l.startswith('{"ua"') for l in fmt.access_log_lines())


def test_two_access_logs_at_one_level(fmt):
    http(fmt.port, "GET", "/both/x")
    path = os.path.join(fmt.workdir, "file-both.log")
    wait_for(lambda: os.path.exists(path) and open(path).read().strip(), 5,
             what="file-both.log")
    assert COMBINED.match(open(path).read().strip())
    assert re.match(r"^\d+\.\d{3} ", fmt.wait_access_log(1)[0])


SENT = """
http {
    log_format sent '$status|$sent_http_cache_control|$sent_http_x_one|$sent_http_nope|$sent_http_location';
    access_log /dev/stdout sent;
    upstream up { server 127.0.0.1:@UP@; }
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://up; }
        location = /moved { return 301 /elsewhere; }
    }
}
"""


def test_sent_http_variables(gateway, upstream, port):
    """$sent_http_NAME reads the head as sent: a repeated Cache-Control
    joined, a missing field "-", and heads the gateway wrote itself."""
    up = upstream(reply=Reply(200, headers=[("Cache-Control", "no-cache"), ("X-One", "1"),
                                            ("Cache-Control", "private")], body=b"ok"))
    gw = gateway(SENT, UP=up.port, GW=port())
    http(gw.port, "GET", "/a")
    http(gw.port, "GET", "/moved")
    lines = gw.wait_access_log(2)
    assert lines[0] == "200|no-cache, private|1|-|-", lines
    assert lines[1] == "301|-|-|-|http://localhost:%d/elsewhere" % gw.port, lines
