"""The command line: -t (config check with NGINX-style messages ending in
`in FILE:LINE`), -v / -V, includes relative to the config file, and signal
handling. These are portvakt's own interface, so they never run against
NGINX.
"""

import os
import signal
import subprocess
import time

import pytest

from conftest import PORTVAKT, Gateway, http, render

pytestmark = pytest.mark.portvakt_only("portvakt's own CLI")

OK = """
http {
    upstream up { server 127.0.0.1:9; keepalive 4; }
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://up; }
    }
}
"""


def run(*args, cwd="/"):
    if not os.access(PORTVAKT, os.X_OK):
        pytest.fail("%s is not built (run make)" % PORTVAKT, pytrace=False)
    p = subprocess.run([PORTVAKT] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def check(tmp_path, text, name="gw.conf"):
    path = write(tmp_path, name, text)
    rc, out, err = run("-t", "-c", path)
    return rc, out + err, path


def test_check_ok(tmp_path):
    rc, out, _ = check(tmp_path, render(OK, GW=1))
    assert rc == 0, out


def test_check_seed_shape_without_events_block(tmp_path):
    # The brief's config has no events block and no main-context lines.
    rc, out, _ = check(tmp_path, """http {
    keepalive_timeout 65;
    keepalive_requests 100000;
    upstream auth_service { server 127.0.0.1:8080; keepalive 32; }
    server {
        listen 8081;
        location /api/auth/ {
            proxy_pass http://auth_service/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
""")
    assert rc == 0, out


@pytest.mark.parametrize("text,line,words", [
    ("http {\n    server {\n        frobnicate on;\n    }\n}\n", 3,
     ['unknown directive "frobnicate"']),
    ("http {\n    keepalive_requests;\n}\n", 2,
     ['invalid number of arguments', '"keepalive_requests"']),
    ("http {\n    server {\n        location / {\n\n            proxy_pass a b;\n"
     "        }\n    }\n}\n", 5,
     ['invalid number of arguments', '"proxy_pass"']),
    ("http {\n\n    proxy_pass http://127.0.0.1:1;\n}\n", 3,
     ['"proxy_pass" directive is not allowed here']),
    ("worker_processes 1;\nkeepalive_timeout 5s;\nhttp {}\n", 2,
     ['"keepalive_timeout" directive is not allowed here']),
    ("http {\n    keepalive_timeout 5s;\n    keepalive_timeout 6s;\n}\n", 3,
     ['"keepalive_timeout" directive is duplicate']),
    ("worker_processes 1;\nworker_processes 2;\nhttp {}\n", 2,
     ['"worker_processes" directive is duplicate']),
    ("http {\n    upstream a { server 127.0.0.1:1; }\n    upstream a { server 127.0.0.1:2; }\n}\n", 3,
     ['duplicate upstream "a"']),
    ("http {\n    server {\n        location /x { return 200; }\n"
     "        location /x { return 204; }\n    }\n}\n", 4,
     ['duplicate location "/x"']),
    # NGINX omits FILE:LINE for this one; portvakt gives it for every error
    ("http {\n    server {\n        location / {\n            proxy_set_header X $nosuchvar;\n"
     "        }\n    }\n}\n", 4,
     ['unknown "nosuchvar" variable']),
    ("http {\n    server {\n        location / { proxy_pass http://no_such_upstream; }\n    }\n}\n", 3,
     ['no_such_upstream']),
    # NGINX counts the line after the final newline
    ("http {\n    server {\n        listen 127.0.0.1:1;\n", 4,
     ['unexpected end of file, expecting "}"']),
    ("http {\n    keepalive_timeout 5x;\n}\n", 2,
     ['"keepalive_timeout" directive invalid value']),
])
def test_check_errors_name_file_and_line(tmp_path, text, line, words):
    rc, out, path = check(tmp_path, text)
    assert rc == 1, out
    assert "in %s:%d" % (path, line) in out, out
    for w in words:
        assert w in out, out


def test_missing_config_file(tmp_path):
    rc, out, err = run("-t", "-c", str(tmp_path / "nope.conf"))
    assert rc == 1
    assert "nope.conf" in out + err


def test_relative_include_resolves_against_config_dir(tmp_path):
    write(tmp_path, "conf/upstreams.conf", "upstream up { server 127.0.0.1:9; }\n")
    write(tmp_path, "conf/sites/a.conf",
          "server {\n    listen 127.0.0.1:1;\n    location / { proxy_pass http://up; }\n}\n")
    main = write(tmp_path, "conf/main.conf",
                 "http {\n    include upstreams.conf;\n    include sites/*.conf;\n}\n")
    rc, out, err = run("-t", "-c", main, cwd="/")
    assert rc == 0, out + err


def test_error_in_included_file_names_that_file(tmp_path):
    inc = write(tmp_path, "conf/bad.conf", "\n\nbogus_directive 1;\n")
    main = write(tmp_path, "conf/main.conf", "http {\n    include bad.conf;\n}\n")
    rc, out, err = run("-t", "-c", main, cwd="/")
    assert rc == 1
    assert "in %s:3" % inc in out + err, out + err


def test_version(tmp_path):
    rc, out, err = run("-v")
    assert rc == 0
    assert "portvakt version: portvakt/0.1.0" in out + err


def test_version_and_build_info(tmp_path):
    rc, out, err = run("-V")
    assert rc == 0
    text = out + err
    assert "portvakt version: portvakt/0.1.0" in text
    assert len(text.strip().splitlines()) > 1, text


def test_unknown_option_fails(tmp_path):
    rc, out, err = run("--no-such-option")
    assert rc != 0


def start(tmp_path, port):
    conf = render("""
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "up\\n"; }
    }
}
""", GW=port())
    return Gateway.from_text(conf, tmp_path).start()


def test_runs_in_foreground_and_sigterm_exits_cleanly(tmp_path, port):
    gw = start(tmp_path, port)
    try:
        assert http(gw.port, "GET", "/").body == b"up\n"
        assert gw.alive()
    finally:
        rc = gw.stop(signal.SIGTERM)
    assert rc == 0, gw.stderr()


def test_sigterm_while_a_client_is_connected(tmp_path, port):
    gw = start(tmp_path, port)
    import socket
    idle = socket.create_connection(("127.0.0.1", gw.port))
    try:
        t0 = time.monotonic()
        rc = gw.stop(signal.SIGTERM)
        assert time.monotonic() - t0 < 3
        assert rc == 0, gw.stderr()
    finally:
        idle.close()


def test_sigint_exits_at_once(tmp_path, port):
    gw = start(tmp_path, port)
    t0 = time.monotonic()
    gw.proc.send_signal(signal.SIGINT)
    gw.proc.wait(3)
    assert time.monotonic() - t0 < 2


def test_bad_config_does_not_start(tmp_path):
    path = write(tmp_path, "bad.conf", "http {\n    nonsense;\n}\n")
    rc, out, err = run("-c", path)
    assert rc == 1
    assert "in %s:2" % path in out + err
