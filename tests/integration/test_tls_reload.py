"""SIGHUP reloads certificates and keys: connections open before keep
their session and are served, new handshakes get the new certificate,
and no request fails while it happens under load."""

import os
import shutil
import signal
import threading

import pytest

from conftest import free_port, wait_for
from tls_pki import Pki, client_context, peer_cert_text, request_on, tls_connect, https_get


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.old = p.issue("old", "old.a.test", "ec", sans=["a.test"])
    p.new = p.issue("new", "new.a.test", "rsa", sans=["a.test"])
    return p


CONF = """
worker_processes 2;
http {
    access_log off;
    server {
        listen 127.0.0.1:@GW@ ssl;
        server_name a.test;
        ssl_certificate @DIR@/cur.crt;
        ssl_certificate_key @DIR@/cur.key;
        location / { return 200 "ok\\n"; }
    }
}
"""


def install(pair, d):
    # a new file then a rename: a reload never reads half a file
    for src, name in ((pair[0], "cur.crt"), (pair[1], "cur.key")):
        shutil.copy(src, os.path.join(d, name + ".tmp"))
        os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))


def subject(gw, pki):
    s = tls_connect(gw, "a.test", client_context(pki))
    try:
        return "new.a.test" if "CN = new.a.test" in peer_cert_text(s) else "old.a.test"
    finally:
        s.close()


def test_certificate_reload_under_load(gateway, pki, tmp_path):
    d = str(tmp_path)
    install(pki.old, d)
    gw = free_port()
    g = gateway(CONF, GW=gw, DIR=d)
    assert subject(gw, pki) == "old.a.test"

    # a keepalive connection opened before the reload
    kept = tls_connect(gw, "a.test", client_context(pki))
    assert request_on(kept, "a.test", close=False)[0] == 200

    stop = threading.Event()
    results = {"ok": 0, "fail": []}
    lock = threading.Lock()

    def load():
        ctx = client_context(pki)
        while not stop.is_set():
            try:
                st = https_get(gw, "a.test", ctx=ctx)[0]
                with lock:
                    if st == 200:
                        results["ok"] += 1
                    else:
                        results["fail"].append(st)
            except Exception as e:  # a failed handshake or a cut connection
                with lock:
                    results["fail"].append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: results["ok"] > 50, timeout=30, what="load before the reload")
        install(pki.new, d)
        os.kill(g.pid, signal.SIGHUP)
        wait_for(lambda: subject(gw, pki) == "new.a.test", timeout=30, what="the new certificate")
        n = results["ok"]
        wait_for(lambda: results["ok"] > n + 50, timeout=30, what="load after the reload")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results["fail"] == []
    # the connection from before still has its session and is served
    st, _, body = request_on(kept, "a.test")
    kept.close()
    assert (st, body) == (200, b"ok\n")
    assert g.alive()


def test_reload_with_a_broken_key_keeps_the_old_certificate(gateway, pki, tmp_path):
    d = str(tmp_path)
    install(pki.old, d)
    gw = free_port()
    g = gateway(CONF, GW=gw, DIR=d)
    # the new certificate with the old key: refused, the old pair serves
    shutil.copy(pki.new[0], os.path.join(d, "cur.crt"))
    os.kill(g.pid, signal.SIGHUP)
    wait_for(lambda: "keeps serving" in g.stderr(), timeout=30, what="the error logged")
    assert 'SSL_CTX_use_PrivateKey("%s/cur.key") failed (SSL: ' % d in g.stderr()
    assert subject(gw, pki) == "old.a.test"
    assert https_get(gw, "a.test", pki=pki)[0] == 200
