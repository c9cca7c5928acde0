"""testssl.sh against portvakt's default TLS settings: a server with only
`listen ... ssl`, an ECDSA P-256 and an RSA 2048 certificate, and nothing
else about TLS, so the protocols, ciphers and curves are portvakt's
defaults. Writes testssl's findings to build/bench/testssl/ and prints
the protocol, cipher and vulnerability sections.

    /usr/bin/python3 bench/testssl.py [PORTVAKT_BINARY]

Needs Debian's testssl.sh package (not installed by scripts/setup.sh:
this is a manual check, not part of make test)."""

import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench", "testssl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cert(kind):
    key, crt = os.path.join(OUT, kind + ".key"), os.path.join(OUT, kind + ".crt")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if kind == "ec" else \
        ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost",
                    "-keyout", key, "-out", crt] + newkey, check=True, capture_output=True)
    return crt, key


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "portvakt")
    if not shutil.which("testssl"):
        sys.exit("testssl.sh is not installed (apt-get install testssl.sh)")
    os.makedirs(OUT, exist_ok=True)
    (ec_crt, ec_key), (rsa_crt, rsa_key) = cert("ec"), cert("rsa")
    port = free_port()
    conf = os.path.join(OUT, "portvakt.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1;\npid %s/pv.pid;\nerror_log %s/error.log;\nevents {}\n"
                "http {\n access_log off;\n server {\n  listen 127.0.0.1:%d ssl;\n"
                "  ssl_certificate %s;\n  ssl_certificate_key %s;\n"
                "  ssl_certificate %s;\n  ssl_certificate_key %s;\n"
                "  location / { return 200 \"ok\\n\"; }\n }\n}\n"
                % (OUT, OUT, port, ec_crt, ec_key, rsa_crt, rsa_key))
    gw = subprocess.Popen([binary, "-c", conf, "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        log = os.path.join(OUT, "testssl.txt")
        if os.path.exists(log):
            os.unlink(log)  # testssl appends
        subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "-p", "-s", "-f", "-U",
                        "--logfile", log, "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL)
        print(open(log).read())
    finally:
        gw.terminate()
        gw.wait()


if __name__ == "__main__":
    main()
