"""auth_basic_user_file read per request, beside NGINX: a user added or a
password changed takes effect without a reload (a credential verified
before is not taken for the old password), a missing file is 403 and an
unreadable one 500 (each logged), the name may hold variables, lines it
cannot take are skipped, and `-t` does not read the file."""

import base64
import os

import pytest

from conftest import NGINX, check_conf, free_port, http, wait_for

CONF = """
http {
    server {
        listen 127.0.0.1:@GW@;
        root @DIR@/www;
        location / { auth_basic "Staff"; auth_basic_user_file @DIR@/users; }
        location /var/ { auth_basic "Staff"; auth_basic_user_file @DIR@/$arg_f; }
        location /open/ { }
    }
}
"""


def basic(user, pw):
    return [("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode())]


def write(path, text):
    """Replace the file's content in place (the inode stays) and make sure
    its modification time moves even on a coarse clock."""
    old = os.stat(path).st_mtime_ns if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(text)
    st = os.stat(path)
    if st.st_mtime_ns == old:
        os.utime(path, ns=(st.st_atime_ns, old + 1000000000))


@pytest.fixture(params=["portvakt", "nginx"])
def gw(request, portvakt, nginx, port, tmp_path):
    if request.param == "nginx" and not os.access(NGINX, os.X_OK):
        pytest.skip("no NGINX")
    www = tmp_path / "www"
    for d in (www, www / "var", www / "open"):
        d.mkdir(parents=True, exist_ok=True)
        (d / "ok.txt").write_text("ok\n")
    write(tmp_path / "users", "alice:{PLAIN}wonder\n")
    g = (portvakt if request.param == "portvakt" else nginx)(CONF, GW=port(), DIR=tmp_path)
    g.dir = tmp_path
    return g


def test_changes_apply_without_reload(gw):
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "wonder")).body == b"ok\n"
    assert http(gw.port, "GET", "/ok.txt", headers=basic("bob", "builder")).status == 401
    write(gw.dir / "users", "alice:{PLAIN}wonder\nbob:{PLAIN}builder\n")
    assert http(gw.port, "GET", "/ok.txt", headers=basic("bob", "builder")).body == b"ok\n"
    # a new password: the one verified a moment ago is no longer good
    write(gw.dir / "users", "alice:{PLAIN}land\nbob:{PLAIN}builder\n")
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "wonder")).status == 401
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "land")).status == 200
    # a file replaced by rename (a new inode), as editors and tools do
    tmp = gw.dir / "users.new"
    tmp.write_text("carol:{PLAIN}c\n")
    os.rename(tmp, gw.dir / "users")
    assert http(gw.port, "GET", "/ok.txt", headers=basic("carol", "c")).status == 200
    assert http(gw.port, "GET", "/ok.txt", headers=basic("bob", "builder")).status == 401


def test_missing_file_is_403(gw):
    os.unlink(gw.dir / "users")
    r = http(gw.port, "GET", "/ok.txt", headers=basic("alice", "wonder"))
    assert r.status == 403
    wait_for(lambda: 'open() "%s/users" failed (2: No such file or directory)' % gw.dir in gw.stderr(),
             what="the error line")
    # no credentials: the challenge, without looking at the file
    assert http(gw.port, "GET", "/ok.txt").status == 401
    write(gw.dir / "users", "alice:{PLAIN}wonder\n")
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "wonder")).status == 200


def test_unreadable_file_is_500(gw):
    os.unlink(gw.dir / "users")
    os.mkdir(gw.dir / "users")  # opens, but cannot be read (as an ordinary user or root)
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "wonder")).status == 500
    assert http(gw.port, "GET", "/open/ok.txt").status == 200


def test_name_with_variables(gw):
    write(gw.dir / "a", "ann:{PLAIN}1\n")
    write(gw.dir / "b", "ben:{PLAIN}2\n")
    assert http(gw.port, "GET", "/var/ok.txt?f=a", headers=basic("ann", "1")).body == b"ok\n"
    assert http(gw.port, "GET", "/var/ok.txt?f=b", headers=basic("ann", "1")).status == 401
    assert http(gw.port, "GET", "/var/ok.txt?f=b", headers=basic("ben", "2")).status == 200
    assert http(gw.port, "GET", "/var/ok.txt?f=none", headers=basic("ben", "2")).status == 403


def test_check_does_not_read_the_file(tmp_path):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n listen 127.0.0.1:%d;\n location / {\n"
                    "auth_basic on; auth_basic_user_file %s/missing;\n }\n }\n}\n"
                    % (tmp_path, free_port(), tmp_path))
    for name, (rc, text) in check_conf(path, tmp_path).items():
        assert rc == 0, (name, text)


@pytest.mark.parametrize("body,words", [
    ("auth_basic_user_file a; auth_basic_user_file b;", '"auth_basic_user_file" directive is duplicate'),
    ("auth_basic_user_file;", 'invalid number of arguments in "auth_basic_user_file" directive'),
    ("auth_basic_user_file a b;", 'invalid number of arguments in "auth_basic_user_file" directive'),
])
def test_check_errors_as_nginx(tmp_path, body, words):
    path = tmp_path / "t.conf"
    path.write_text("events {}\npid %s/n.pid;\nhttp {\n server {\n listen 127.0.0.1:%d;\n location / {\n%s\n }\n }\n}\n"
                    % (tmp_path, free_port(), body))
    for name, (rc, text) in check_conf(path, tmp_path).items():
        assert rc == 1, (name, text)
        assert words in text, (name, text)


def test_lines_it_cannot_take_are_skipped(gw):
    """As NGINX reads the file: a line without ':' is skipped, the first of
    two lines for one user counts, a hash in an unknown format never
    matches."""
    write(gw.dir / "users", "no-colon-here\nalice:{PLAIN}wonder\nalice:{PLAIN}other\nbob:$9$junk\n")
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "wonder")).status == 200
    assert http(gw.port, "GET", "/ok.txt", headers=basic("alice", "other")).status == 401
    assert http(gw.port, "GET", "/ok.txt", headers=basic("bob", "$9$junk")).status == 401
