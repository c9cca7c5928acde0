"""A production Redis behind the cluster-wide limit_req zones: AUTH with
a password read from a file (and an ACL user), a database number, a Unix
socket, a master found through Redis Sentinel that is followed across
a failover, and Sentinels that require AUTH themselves. Each runs against real redis-server processes on loopback.

The zone allows 6r/m with burst=2 nodelay and redis_fail=closed: three
requests of a key pass, the fourth is refused with 429, and while Redis
cannot be used every request is refused. So three passes prove the
limit ran in Redis, and the keys are then looked up there."""

import os
import subprocess

import pytest

from conftest import PORTVAKT, RedisServer, free_port, http, wait_for

pytestmark = pytest.mark.portvakt_only("Redis-backed zones are a portvakt extension")

if not os.access("/usr/bin/redis-server", os.X_OK):
    pytest.skip("redis-server is not installed", allow_module_level=True)

CONF = """
worker_processes 1;
http {
    limit_req_zone $http_x_client zone=shared:1m rate=6r/m @REDIS@ redis_fail=closed;
    server {
        listen 127.0.0.1:@GW@;
        location / {
            limit_req zone=shared burst=2 nodelay;
            limit_req_status 429;
            proxy_pass http://127.0.0.1:@UP@;
        }
    }
}
"""

LIMITED = [200, 200, 200, 429]


def gateway_for(portvakt, upstream, redis_params):
    up = upstream()
    return portvakt(CONF, GW=free_port(), UP=up.port, REDIS=redis_params)


def send(gw, client, n=4):
    return [http(gw.port, "GET", "/", headers=[("X-Client", client)], timeout=5).status
            for _ in range(n)]


def keys(*cli_args):
    out = subprocess.run(["redis-cli", "--no-auth-warning"] + list(cli_args) + ["--raw", "KEYS", "pv:lr:*"],
                         capture_output=True, text=True, timeout=10)
    return set(out.stdout.split())


def password_file(tmp_path, text):
    p = tmp_path / "redis.pass"
    p.write_text(text + "\n")
    return p


def test_password_and_database(portvakt, upstream, tmp_path):
    secret = "s3cret with space"
    redis = RedisServer(tmp_path, args=["--requirepass", secret], password=secret).start()
    try:
        gw = gateway_for(portvakt, upstream, "redis=127.0.0.1:%d redis_db=3 redis_password_file=%s"
                         % (redis.port, password_file(tmp_path, secret)))
        assert send(gw, "a") == LIMITED
        assert keys("-p", str(redis.port), "-a", secret, "-n", "3") == {"pv:lr:shared:a"}
        assert keys("-p", str(redis.port), "-a", secret, "-n", "0") == set()
        assert secret not in gw.stderr()
    finally:
        redis.stop()


def test_wrong_password_is_logged_without_the_password(portvakt, upstream, tmp_path):
    redis = RedisServer(tmp_path, args=["--requirepass", "right"], password="right").start()
    try:
        gw = gateway_for(portvakt, upstream, "redis=127.0.0.1:%d redis_password_file=%s"
                         % (redis.port, password_file(tmp_path, "wrong-one")))
        assert send(gw, "a") == [429] * 4
        wait_for(lambda: "AUTH failed" in gw.stderr(), what="the AUTH failure logged")
        assert "WRONGPASS" in gw.stderr() and "wrong-one" not in gw.stderr()
        assert keys("-p", str(redis.port), "-a", "right") == set()
    finally:
        redis.stop()


def test_acl_user(portvakt, upstream, tmp_path):
    redis = RedisServer(tmp_path, args=["--requirepass", "admin", "--user", "gw", "on", ">gwpass", "~pv:*", "+@all"],
                        password="admin").start()
    try:
        gw = gateway_for(portvakt, upstream, "redis=127.0.0.1:%d redis_user=gw redis_password_file=%s"
                         % (redis.port, password_file(tmp_path, "gwpass")))
        assert send(gw, "u") == LIMITED
        assert keys("-p", str(redis.port), "-a", "admin") == {"pv:lr:shared:u"}
    finally:
        redis.stop()


def test_host_name_resolved_when_the_config_loads(portvakt, upstream, tmp_path):
    # redis=NAME:PORT is looked up by -t and the config loader (as NGINX
    # looks up an upstream's server names), never on a worker's loop
    redis = RedisServer(tmp_path, args=["--bind", "127.0.0.1", "-::1"]).start()
    try:
        gw = gateway_for(portvakt, upstream, "redis=localhost:%d" % redis.port)
        assert send(gw, "n") == LIMITED
        assert keys("-p", str(redis.port)) == {"pv:lr:shared:n"}
        assert "not resolved" not in gw.stderr()
    finally:
        redis.stop()


def test_unix_socket(portvakt, upstream, tmp_path):
    sock = str(tmp_path / "redis.sock")
    redis = RedisServer(tmp_path, args=["--unixsocket", sock, "--unixsocketperm", "700"]).start()
    try:
        gw = gateway_for(portvakt, upstream, "redis=unix:%s" % sock)
        assert send(gw, "s") == LIMITED
        assert keys("-s", sock) == {"pv:lr:shared:s"}
    finally:
        redis.stop()


class Sentinel:
    """redis-server in Sentinel mode watching one master; `extra` are more
    lines of its config (requirepass, auth-pass), `cli` what redis-cli
    needs to log in to it."""

    def __init__(self, workdir, master_port, extra="", cli=()):
        self.port = free_port()
        self.cli = list(cli)
        conf = os.path.join(str(workdir), "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
                    "sentinel monitor mymaster 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds mymaster 1000\n"
                    "sentinel failover-timeout mymaster 3000\n%s" % (self.port, workdir, master_port, extra))
        self.log = open(os.path.join(str(workdir), "sentinel.log"), "wb")
        self.proc = subprocess.Popen(["redis-server", conf, "--sentinel"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.master() == master_port, timeout=10, what="sentinel up")

    def master(self):
        out = subprocess.run(["redis-cli", "--no-auth-warning", "-p", str(self.port)] + self.cli +
                             ["--raw", "SENTINEL", "get-master-addr-by-name", "mymaster"],
                             capture_output=True, text=True, timeout=5).stdout.split()
        return int(out[1]) if len(out) == 2 else None

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def test_sentinel_master_followed_across_a_failover(portvakt, upstream, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    (tmp_path / "s").mkdir()
    master = RedisServer(tmp_path / "m").start()
    replica = RedisServer(tmp_path / "r", args=["--replicaof", "127.0.0.1", str(master.port)]).start()
    sentinel = None
    try:
        wait_for(lambda: b"master_link_status:up" in replica.command("INFO", "replication"),
                 timeout=10, what="the replica in sync")
        sentinel = Sentinel(tmp_path / "s", master.port)
        gw = gateway_for(portvakt, upstream, "redis_sentinel=127.0.0.1:%d redis_master=mymaster"
                         % sentinel.port)
        probes = iter(range(1000))
        wait_for(lambda: send(gw, "probe%d" % next(probes), 1) == [200], timeout=10,
                 what="a check through the master Sentinel named")
        assert send(gw, "before") == LIMITED
        assert "pv:lr:shared:before" in keys("-p", str(master.port))

        master.stop()
        wait_for(lambda: sentinel.master() == replica.port, timeout=30, what="the failover")
        wait_for(lambda: send(gw, "probe%d" % next(probes), 1) == [200], timeout=30,
                 what="checks on the new master")
        assert send(gw, "after") == LIMITED
        assert "pv:lr:shared:after" in keys("-p", str(replica.port))
        assert "master mymaster" in gw.stderr()
    finally:
        if sentinel:
            sentinel.stop()
        replica.stop()
        master.stop()


def with_sentinel_password(tmp_path, body):
    """A master and a Sentinel that both require a password (the Sentinel
    one with an ACL user "gw" too); body(master, sentinel) runs between."""
    (tmp_path / "m").mkdir()
    (tmp_path / "s").mkdir()
    master = RedisServer(tmp_path / "m", args=["--requirepass", "master-pw"], password="master-pw").start()
    sentinel = None
    try:
        sentinel = Sentinel(tmp_path / "s", master.port,
                            "sentinel auth-pass mymaster master-pw\nrequirepass sentinel-pw\n"
                            "user gw on >gw-sentinel-pw +@all\n", cli=["-a", "sentinel-pw"])
        # the Sentinel refuses a question without AUTH
        out = subprocess.run(["redis-cli", "-p", str(sentinel.port), "--raw", "SENTINEL",
                              "get-master-addr-by-name", "mymaster"], capture_output=True, text=True, timeout=5)
        assert "NOAUTH" in out.stdout + out.stderr, out
        body(master, sentinel)
    finally:
        if sentinel:
            sentinel.stop()
        master.stop()


@pytest.mark.parametrize("user", ["", "gw"], ids=["password", "acl_user"])
def test_sentinel_with_a_password(portvakt, upstream, tmp_path, user):
    def body(master, sentinel):
        (tmp_path / "sp").write_text(("gw-sentinel-pw" if user else "sentinel-pw") + "\n")
        gw = gateway_for(portvakt, upstream,
                         "redis_sentinel=127.0.0.1:%d redis_master=mymaster redis_password_file=%s "
                         "redis_sentinel_password_file=%s%s"
                         % (sentinel.port, password_file(tmp_path, "master-pw"), tmp_path / "sp",
                            " redis_sentinel_user=" + user if user else ""))
        probes = iter(range(1000))
        wait_for(lambda: send(gw, "probe%d" % next(probes), 1) == [200], timeout=10,
                 what="a check through the master the Sentinel named")
        assert send(gw, "s") == LIMITED
        assert "pv:lr:shared:s" in keys("-p", str(master.port), "-a", "master-pw")
        log = gw.stderr()
        assert "sentinel-pw" not in log and "master-pw" not in log, log

    with_sentinel_password(tmp_path, body)


@pytest.mark.parametrize("params", ["", "redis_sentinel_password_file=@WRONG@"], ids=["none", "wrong"])
def test_sentinel_password_missing_or_wrong(portvakt, upstream, tmp_path, params):
    def body(master, sentinel):
        wrong = tmp_path / "wrong"
        wrong.write_text("not-the-sentinel-pw\n")
        gw = gateway_for(portvakt, upstream,
                         "redis_sentinel=127.0.0.1:%d redis_master=mymaster redis_password_file=%s %s"
                         % (sentinel.port, password_file(tmp_path, "master-pw"),
                            params.replace("@WRONG@", str(wrong))))
        # redis_fail=closed: no master, every request refused
        assert send(gw, "x") == [429] * 4
        want = "Sentinel AUTH failed" if params else "NOAUTH"
        wait_for(lambda: want in gw.stderr(), what="the Sentinel's refusal logged")
        assert "not-the-sentinel-pw" not in gw.stderr()
        assert keys("-p", str(master.port), "-a", "master-pw") == set()

    with_sentinel_password(tmp_path, body)


@pytest.mark.parametrize("params,words", [
    ("redis=127.0.0.1:1 redis_sentinel=127.0.0.1:2 redis_master=m",
     '"redis" and "redis_sentinel" are exclusive'),
    ("redis_sentinel=127.0.0.1:2", '"redis_sentinel" needs "redis_master"'),
    ("redis_master=m", '"redis_master" needs "redis_sentinel"'),
    ("redis=127.0.0.1:1 redis_user=u", '"redis_user" needs "redis_password_file"'),
    ("redis_db=2", '"redis_db" needs "redis" or "redis_sentinel"'),
    ("redis_fail=open", '"redis_fail" needs "redis" or "redis_sentinel"'),
    ("redis=127.0.0.1:1 redis_db=x", 'invalid redis_db "x"'),
    ("redis=nowhere.invalid", 'host not found in redis "nowhere.invalid:6379"'),
    ("redis_sentinel=127.0.0.1:2,nowhere.invalid redis_master=m",
     'host not found in redis_sentinel "nowhere.invalid:26379"'),
    ("redis=127.0.0.1:1 redis=127.0.0.1:2", 'duplicate "redis" parameter'),
    ("redis=127.0.0.1:1 redis_password_file=/nonexistent/pw", '/nonexistent/pw'),
    ("redis_sentinel=127.0.0.1:2,:x redis_master=m", 'invalid redis_sentinel address ":x"'),
    ("redis_sentinel=127.0.0.1:2 redis_master=m redis_sentinel_user=u",
     '"redis_sentinel_user" needs "redis_sentinel_password_file"'),
    ("redis=127.0.0.1:1 redis_sentinel_password_file=@PW@",
     '"redis_sentinel_password_file" needs "redis_sentinel"'),
    ("redis_sentinel=127.0.0.1:2 redis_master=m redis_sentinel_user=", 'empty redis_sentinel_user'),
    ("redis_sentinel=127.0.0.1:2 redis_master=m redis_sentinel_password_file=/nonexistent/spw",
     '/nonexistent/spw'),
])
def test_parameter_errors(tmp_path, params, words):
    pw = password_file(tmp_path, "pw")
    conf = tmp_path / "t.conf"
    conf.write_text("events {}\nhttp { limit_req_zone $uri zone=z:1m rate=1r/s %s; }\n"
                    % params.replace("@PW@", str(pw)))
    p = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and words in p.stderr and "t.conf:2" in p.stderr, p.stderr


def test_empty_password_file_is_refused(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("\nsecond line\n")
    conf = tmp_path / "t.conf"
    conf.write_text("events {}\nhttp { limit_req_zone $uri zone=z:1m rate=1r/s redis=127.0.0.1:1 "
                    "redis_password_file=%s; }\n" % pw)
    p = subprocess.run([PORTVAKT, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "no password in the first line" in p.stderr, p.stderr
    assert "second line" not in p.stderr
