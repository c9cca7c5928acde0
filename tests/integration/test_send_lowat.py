"""send_lowat, proxy_send_lowat and fastcgi_send_lowat: Linux does not let
a program set SO_SNDLOWAT, so NGINX on Linux checks the size, warns that
the directive is not supported, and goes on; portvakt does the same,
beside NGINX 1.22 (-t)."""

import pytest

from conftest import check_conf, free_port


def run_t(tmp_path, line):
    """-t by NGINX (with the temp paths an ordinary user needs) and by
    portvakt: the file and [(exit code, output)]."""
    p = tmp_path / "t.conf"
    p.write_text("error_log stderr;\nevents {}\nhttp {\n\n"
                 "    server { listen 127.0.0.1:%d; location / { %s } }\n}\n" % (free_port(), line))
    return p, list(check_conf(p, tmp_path).values())


@pytest.mark.parametrize("name", ["send_lowat", "proxy_send_lowat", "fastcgi_send_lowat"])
@pytest.mark.parametrize("value", ["0", "4k"])
def test_accepted_with_the_linux_warning(tmp_path, name, value):
    p, out = run_t(tmp_path, "%s %s;" % (name, value))
    want = '"%s" is not supported, ignored in %s:5' % (name, p)
    for rc, err in out:
        assert rc == 0, err
        assert want in err, err


@pytest.mark.parametrize("line,msg", [
    ("send_lowat 1x;", '"send_lowat" directive invalid value'),
    ("proxy_send_lowat;", 'invalid number of arguments in "proxy_send_lowat" directive'),
    ("fastcgi_send_lowat 1k; fastcgi_send_lowat 2k;", '"fastcgi_send_lowat" directive is duplicate'),
])
def test_bad_values_refused(tmp_path, line, msg):
    p, out = run_t(tmp_path, line)
    for rc, err in out:
        assert rc != 0, err
        assert "%s in %s:5" % (msg, p) in err, err
