"""Logs and traces: the ready-made `json` and `otel` access log formats
(every line parses as JSON), `log_anonymize` and `$remote_addr_anon`,
W3C trace context checked at the upstream (continued, started, invalid
values replaced, off leaves the fields alone), request ids in both
directions and in the error log, Server-Timing, and the upstream timing
variables in NGINX's list format, beside NGINX's own.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import NGINX, PORTVAKT, Reply, free_port, http, wait_for

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

CONF = """
worker_processes 1;
http {
    access_log /dev/stdout @FORMAT@;
    log_format addrs '$remote_addr|$realip_remote_addr|$remote_addr_anon|$http_x_forwarded_for|$proxy_add_x_forwarded_for|$http_x_real_ip';
    log_format ids '$request_id|$trace_id|$span_id|$parent_span_id|$traceparent';
    upstream up { server 127.0.0.1:@UP@; }
    upstream down { server 127.0.0.1:@DOWN@; }
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://up; }
        location /local { return 200 "local\\n"; }
        location /down { proxy_pass http://down; }
        location /anon/ { log_anonymize on; proxy_pass http://up; }
        location /traced/ {
            trace_context on;
            proxy_pass http://up;
            location /traced/off/ { trace_context off; proxy_pass http://up; }
        }
        location /rid/ {
            request_id_header X-Request-ID;
            proxy_pass http://up;
            location /rid/trusted/ { request_id_trust on; proxy_pass http://up; }
            location /rid/down/ { proxy_pass http://down; }
        }
        location /timing/ { server_timing on; proxy_pass http://up; }
        location /timing-local { server_timing on; return 204; }
    }
}
"""


def start(portvakt, upstream, fmt):
    up = upstream()
    gw = portvakt(CONF, FORMAT=fmt, UP=up.port, DOWN=free_port(), GW=free_port())
    return gw, up


# ---- JSON access logs ------------------------------------------------------

def test_json_format_lines_parse(portvakt, upstream):
    gw, up = start(portvakt, upstream, "json")
    http(gw.port, "GET", "/a?q=1", headers=[("User-Agent", 'odd "agent" \\ \t tab'),
                                           ("Referer", "http://ref.test/")])
    http(gw.port, "GET", "/local")
    http(gw.port, "GET", "/down")
    rows = [json.loads(l) for l in gw.wait_access_log(3)]
    a, local, down = rows
    assert a["uri"] == "/a?q=1" and a["method"] == "GET" and a["status"] == 200
    assert a["user_agent"] == 'odd "agent" \\ \t tab'
    assert a["referer"] == "http://ref.test/"
    assert a["upstream_addr"] == "127.0.0.1:%d" % up.port and a["upstream_status"] == "200"
    for k in ("request_duration_ms", "upstream_connect_duration_ms",
              "upstream_header_duration_ms", "upstream_duration_ms"):
        assert isinstance(a[k], float) and a[k] >= 0, (k, a[k])
    assert isinstance(a["request_length"], int) and a["body_bytes_sent"] > 0
    assert re.fullmatch(r"[0-9a-f]{32}", a["request_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", a["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", a["span_id"])
    # no upstream: the upstream numbers are null, the strings empty
    assert local["status"] == 200 and local["upstream_duration_ms"] is None
    assert local["upstream_connect_duration_ms"] is None and local["upstream_addr"] == ""
    # a refused connect: a time for the try, none for its connect or head
    assert down["status"] == 502 and down["upstream_status"] == "502"
    assert down["upstream_connect_duration_ms"] is None
    assert down["upstream_header_duration_ms"] is None
    assert isinstance(down["upstream_duration_ms"], float)


def test_otel_format_is_an_otlp_json_span(portvakt, upstream):
    gw, up = start(portvakt, upstream, "otel")
    http(gw.port, "GET", "/traced/x", headers=[("traceparent", TP)])
    http(gw.port, "GET", "/down")
    first, down = [json.loads(l) for l in gw.wait_access_log(2)]
    rs = first["resourceSpans"][0]
    assert {"key": "service.name", "value": {"stringValue": "portvakt"}} in rs["resource"]["attributes"]
    span = rs["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span["parentSpanId"] == "00f067aa0ba902b7"
    got = TP_RE.match(up.last().header("traceparent"))
    assert span["spanId"] == got.group(2)  # the upstream's parent is this span
    assert span["kind"] == 2 and span["name"] == "GET"
    assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) > 10 ** 18
    attrs = {a["key"]: a["value"] for a in span["attributes"]}
    assert attrs["http.response.status_code"] == {"intValue": "200"}
    assert attrs["url.path"] == {"stringValue": "/traced/x"}
    assert span["status"] == {"code": 0}
    dspan = down["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert dspan["status"] == {"code": 2} and dspan["parentSpanId"] == ""


# ---- anonymised addresses --------------------------------------------------

def test_log_anonymize(portvakt, upstream):
    gw, up = start(portvakt, upstream, "addrs")
    xff = [("X-Forwarded-For", "203.0.113.77, [2001:db8:7:8::9]:443, secret-host"),
           ("X-Real-IP", "198.51.100.23")]
    http(gw.port, "GET", "/plain", headers=xff)
    http(gw.port, "GET", "/anon/x", headers=xff)
    plain, anon = [l.split("|") for l in gw.wait_access_log(2)]
    assert plain == ["127.0.0.1", "127.0.0.1", "127.0.0.0",
                     "203.0.113.77, [2001:db8:7:8::9]:443, secret-host",
                     "203.0.113.77, [2001:db8:7:8::9]:443, secret-host, 127.0.0.1",
                     "198.51.100.23"]
    assert anon == ["127.0.0.0", "127.0.0.0", "127.0.0.0",
                    "203.0.113.0, 2001:db8:7::, -",
                    "203.0.113.0, 2001:db8:7::, -, 127.0.0.0",
                    "198.51.100.0"]
    # the upstream still gets the real addresses: only the log is changed
    assert up.last().header("X-Forwarded-For") == "203.0.113.77, [2001:db8:7:8::9]:443, secret-host"


# ---- W3C trace context -----------------------------------------------------

def test_trace_continued_at_the_upstream(portvakt, upstream):
    gw, up = start(portvakt, upstream, "ids")
    http(gw.port, "GET", "/traced/a", headers=[("traceparent", TP), ("tracestate", "rojo=00f067aa0ba902b7"),
                                               ("tracestate", "congo=t61rcWkgMzE")])
    got = up.last()
    assert len(got.header_all("traceparent")) == 1
    m = TP_RE.match(got.header("traceparent"))
    assert m, got.header("traceparent")
    assert m.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert m.group(2) != "00f067aa0ba902b7"  # a child: the gateway's span is the parent
    assert m.group(3) == "01"
    assert got.header_all("tracestate") == ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]
    rid, trace_id, span_id, parent, tp = gw.wait_access_log(1)[0].split("|")
    assert trace_id == m.group(1) and span_id == m.group(2) and parent == "00f067aa0ba902b7"
    assert tp == got.header("traceparent")


@pytest.mark.parametrize("sent", [
    None,
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    "garbage",
])
def test_trace_started_when_absent_or_invalid(portvakt, upstream, sent):
    gw, up = start(portvakt, upstream, "ids")
    headers = [("tracestate", "rojo=1")]
    if sent is not None:
        headers.append(("traceparent", sent))
    http(gw.port, "GET", "/traced/b", headers=headers)
    got = up.last()
    assert len(got.header_all("traceparent")) == 1
    m = TP_RE.match(got.header("traceparent"))
    assert m, got.header("traceparent")
    assert m.group(1) != "4bf92f3577b34da6a3ce929d0e0e4736" and m.group(1) != "0" * 32
    assert m.group(2) != "0" * 16 and m.group(3) == "01"
    assert got.header_all("tracestate") == []  # a new trace drops the old state
    _, trace_id, span_id, parent, _ = gw.wait_access_log(1)[0].split("|")
    assert (trace_id, span_id, parent) == (m.group(1), m.group(2), "-")


def test_two_traceparents_start_a_new_trace(portvakt, upstream):
    gw, up = start(portvakt, upstream, "ids")
    http(gw.port, "GET", "/traced/c", headers=[("traceparent", TP), ("traceparent", TP)])
    m = TP_RE.match(up.last().header("traceparent"))
    assert m.group(1) != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_trace_context_off_passes_the_fields_unchanged(portvakt, upstream):
    gw, up = start(portvakt, upstream, "ids")
    for target in ("/plain", "/traced/off/x"):
        http(gw.port, "GET", target, headers=[("traceparent", "not-valid"), ("tracestate", "a=b")])
        assert up.last().header_all("traceparent") == ["not-valid"]
        assert up.last().header_all("tracestate") == ["a=b"]
    http(gw.port, "GET", "/plain")
    assert not up.last().has("traceparent")


# ---- request ids -----------------------------------------------------------

def test_request_id_round_trip(portvakt, upstream):
    gw, up = start(portvakt, upstream, "ids")
    r = http(gw.port, "GET", "/rid/x", headers=[("X-Request-ID", "from-client")])
    sent = up.last().header_all("X-Request-ID")
    assert len(sent) == 1 and re.fullmatch(r"[0-9a-f]{32}", sent[0])  # not trusted
    assert r.header("X-Request-ID") == sent[0]
    assert gw.wait_access_log(1)[0].split("|")[0] == sent[0]
    # trusted: the client's id goes through, both ways and into the log
    r = http(gw.port, "GET", "/rid/trusted/x", headers=[("X-Request-ID", "0f8fad5b-d9cb-469f-a165-70867728950e")])
    assert up.last().header_all("X-Request-ID") == ["0f8fad5b-d9cb-469f-a165-70867728950e"]
    assert r.header("X-Request-ID") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert gw.wait_access_log(2)[1].split("|")[0] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    # a value that is not an id is not taken, even from a trusted client
    r = http(gw.port, "GET", "/rid/trusted/y", headers=[("X-Request-ID", "bad id\"")])
    assert re.fullmatch(r"[0-9a-f]{32}", up.last().header("X-Request-ID"))
    assert r.header("X-Request-ID") == up.last().header("X-Request-ID")
    # without the directive nothing is added either way
    r = http(gw.port, "GET", "/plain")
    assert not up.last().has("X-Request-ID") and not r.has("X-Request-ID")


def test_request_id_in_error_log(portvakt, upstream):
    gw, up = start(portvakt, upstream, "ids")
    r = http(gw.port, "GET", "/rid/down/x")
    assert r.status == 502
    rid = r.header("X-Request-ID")
    assert gw.wait_access_log(1)[0].split("|")[0] == rid
    line = wait_for(lambda: [l for l in gw.stderr().splitlines() if "connect() failed" in l],
                    what="the error line")[0]
    assert line.endswith(", request_id: " + rid), line
    # a line about no request carries none
    assert not [l for l in gw.stderr().splitlines() if "started" in l and "request_id" in l]


# ---- Server-Timing ---------------------------------------------------------

def test_server_timing(portvakt, upstream):
    gw, up = start(portvakt, upstream, "ids")
    r = http(gw.port, "GET", "/timing/x")
    m = re.fullmatch(r"gateway;dur=(\d+\.\d{3}), upstream;dur=(\d+\.\d{3})", r.header("Server-Timing"))
    assert m, r.header("Server-Timing")
    up.reply = Reply(headers=[("Server-Timing", "db;dur=53")])
    r = http(gw.port, "GET", "/timing/y")
    assert r.header_all("Server-Timing")[0] == "db;dur=53"  # the upstream's stays
    assert r.header_all("Server-Timing")[1].startswith("gateway;dur=")
    r = http(gw.port, "GET", "/timing-local")
    assert r.status == 204 and re.fullmatch(r"gateway;dur=\d+\.\d{3}", r.header("Server-Timing"))
    up.reply = None
    assert not http(gw.port, "GET", "/plain").has("Server-Timing")


# ---- -t errors -------------------------------------------------------------

@pytest.mark.parametrize("line,words", [
    ("log_anonymize maybe;", 'it must be "on" or "off"'),
    ("trace_context yes;", 'it must be "on" or "off"'),
    ("request_id_header Host;", 'invalid header name "Host" in "request_id_header" directive'),
    ("request_id_header traceparent;", 'invalid header name "traceparent"'),
    ("request_id_header \"X Id\";", 'invalid header name "X Id"'),
    ("request_id_header X-A; request_id_header X-B;", '"request_id_header" directive is duplicate'),
    ("server_timing;", 'invalid number of arguments in "server_timing" directive'),
])
def test_config_errors(tmp_path, line, words):
    path = tmp_path / "gw.conf"
    path.write_text("http {\n server {\n  listen 127.0.0.1:1;\n  %s\n }\n}\n" % line)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(path)], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and words in p.stderr, p.stderr


# ---- upstream timings, beside NGINX ----------------------------------------

TIMES = """
worker_processes 1;
http {
    log_format t '$upstream_addr|$upstream_status|$upstream_connect_time|$upstream_header_time|$upstream_response_time';
    access_log /dev/stdout t;
    upstream pair { server 127.0.0.1:@DOWN@ max_fails=0; server 127.0.0.1:@UP@ max_fails=0; }
    upstream down { server 127.0.0.1:@DOWN@ max_fails=0; }
    server {
        listen 127.0.0.1:@GW@;
        location /one { proxy_pass http://127.0.0.1:@UP@; }
        location /pair { proxy_pass http://pair; }
        location /down { proxy_pass http://down; }
        location /redir { proxy_intercept_errors on; error_page 404 = /one; proxy_pass http://127.0.0.1:@UP@; }
        location /local { return 200; }
    }
}
"""


def shape(line, up_port, down_port):
    """A log line with the ports named and every time made T."""
    line = line.replace(str(up_port), "UP").replace(str(down_port), "DOWN")
    return re.sub(r"\d+\.\d{3}", "T", line)


def timing_shapes(server, upstream, port):
    up = upstream()
    down = port()
    gw = server(TIMES, UP=up.port, DOWN=down, GW=port())
    for target in ("/one", "/pair", "/down", "/local"):
        http(gw.port, "GET", target)
    up.reply = Reply(status=404)
    http(gw.port, "GET", "/redir")
    lines = gw.wait_access_log(5)
    gw.stop()
    return [shape(l, up.port, down) for l in lines]


def test_upstream_times_format(portvakt, upstream, port):
    got = timing_shapes(portvakt, upstream, port)
    assert got == [
        "127.0.0.1:UP|200|T|T|T",
        "127.0.0.1:DOWN, 127.0.0.1:UP|502, 200|-, T|-, T|T, T",
        "127.0.0.1:DOWN|502|-|-|T",
        "-|-|-|-|-",
        "127.0.0.1:UP : 127.0.0.1:UP|404 : 404|T : T|T : T|T : T",
    ], got


def test_upstream_times_beside_nginx(portvakt, nginx, upstream, port):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    assert timing_shapes(portvakt, upstream, port) == timing_shapes(nginx, upstream, port)
