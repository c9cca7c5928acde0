"""Real NGINX gateway configs from public projects (the corpus kept
beside the project, never copied into it): each prepared copy (loopback
addresses, free ports, a test certificate, paths under a temporary
directory: the corpus's own prepare.py) must pass portvakt's -t
whenever it passes NGINX's, and also where NGINX 1.22 refuses it only
for a directive of a later NGINX that portvakt has. Skipped where the corpus is not at hand
(a clone on its own, the fresh-machine root)."""

import glob
import os
import subprocess
import sys

import pytest

from conftest import NGINX, PORTVAKT, ROOT


def corpus():
    d = os.environ.get("NGINX_CONFIGS")
    if d:
        return d
    here = ROOT
    while True:
        cand = os.path.join(here, "shared", "corpora", "nginx-configs")
        if os.path.isfile(os.path.join(cand, "prepare.py")):
            return cand
        up = os.path.dirname(here)
        if up == here:
            return None
        here = up


CORPUS = corpus()
NAMES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CORPUS, "[0-9]*-*.conf"))) if CORPUS else []


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("configs")
    subprocess.run([sys.executable, os.path.join(CORPUS, "prepare.py"), str(out)], check=True,
                   capture_output=True, timeout=120)
    return out


def check(binary, path):
    argv = [binary, "-t", "-c", str(path)]
    if binary == NGINX:
        argv[1:1] = ["-e", "stderr"]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


# NGINX 1.22's refusals of what later NGINX versions accept and portvakt
# has: `http2 on;` (1.25) and `server ... resolve` (1.27)
LATER = ('unknown directive "http2"', 'invalid parameter "resolve"')


@pytest.mark.skipif(not NAMES, reason="the corpus of real NGINX configs is not at hand")
@pytest.mark.parametrize("name", NAMES)
def test_loads_as_nginx_does(prepared, name):
    path = prepared / name
    ours = check(PORTVAKT, path)
    if os.access(NGINX, os.X_OK):
        theirs = check(NGINX, path)
        if theirs[0] != 0:
            assert any(m in theirs[1] for m in LATER), "NGINX 1.22 refuses it: " + theirs[1][-300:]
    assert ours[0] == 0, ours[1]
