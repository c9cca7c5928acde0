"""open_log_file_cache, as NGINX's: without it a log path with variables is
opened for every line (a removed file is created again by the next
request); with it the file is kept open, checked by name again only after
valid= (a removed file then loses that request's line and is created by
the next one), and kept only once used min_uses times. Compared with
NGINX; its -t messages are in test_access_log_params.py."""

import os
import signal
import time

from conftest import free_port, http, wait_for

CONF = """
worker_processes 1;
http {
    log_format t "$uri";
    server {
        listen 127.0.0.1:@PORT@;
        root @D@;
        location /plain { access_log @D@/plain-$arg_f.log t; return 200; }
        location /cached {
            open_log_file_cache max=4 valid=1s;
            access_log @D@/cached-$arg_f.log t;
            return 200;
        }
        location /twice {
            open_log_file_cache max=4 min_uses=2 valid=1m;
            access_log @D@/twice-$arg_f.log t;
            return 200;
        }
    }
}
"""


def read(path):
    try:
        with open(path, encoding="latin-1") as f:
            return f.read()
    except FileNotFoundError:
        return None


def scenario(start, d):
    """What the logs hold after files are removed between requests."""
    os.makedirs(d, exist_ok=True)
    port = free_port()
    s = start(CONF, PORT=port, D=d)
    seen = {}

    def get(target):
        assert http(port, target=target).status == 200

    def written(name, want):
        path = os.path.join(d, name)
        wait_for(lambda: read(path) == want, what="%s holding %r" % (name, want))
        return read(path)

    plain, cached, twice = (os.path.join(d, n) for n in ("plain-a.log", "cached-a.log", "twice-b.log"))
    # no cache: the next line opens (and so creates) the file again
    get("/plain/1?f=a")
    written("plain-a.log", "/plain/1\n")
    os.remove(plain)
    get("/plain/2?f=a")
    seen["plain"] = written("plain-a.log", "/plain/2\n")

    # a cache: the kept file takes the line until valid= has passed
    get("/cached/1?f=a")
    written("cached-a.log", "/cached/1\n")
    os.remove(cached)
    get("/cached/2?f=a")
    seen["cached within valid"] = read(cached)
    time.sleep(2.2)  # past valid=1s (NGINX counts whole seconds)
    get("/cached/3?f=a")  # checked by name: gone, the line is lost
    seen["cached checked"] = read(cached)
    get("/cached/4?f=a")
    seen["cached again"] = written("cached-a.log", "/cached/4\n")

    # min_uses=2: the first use closes the file, the second keeps it
    get("/twice/1?f=b")
    written("twice-b.log", "/twice/1\n")
    os.remove(twice)
    get("/twice/2?f=b")
    seen["twice reopened"] = written("twice-b.log", "/twice/2\n")
    os.remove(twice)
    get("/twice/3?f=b")
    seen["twice kept"] = read(twice)

    # a reopen (SIGUSR1) leaves kept files alone; the others still open per line
    os.kill(s.pid, signal.SIGUSR1)
    get("/plain/3?f=a")
    get("/cached/5?f=a")
    seen["plain after reopen"] = written("plain-a.log", "/plain/2\n/plain/3\n")
    seen["cached after reopen"] = written("cached-a.log", "/cached/4\n/cached/5\n")
    s.stop()
    return seen


def test_removed_files_as_nginx(tmp_path, portvakt, nginx):
    got = scenario(portvakt, str(tmp_path / "pv"))
    assert got == scenario(nginx, str(tmp_path / "ng"))
    assert got["cached within valid"] is None
    assert got["cached checked"] is None
    assert got["twice kept"] is None
