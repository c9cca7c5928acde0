"""The command line: -t (config check with NGINX-style messages ending in
`in FILE:LINE`), -v / -V, includes relative to the config file, and signal
handling. These are portvakt's own interface, so they never run against
NGINX.
"""

import os
import re
import signal
import subprocess
import threading

import pytest

from conftest import (NGINX, PORTVAKT, ROOT, Closed, EchoUpstream, Gateway, Reply, free_port, http, port_open,
                      render, wait_for)

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


def start(tmp_path, port, http_extra=""):
    conf = render("""
http {
    @EXTRA@
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "up\\n"; }
    }
}
""", GW=port(), EXTRA=http_extra)
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
    # A graceful stop does not wait for a client that sends nothing: its
    # connection is closed and the process exits. Waiting for it would
    # take the 300 s timeouts, past stop()'s 60 s before SIGKILL.
    gw = start(tmp_path, port, "client_header_timeout 300s; keepalive_timeout 300s;")
    import socket
    idle = socket.create_connection(("127.0.0.1", gw.port))
    kept = socket.create_connection(("127.0.0.1", gw.port))
    try:
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200 ")
        rc = gw.stop(signal.SIGTERM, timeout=60)
        assert rc == 0, gw.stderr()
        for s in (idle, kept):
            s.settimeout(10)
            assert s.recv(4096) == b""
    finally:
        idle.close()
        kept.close()


def test_sigint_exits_at_once(tmp_path, port):
    # SIGINT does not wait for a request in flight (SIGTERM would: it
    # drains, and worker_shutdown_timeout is unset): the upstream holds
    # it until the gateway has exited.
    gate = threading.Event()

    def held(req):
        gate.wait(300)
        return Reply(200, body=b"late\n")

    with EchoUpstream(handler=held) as up:
        conf = render("""
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { proxy_pass http://127.0.0.1:@UP@; proxy_read_timeout 300s; }
    }
}
""", GW=port(), UP=up.port)
        gw = Gateway.from_text(conf, tmp_path).start()
        got = {}

        def ask():
            try:
                got["r"] = http(gw.port, "GET", "/held", timeout=60).status
            except Closed:
                got["r"] = "closed"
        client = threading.Thread(target=ask)
        try:
            client.start()
            up.wait_heads(1, timeout=30)
            gw.proc.send_signal(signal.SIGINT)
            # exits with the request still held (a drain would wait the
            # 300 s proxy_read_timeout): wait() raises after 60 s otherwise
            gw.proc.wait(60)
        finally:
            gate.set()
            client.join(60)
            gw.stop()
        # the client's connection went with the process, unanswered
        assert got["r"] == "closed", got


def test_bad_config_does_not_start(tmp_path):
    path = write(tmp_path, "bad.conf", "http {\n    nonsense;\n}\n")
    rc, out, err = run("-c", path)
    assert rc == 1
    assert "in %s:2" % path in out + err


# -- NGINX's other options: -T, -q, -p, -e, -g; daemon and master_process

def serve_conf(port, extra=""):
    return render(extra + """
http {
    server {
        listen 127.0.0.1:@GW@;
        location / { return 200 "up\\n"; }
        location /down { proxy_pass http://127.0.0.1:@DOWN@; }
    }
}
""", GW=port, DOWN=free_port())


def spawn(args, cwd, logdir=None):
    """build/portvakt ARGS in the foreground, stderr to logdir/pv.stderr
    (logdir: cwd unless given, for a cwd the tests may not write to)."""
    out = open(os.path.join(str(logdir or cwd), "pv.stderr"), "wb")
    try:
        return subprocess.Popen([PORTVAKT] + args, cwd=str(cwd), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=out)
    finally:
        out.close()


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("portvakt did not stop on SIGTERM", pytrace=False)


def dump_sections(text):
    """-T's output as [(path, text)] from its "# configuration file" lines."""
    parts = re.split(r"^# configuration file (.*):\n", text, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


MAIN_ONLY = "events {}\ninclude inc/*.conf;\n"


def test_dump_prints_every_file_with_its_path(tmp_path):
    write(tmp_path, "conf/inc/a.conf", "worker_processes 1;\n")
    write(tmp_path, "conf/inc/b.conf", "pid pv.pid;\n")
    main = write(tmp_path, "conf/main.conf", MAIN_ONLY)
    rc, out, err = run("-T", "-c", main)
    assert rc == 0, err
    assert "syntax is ok" in err and "test is successful" in err
    assert dump_sections(out) == [
        (main, MAIN_ONLY + "\n"),
        (str(tmp_path / "conf/inc/a.conf"), "worker_processes 1;\n\n"),
        (str(tmp_path / "conf/inc/b.conf"), "pid pv.pid;\n\n"),
    ]


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="no NGINX")
def test_dump_matches_nginx(tmp_path):
    write(tmp_path, "conf/inc/a.conf", "worker_processes 1;\n")
    write(tmp_path, "conf/inc/b.conf", "pid pv.pid;\n")
    main = write(tmp_path, "conf/main.conf", MAIN_ONLY)
    rc, ours, err = run("-T", "-c", main)
    assert rc == 0, err
    # NGINX resolves `pid pv.pid` against its prefix, which an ordinary
    # user may not write to: give it the test's directory
    p = subprocess.run([NGINX, "-T", "-q", "-e", "stderr", "-p", str(tmp_path) + "/", "-c", main],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert ours == p.stdout


def test_quiet_test_prints_nothing_on_success_and_the_error_on_failure(tmp_path):
    rc, out, err = run("-t", "-q", "-c", write(tmp_path, "ok.conf", MAIN_ONLY.replace("include", "#")))
    assert (rc, out, err) == (0, "", "")
    rc, out, err = run("-tq", "-c", write(tmp_path, "bad.conf", "bogus 1;\n"))
    assert rc == 1
    assert 'unknown directive "bogus"' in err


def test_prefix_resolves_the_config_and_paths_but_include_follows_the_config(tmp_path, port):
    # NGINX: -c, pid, error_log and -e are relative to the prefix; include to
    # the config file's directory.
    gw = port()
    write(tmp_path, "conf/inc.conf", "pid logs/pv.pid;\nerror_log logs/err.log notice;\n")
    write(tmp_path, "conf/main.conf", "include inc.conf;\n" + serve_conf(gw))
    os.mkdir(tmp_path / "logs")
    proc = spawn(["-p", str(tmp_path) + "/", "-c", "conf/main.conf"], "/", logdir=tmp_path)
    try:
        wait_for(lambda: port_open(gw), what="portvakt listening")
        wait_for(lambda: (tmp_path / "logs/pv.pid").read_text().strip(), what="the pid file written")
        assert (tmp_path / "logs/pv.pid").read_text().strip() == str(proc.pid)
    finally:
        assert stop(proc) == 0
    assert "started" in (tmp_path / "logs/err.log").read_text()
    rc, out, err = run("-t", "-p", str(tmp_path), "-c", "conf/main.conf")
    assert rc == 0, err
    assert str(tmp_path / "conf/main.conf") in err


def test_error_log_option_is_the_default_error_log(tmp_path, port):
    gw = port()
    path = write(tmp_path, "gw.conf", serve_conf(gw))
    proc = spawn(["-p", str(tmp_path), "-c", path, "-e", "err.log"], tmp_path)
    try:
        wait_for(lambda: port_open(gw), what="portvakt listening")
        assert http(gw, "GET", "/down").status == 502
        wait_for(lambda: "connect() failed" in (tmp_path / "err.log").read_text(),
                 what="the upstream error in err.log")
    finally:
        assert stop(proc) == 0
    # the config's own error_log wins over -e
    path = write(tmp_path, "gw2.conf", "error_log own.log;\n" + serve_conf(gw))
    proc = spawn(["-p", str(tmp_path), "-c", path, "-e", "other.log"], tmp_path)
    try:
        wait_for(lambda: port_open(gw), what="portvakt listening")
        assert http(gw, "GET", "/down").status == 502
        wait_for(lambda: "connect() failed" in (tmp_path / "own.log").read_text(),
                 what="the upstream error in own.log")
    finally:
        assert stop(proc) == 0
    # opened at start, as NGINX does, but the config's log took over
    assert "connect() failed" not in (tmp_path / "other.log").read_text()


def test_global_directives_come_before_the_file(tmp_path, port):
    gw = port()
    path = write(tmp_path, "gw.conf", serve_conf(gw))
    pid = str(tmp_path / "g.pid")
    proc = spawn(["-c", path, "-g", "daemon off; pid %s;" % pid], tmp_path)
    try:
        wait_for(lambda: port_open(gw), what="portvakt listening")
        # the pid file may be written just after the sockets open
        wait_for(lambda: open(pid).read().strip(), what="the pid file written")
        assert open(pid).read().strip() == str(proc.pid)
    finally:
        assert stop(proc) == 0
    # a directive in both is a duplicate, as in NGINX
    rc, out, err = run("-t", "-c", write(tmp_path, "d.conf", "daemon off;\n"), "-g", "daemon off;")
    assert rc == 1
    assert '"daemon" directive is duplicate in %s:1' % (tmp_path / "d.conf") in err
    rc, out, err = run("-t", "-c", path, "-g", "no_such_thing 1;")
    assert rc == 1
    assert 'unknown directive "no_such_thing" in command line\n' in err
    rc, out, err = run("-t", "-c", path, "-g")
    assert rc == 1
    assert 'option "-g" requires parameter' in err


def test_daemon_on_detaches_and_serves(tmp_path, port):
    gw = port()
    pidfile = tmp_path / "pv.pid"
    # the error log is a file: a daemon's stderr goes there, as NGINX's does
    path = write(tmp_path, "gw.conf", serve_conf(gw, "daemon on;\npid %s;\nerror_log err.log;\n" % pidfile))
    p = subprocess.run([PORTVAKT, "-c", path], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the pid file")
    pid = int(pidfile.read_text())
    try:
        assert os.getsid(pid) == pid  # a session of its own
        with open("/proc/%d/stat" % pid) as f:
            assert f.read().rsplit(")", 1)[1].split()[1] != str(os.getpid())  # not our child
        wait_for(lambda: port_open(gw), what="portvakt listening")
        assert http(gw, "GET", "/").body == b"up\n"
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                 open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z",
                 what="the daemon to exit")
    assert not pidfile.exists()


def test_daemon_on_reports_a_listen_failure_before_detaching(tmp_path, port):
    gw = port()
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", gw))
    busy.listen(1)
    try:
        path = write(tmp_path, "gw.conf", serve_conf(gw, "daemon on;\n"))
        p = subprocess.run([PORTVAKT, "-c", path], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=10)
    finally:
        busy.close()
    assert p.returncode == 1
    assert "127.0.0.1:%d" % gw in p.stderr


def test_master_process_off_runs_one_worker(tmp_path, port):
    gw = port()
    path = write(tmp_path, "gw.conf", serve_conf(gw, "master_process off;\nworker_processes 4;\n"
                                                 "error_log stderr notice;\n"))
    proc = spawn(["-c", path], tmp_path)
    try:
        wait_for(lambda: port_open(gw), what="portvakt listening")
    finally:
        assert stop(proc) == 0
    assert "started: 1 worker" in (tmp_path / "pv.stderr").read_text()


def test_version_names_the_nginx_modules_it_has(tmp_path):
    # NGINX's test harness reads `-V`: a module NGINX builds by default is
    # present unless "--without-NAME"; an optional one only with "--with-NAME".
    rc, out, err = run("-V")
    assert rc == 0
    assert re.search(r"^nginx version: nginx/1\.22\.\d+", err, re.M), err
    args = re.search(r"^configure arguments:(.*)$", err, re.M).group(1).split()
    for have in ("http_proxy_module", "http_limit_req_module", "http_auth_basic_module", "http_gzip_module",
                 "http_access_module", "http-cache"):
        assert "--without-" + have not in args
    assert "--with-http_auth_request_module" in args and "--with-http_gunzip_module" in args
    assert "--with-http_gzip_static_module" in args
    for lacks in ("http_uwsgi_module", "http_scgi_module", "http_userid_module"):
        assert "--without-" + lacks in args
    for have in ("http_fastcgi_module", "http_ssi_module", "http_charset_module"):
        assert "--without-" + have not in args
    assert "--with-http_sub_module" in args and "--with-http_addition_module" in args
    # TLS, HTTP/2 and realip are optional in NGINX's build and present here
    for have in ("http_ssl_module", "http_v2_module", "http_realip_module"):
        assert "--with-" + have in args
    assert re.search(r"^TLS SNI support enabled$", err, re.M), err


def test_error_log_option_also_gets_the_config_errors(tmp_path):
    # NGINX opens the -e file before it reads the config
    rc, out, err = run("-p", str(tmp_path), "-c", write(tmp_path, "gw.conf", "bogus 1;\n"), "-e", "e.log")
    assert rc == 1
    assert 'unknown directive "bogus"' in err
    assert '[emerg]' in (tmp_path / "e.log").read_text()
    assert 'unknown directive "bogus"' in (tmp_path / "e.log").read_text()
    rc, out, err = run("-c", write(tmp_path, "gw.conf", "bogus 1;\n"), "-e", str(tmp_path / "no/such/dir.log"))
    assert rc == 1
    assert "could not open error log file" in err


@pytest.mark.skipif(not os.path.exists("/etc/nginx/nginx.conf"), reason="no NGINX config on this machine")
def test_check_of_debians_stock_nginx_conf(tmp_path):
    """The README's "From NGINX" check: Debian's own nginx.conf (with its
    mime.types, conf.d and sites-enabled includes) passes `portvakt -t`,
    its log paths moved under tmp_path; a dynamic module it would load is
    refused by name, with its file and line."""
    with open("/etc/nginx/nginx.conf") as f:
        text = f.read().replace("/var/log/nginx/", str(tmp_path) + "/")
    assert "include /etc/nginx/modules-enabled/*.conf;" in text
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("include /etc/nginx/modules-enabled/*.conf;", ""))
    p = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "test is successful" in p.stderr, p.stderr
    (tmp_path / "mod.conf").write_text("load_module modules/ngx_http_echo_module.so;\n")
    conf.write_text(text.replace("/etc/nginx/modules-enabled/*.conf", str(tmp_path / "mod.conf")))
    p = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and 'unknown directive "load_module"' in p.stderr and "mod.conf:1" in p.stderr, p.stderr


# One directive of each module the README's "From NGINX" section names as
# missing, at a place NGINX accepts it.
MISSING = {
    "http_referer_module": ("location", "valid_referers none;"),
    "http_userid_module": ("server", "userid on;"),
    "http_uwsgi_module": ("location", "uwsgi_pass 127.0.0.1:9;"),
    "http_scgi_module": ("location", "scgi_pass 127.0.0.1:9;"),
    "http_memcached_module": ("location", "memcached_pass 127.0.0.1:9;"),
    "http_empty_gif_module": ("location", "empty_gif;"),
    "http_browser_module": ("server", "ancient_browser MSIE;"),
}


def test_from_nginx_names_what_is_missing(tmp_path):
    """The README's "From NGINX" section names the modules -V shows as
    --without-..., and a directive of each is a config error with its
    file and line, never ignored; so are stream, mail and load_module."""
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("\n## From NGINX\n"):readme.index("\n## Scale out\n")]
    named = set(re.findall(r"`(http_[a-z_]+_module)`", section))
    rc, out, err = run("-V")
    without = set(re.findall(r"--without-(http_[a-z_]+_module)", err))
    assert without and named == without == set(MISSING), (named, without)
    for words in ("`stream`", "`mail`", "dynamic modules"):
        assert words in section, words
    for module, (where, line) in sorted(MISSING.items()):
        body = line if where == "server" else "location / { %s }" % line
        conf = write(tmp_path, "gw.conf", "http {\n    server {\n        %s\n    }\n}\n" % body)
        rc, out, err = run("-t", "-c", conf)
        name = line.split()[0].rstrip(";")
        assert rc == 1 and 'unknown directive "%s"' % name in err and "gw.conf:3" in err, (module, err)
    for block in ("stream { }", "mail { }", "load_module modules/x.so;"):
        rc, out, err = run("-t", "-c", write(tmp_path, "gw.conf", block + "\n"))
        assert rc == 1 and 'unknown directive "%s"' % block.split()[0] in err and "gw.conf:1" in err, err
