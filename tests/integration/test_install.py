"""make install, the man pages, the systemd unit, the sysctl fragment and
make deb, each checked on what they produce.

- `make install DESTDIR=... PREFIX=...` lays the files out the GNU way and
  leaves an existing configuration alone; the installed binary accepts the
  installed default config and example;
- the installed man pages render without a warning (groff -ww);
- the unit passes `systemd-analyze verify`; as root, the installed
  binary runs with the installed default config under the unit's own
  settings (unit_ns.py: its user, capabilities, no-new-privileges,
  LimitNOFILE, runtime and log directories, sd_notify, SIGHUP, the
  graceful SIGTERM), in private mount and network namespaces, so port
  80, /run and /var/log are its own;
- deploy/99-portvakt.conf sets what `portvakt doctor --sysctl` asks of a
  host that needs tuning, and LimitNOFILE covers doctor's count here;
- `make deb` builds a package whose contents, control files and
  maintainer scripts are what a Debian system needs, and lintian (when
  installed) finds nothing.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT

pytestmark = pytest.mark.portvakt_only("the install tree and package of portvakt")

UNIT = os.path.join(ROOT, "deploy", "portvakt.service")


def make(*args, **kw):
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT] + list(args),
                          capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def tree():
    # readable by the unprivileged user the unit runs as (pytest's own
    # temporary directories are private to root)
    dest = tempfile.mkdtemp(prefix="portvakt-destdir-")
    os.chmod(dest, 0o755)
    r = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    yield dest
    shutil.rmtree(dest)


def test_install_lays_out_the_gnu_way(tmp_path):
    dest = str(tmp_path)
    r = make("install", "DESTDIR=" + dest, "PREFIX=/opt/pv")
    assert r.returncode == 0, r.stderr
    for path, mode in (("opt/pv/sbin/portvakt", 0o755),
                       ("opt/pv/share/man/man8/portvakt.8", 0o644),
                       ("opt/pv/share/man/man5/portvakt.conf.5", 0o644),
                       ("opt/pv/share/doc/portvakt/examples/gateway.conf", 0o644),
                       ("etc/portvakt/portvakt.conf", 0o644),
                       ("etc/portvakt/mime.types", 0o644),
                       ("etc/portvakt/fastcgi_params", 0o644)):
        st = os.stat(os.path.join(dest, path))
        assert st.st_mode & 0o777 == mode, path
    assert os.path.isdir(os.path.join(dest, "etc/portvakt/conf.d"))
    # nothing outside DESTDIR: every file is under the two roots
    tops = sorted(os.listdir(dest))
    assert tops == ["etc", "opt"]
    # a second install keeps the administrator's configuration
    conf = os.path.join(dest, "etc/portvakt/portvakt.conf")
    with open(conf, "a") as f:
        f.write("# edited\n")
    r = make("install", "DESTDIR=" + dest, "PREFIX=/opt/pv")
    assert r.returncode == 0, r.stderr
    with open(conf) as f:
        assert f.read().endswith("# edited\n")
    # uninstall takes back all but the configuration
    r = make("uninstall", "DESTDIR=" + dest, "PREFIX=/opt/pv")
    assert r.returncode == 0, r.stderr
    left = sorted(os.path.relpath(os.path.join(d, f), dest)
                  for d, _, fs in os.walk(dest) for f in fs)
    assert left == ["etc/portvakt/fastcgi_params", "etc/portvakt/mime.types", "etc/portvakt/portvakt.conf"], left


def test_installed_binary_checks_installed_configs(tree):
    binary = os.path.join(tree, "usr/sbin/portvakt")
    for conf in ("etc/portvakt/portvakt.conf", "usr/share/doc/portvakt/examples/gateway.conf"):
        r = subprocess.run([binary, "-t", "-c", os.path.join(tree, conf)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, conf + ": " + r.stderr
        assert "test is successful" in r.stderr
    r = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "portvakt/" in r.stderr + r.stdout
    # the installed mime.types is the project's types block, which the
    # default portvakt.conf includes
    with open(os.path.join(tree, "etc/portvakt/mime.types")) as f:
        assert re.search(r"^types \{\n(.*\n)*\s+text/html\s+html htm shtml;", f.read(), re.M)
    with open(os.path.join(tree, "etc/portvakt/portvakt.conf")) as f:
        assert re.search(r"^\s+include mime\.types;", f.read(), re.M)


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
def test_man_pages_render_without_warnings(tree):
    for page in ("usr/share/man/man8/portvakt.8", "usr/share/man/man5/portvakt.conf.5"):
        path = os.path.join(tree, page)
        r = subprocess.run(["groff", "-man", "-ww", "-z", path], capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", page + ": " + r.stderr
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", path], capture_output=True,
                           text=True, env=dict(os.environ, LC_ALL="C.UTF-8"))
        assert r.stderr == ""
        text = re.sub(r".\x08", "", r.stdout)
        assert "SEE ALSO" in text
    with open(os.path.join(tree, "usr/share/man/man5/portvakt.conf.5")) as f:
        conf5 = f.read()
    with open(os.path.join(tree, "usr/share/man/man8/portvakt.8")) as f:
        page8 = f.read()
    # made from the README: its directive tables and its command line
    for name in ("proxy_pass", "limit_req_zone", "ssl_certificate", "worker_shutdown_timeout",
                 "map", "auth_jwt"):
        assert "\\fB" + name.replace("_", "_") in conf5, name
    for word in ("SIGHUP", "doctor", "\\-\\-sysctl", "worker_rlimit_nofile"):
        assert word in page8, word


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_unit_verifies(tree, tmp_path):
    # ExecStart must name an existing binary and Documentation= existing
    # man pages: point both at the install tree
    with open(UNIT) as f:
        text = f.read().replace("/usr/sbin/portvakt", os.path.join(tree, "usr/sbin/portvakt"))
    unit = tmp_path / "portvakt.service"
    unit.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       env=dict(os.environ, MANPATH=os.path.join(tree, "usr/share/man")))
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_unit_settings():
    with open(UNIT) as f:
        unit = f.read()
    for line in ("Type=notify", "ExecStartPre=/usr/sbin/portvakt -t -q -c /etc/portvakt/portvakt.conf",
                 "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "User=portvakt",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE", "SystemCallFilter=@system-service"):
        assert "\n" + line + "\n" in unit, line
    # the drain ends before systemd kills: TimeoutStopSec above the default
    # config's worker_shutdown_timeout
    stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", unit, re.M).group(1))
    with open(os.path.join(ROOT, "deploy", "portvakt.conf")) as f:
        drain = int(re.search(r"^worker_shutdown_timeout (\d+)s;", f.read(), re.M).group(1))
    assert stop > drain


def test_limit_nofile_covers_doctors_count():
    with open(UNIT) as f:
        limit = int(re.search(r"^LimitNOFILE=(\d+)$", f.read(), re.M).group(1))
    r = subprocess.run([os.path.join(ROOT, "build", "portvakt"), "doctor", "--json", "-c",
                        os.path.join(ROOT, "deploy", "portvakt.conf")],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PV_DOCTOR_STEAL_MS="10"))
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    need = int(re.match(r">= (\d+)", checks["nofile"]["want"]).group(1))
    assert need <= limit
    # and for 64 CPUs, the count the unit's comment promises
    assert 64 * 1024 * 2 <= limit


def test_sysctl_fragment_is_what_doctor_asks():
    r = subprocess.run([os.path.join(ROOT, "build", "portvakt"), "doctor", "--sysctl", "-c",
                        os.path.join(ROOT, "deploy", "portvakt.conf"), "--sys-root",
                        os.path.join(ROOT, "tests", "integration", "fixtures", "sysroot-bad")],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PV_DOCTOR_STEAL_MS="10"))
    assert r.returncode == 2, r.stderr

    def settings(text):
        return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]

    with open(os.path.join(ROOT, "deploy", "99-portvakt.conf")) as f:
        fragment = f.read()
    assert settings(fragment) == settings(r.stdout)
    assert settings(fragment)  # the host needed something

    # and its comments are doctor's words for the installed config, as
    # they read today (the file's own header aside; doctor wraps lines
    # by the config's path, which is another one here)
    def words(text):
        text = text[text.index("\n# somaxconn "):] if "\n# somaxconn " in text else text
        return " ".join(text.replace("#", " ").split())

    doctor = r.stdout.replace(os.path.join(ROOT, "deploy", "portvakt.conf"), "/etc/portvakt/portvakt.conf")
    assert words(fragment) == words(doctor)
    assert "tcp_tw_recycle" in fragment and "tcp_tw_recycle" not in "".join(settings(fragment))
    # each setting has doctor's reason above it
    for ln in settings(fragment):
        key = ln.split()[0]
        assert re.search(r"# [a-z_]+ \((FAIL|WARN)\):[^\n]*\n(#[^\n]*\n)*" + re.escape(ln), fragment), key


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
                    reason="needs root (namespaces, setpriv) and util-linux")
def test_default_config_runs_under_the_units_settings(tree):
    r = subprocess.run(["unshare", "--mount", "--net", "--fork", "/usr/bin/python3",
                        os.path.join(ROOT, "tests", "integration", "unit_ns.py"), tree, UNIT, "nobody"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = json.loads(r.stdout)
    assert seen["notify"] == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    assert seen["uid"] != "0"
    assert seen["answer"] == "HTTP/1.1 200 OK"
    assert seen["answer_after_reload"] == "HTTP/1.1 200 OK"
    assert seen["answer_in_flight"] == "HTTP/1.1 200 OK"
    assert seen["exit"] == 0
    assert seen["access_log"].count('"GET / HTTP/1.1" 200') == 3


@pytest.fixture(scope="module")
def deb():
    r = make("deb")
    assert r.returncode == 0, r.stdout + r.stderr
    path = re.search(r"mkdeb: (\S+\.deb)", r.stdout).group(1)
    return os.path.join(ROOT, path)


def test_deb_contents(deb):
    info = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True).stdout
    assert re.search(r"^ Package: portvakt$", info, re.M)
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
    for lib in ("adduser", "libc6", "libssl3", "libsystemd0", "libhiredis", "libnghttp2", "libpcre2"):
        assert lib in depends, lib
    files = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    for path in ("./usr/sbin/portvakt", "./lib/systemd/system/portvakt.service",
                 "./etc/logrotate.d/portvakt", "./usr/lib/sysctl.d/99-portvakt.conf",
                 "./etc/portvakt/portvakt.conf", "./etc/portvakt/mime.types", "./etc/portvakt/fastcgi_params",
                 "./usr/share/man/man8/portvakt.8.gz", "./usr/share/man/man5/portvakt.conf.5.gz",
                 "./usr/share/doc/portvakt/copyright", "./usr/share/doc/portvakt/changelog.gz",
                 "./usr/share/doc/portvakt/examples/gateway.conf"):
        assert re.search(r" root/root .* " + re.escape(path) + "$", files, re.M), path
    conffiles = subprocess.run(["dpkg-deb", "-f", deb, "Package"], capture_output=True, text=True)
    assert conffiles.stdout.strip() == "portvakt"
    ctl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True).stdout
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(ctl)) as t:
        names = {m.name.lstrip("./"): m for m in t.getmembers()}
        assert t.extractfile(names["conffiles"]).read().decode().split() == [
            "/etc/portvakt/portvakt.conf", "/etc/portvakt/mime.types", "/etc/logrotate.d/portvakt",
            "/etc/portvakt/fastcgi_params"]
        postinst = t.extractfile(names["postinst"]).read().decode()
        assert names["postinst"].mode & 0o755 == 0o755
        assert "adduser --system --group" in postinst and "portvakt" in postinst
    # the packaged logrotate file makes portvakt reopen its logs
    with open(os.path.join(ROOT, "deploy", "portvakt.logrotate")) as f:
        assert "kill -USR1" in f.read()


@pytest.mark.skipif(not shutil.which("lintian"), reason="lintian is not installed")
def test_lintian_is_clean(deb):
    r = subprocess.run(["lintian", "--pedantic", deb], capture_output=True, text=True, timeout=300)
    findings = [ln for ln in (r.stdout + r.stderr).splitlines()
                if re.match(r"[EWIP]: ", ln) and "root privileges" not in ln]
    assert findings == [] and r.returncode == 0, "\n".join(findings) or r.stderr


def test_compose_file_follows_the_brief(tmp_path):
    import yaml
    with open(os.path.join(ROOT, "deploy", "compose.yml")) as f:
        doc = yaml.safe_load(f)
    svcs = doc["services"]
    assert set(svcs) == {"database", "redis", "auth", "inventory", "portvakt"}
    for name, s in svcs.items():
        limits = s["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[MG]", limits["memory"]), name
        assert s["healthcheck"]["test"], name
        for dep, cond in s.get("depends_on", {}).items():
            assert cond == {"condition": "service_healthy"}, (name, dep)
        # portvakt alone publishes ports, 80 and 443
        assert ("ports" in s) == (name == "portvakt"), name
    assert svcs["database"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert set(svcs["portvakt"]["depends_on"]) == {"auth", "inventory", "redis"}
    assert set(svcs["inventory"]["depends_on"]) == {"database"}
    assert svcs["portvakt"]["ports"] == ["80:80", "443:443"]
    # the gateway's healthcheck is its readiness endpoint
    assert svcs["portvakt"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8081/readyz"
    with open(os.path.join(ROOT, "deploy", "compose", "portvakt.conf")) as f:
        assert re.search(r"listen 127\.0\.0\.1:8081;.*location = /readyz \{ portvakt_ready; \}", f.read(), re.S)
    assert doc["networks"]["internal"]["internal"] is True
    for name, s in svcs.items():
        nets = s["networks"]
        assert "internal" in nets and (("edge" in nets) == (name == "portvakt")), name
    # portvakt's entrypoint writes the container's name servers as the
    # resolver line its config includes, then execs portvakt
    entry = svcs["portvakt"]["entrypoint"]
    assert entry[:2] == ["/bin/sh", "-c"], entry
    script = entry[2].replace("$$", "$")
    assert script.endswith("exec /usr/sbin/portvakt -c /etc/portvakt/portvakt.conf"), script
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search dns.podman\nnameserver 10.89.0.1\nnameserver 127.0.0.11 \n"
                      "nameserver fe80::1%eth0\noptions ndots:0\n")
    written = tmp_path / "resolvers.conf"
    script = (script.replace("/etc/resolv.conf", str(resolv)).replace("/run/portvakt/resolvers.conf", str(written))
              .replace("exec /usr/sbin/portvakt -c /etc/portvakt/portvakt.conf", "true"))
    if not os.path.exists("/bin/busybox"):
        script = script.replace("/bin/busybox ", "")
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert written.read_text().split() == ["resolver", "10.89.0.1", "127.0.0.11", "valid=10s;"]
    # the gateway's config in the stack, with that file, passes -t but
    # for the Redis name only the stack resolves; the services' names,
    # with `resolve`, are looked up at run time (a warning now)
    with open(os.path.join(ROOT, "deploy", "compose", "portvakt.conf")) as f:
        text = f.read()
    assert "include /run/portvakt/resolvers.conf;" in text
    conf = tmp_path / "portvakt.conf"
    conf.write_text(text.replace("/run/portvakt/resolvers.conf", str(written)))
    binary = os.path.join(ROOT, "build", "portvakt")
    r = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    line = text[:text.index("redis=redis:6379")].count("\n") + 1
    assert 'host not found in redis "redis:6379"' in r.stderr and "portvakt.conf:%d" % line in r.stderr, r.stderr
    (tmp_path / "tls").mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=localhost", "-keyout", str(tmp_path / "tls" / "key.pem"),
                    "-out", str(tmp_path / "tls" / "cert.pem")], check=True, capture_output=True)
    conf.write_text(conf.read_text().replace("redis=redis:6379", "redis=127.0.0.1:6379")
                    .replace("/run/portvakt/portvakt.pid", str(tmp_path / "portvakt.pid")))
    r = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr
    assert 'host not found in upstream "auth:8080"' in r.stderr, r.stderr


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_compose_config_validates():
    r = subprocess.run(["docker-compose", "-f", os.path.join(ROOT, "deploy", "compose.yml"), "config", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_dockerfile():
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        text = f.read()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages == ["${BASE}", "scratch"]
    assert re.search(r"^ARG BASE=debian:bookworm", text, re.M)
    assert re.search(r"^RUN /out/usr/sbin/portvakt -t -c ", text, re.M)
    final = text[text.rindex("FROM scratch"):]
    assert re.search(r"^USER 999:999$", final, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", final, re.M)
    # the build stage has every library the binary links (setup.sh's
    # -dev packages but those of the tests)
    with open(os.path.join(ROOT, "scripts", "setup.sh")) as f:
        devs = set(re.findall(r"\b((?:lib|zlib)[a-z0-9.+-]*-dev)\b", f.read())) - {"libcmocka-dev", "libclang-rt-dev"}
    build = text[:text.rindex("FROM scratch")]
    # and every file `make install` reads
    for path in ("Makefile", "src", "scripts/manpage.py", "README.md", "examples/gateway.conf",
                 "deploy/portvakt.conf", "conf"):
        assert re.search(r"^COPY %s " % re.escape(path), build, re.M), path
    assert not {d for d in devs if not re.search(r"\s%s\s" % re.escape(d), build)}, devs
    # the image's healthcheck: the default config's readiness endpoint,
    # with the busybox the runtime stage holds
    assert re.search(r'^HEALTHCHECK .*\n  CMD \["/bin/busybox", "wget", .*"http://127\.0\.0\.1:8081/readyz"\]$',
                     final, re.M)
    with open(os.path.join(ROOT, "deploy", "portvakt.conf")) as f:
        assert re.search(r"listen 127\.0\.0\.1:8081;.*location = /readyz \{ portvakt_ready; \}", f.read(), re.S)
