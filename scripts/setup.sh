#!/bin/sh
# Install the Debian 12 packages portvakt needs to build and test, when
# missing. Idempotent and silent when everything is present; never starts
# a service (nginx, haproxy and redis are started by the tests themselves).
set -eu

# Packages are installed without their recommendations, so whatever the
# build and tests use must be named here, not come in as a recommendation:
# libclang-rt-dev holds clang's sanitizer and libFuzzer runtimes, and
# openssl is the command the tests use to make keys and hashes. perl and
# the perl modules run NGINX's own test suite (make nginx-suite; FCGI for
# its fastcgi files).
# libsystemd-dev: sd_notify; groff-base checks the man pages, lintian
# checks make deb; dnsmasq-base is a real DNS server for the discovery
# tests (the binary alone, no service); docker-compose (v1, Python, no
# daemon needed) validates deploy/compose.yml against the Compose schema.
# chromium (with chromium-driver and python3-selenium) and firefox-esr
# (driven over its own Marionette port: Debian has no geckodriver) load the
# dashboard in the integration tests.
PKGS="build-essential pkg-config node-llhttp libssl-dev libpcre2-dev \
libcmocka-dev libhiredis-dev libnghttp2-dev python3-pytest python3-yaml python3-h2 \
nginx-light haproxy wrk redis-server curl clang libclang-rt-dev valgrind \
libcrypt-dev gnuplot-nox slowhttptest cppcheck clang-tidy openssl nghttp2-client \
perl libio-socket-ssl-perl libprotocol-websocket-perl libfcgi-perl python3-websockets \
zlib1g-dev libbrotli-dev python3-brotli libsystemd-dev groff-base lintian \
libjansson-dev python3-prometheus-client python3-jsonschema chromium chromium-driver \
firefox-esr python3-selenium libc-ares-dev dnsmasq-base docker-compose"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "setup: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "setup: need root (or sudo) to install:$missing" >&2
    exit 1
fi

# policy-rc.d 101 keeps the packages' maintainer scripts from starting
# nginx, haproxy or redis while they are being installed. An existing
# policy file is left alone.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $missing >/dev/null
echo "setup: done"
