#!/bin/bash
# The Compose stack (deploy/compose.yml) under podman and podman-compose,
# on a machine that reaches Debian's packages but no image registry:
#
#   0. the base image: a debootstrap root of Debian 12 (minbase), imported
#      with `podman import` as localhost/debian:bookworm (kept when it
#      exists; BASE_REBUILD=1 makes it again);
#   1. podman-compose's dry run (1.0.3 has no `config`) and docker-compose
#      config (when installed) validate the file; both images are built
#      with `podman build --format docker` (the OCI format drops
#      HEALTHCHECK) on that base;
#   2. start-up order and gating: podman-compose creates the containers,
#      then each is started only once what it depends_on reported healthy
#      (podman-compose 1.0.3, Debian 12's, orders the containers but does
#      not wait for `condition: service_healthy`, and podman runs
#      healthchecks from systemd timers, which a machine without systemd
#      does not have: so this script runs each container's own healthcheck
#      with `podman healthcheck run` at its interval, as the timer would);
#      portvakt's healthcheck is its readiness endpoint, which must fail
#      while inventory is unhealthy;
#   3. through the published ports 80 and 443: both services, TLS, a rate
#      limit answering 429 with RateLimit headers, its scripts run in Redis;
#   4. a service restarted with a new address: portvakt follows its
#      name to the new address without a reload (`resolve`);
#   5. a graceful stop (podman stop: SIGTERM) with a request in flight: the
#      request is answered and portvakt exits 0.
#
# Needs root, podman, buildah, podman-compose, netavark and aardvark-dns,
# debootstrap, and free host ports 80 and 443. With the CNI network
# backend (Debian 12's podman picks it while CNI networks exist) podman
# turns name resolution off on an `internal: true` network, and the
# services would not find each other by name; so this runs podman with
# netavark, whose aardvark-dns answers on internal networks too (a
# containers.conf of its own: the host's, plus network_backend). Not part of
# .ci/run or `make test`: CI has no container runtime; the same topology
# runs as processes in tests/integration/test_compose_topology.py.
#   sudo bash scripts/podman-compose-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=localhost/debian:bookworm
P=pvpod
DC=(podman-compose -p $P -f deploy/compose.yml)
T0=$SECONDS
say() { printf 'podman: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }
cname() { echo "${P}_$1_1"; }
cleanup() {
    local rc=$?
    set +e
    if [ $rc -ne 0 ]; then
        for s in portvakt auth inventory; do
            podman logs --tail=${LOG_LINES:-15} "$(cname $s)" 2>&1 | sed "s/^/  | $s: /"
        done
    fi
    "${DC[@]}" down -v >/dev/null 2>&1
    podman rm -f ${P}_squatter >/dev/null 2>&1
    say "$( [ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - T0)) s"
}

# ---------------------------------------------------------------- containers.conf
# A containers.conf of its own (the host's, plus what this machine needs)
# when podman's defaults do not work here:
# - netavark as the network backend (see above);
# - the containers' nofile and nproc limits within this process's hard
#   limits: podman asks for more (nofile 1048576), and the runtime's
#   setrlimit fails ("setrlimit RLIMIT_NOFILE: Operation not permitted")
#   where the limits cannot be raised, e.g. inside another container;
# - runc as the runtime when crun runs no container (below).
conf=/tmp/$P-containers.conf
src=/etc/containers/containers.conf
[ -r $src ] || src=/usr/share/containers/containers.conf
cp $src $conf
own=0
if [ "$(podman info --format '{{.Host.NetworkBackend}}')" != netavark ]; then
    command -v /usr/lib/podman/netavark >/dev/null || fail "netavark is not installed (apt-get install netavark aardvark-dns)"
    if grep -q '^\[network\]' $conf; then
        sed -i '/^\[network\]/a network_backend = "netavark"' $conf
    else
        printf '[network]\nnetwork_backend = "netavark"\n' >>$conf
    fi
    own=1
fi
# nofile as this process has it, nproc 4096 (podman asks for more; a
# container's runtime could not set even this process's own nproc here)
limits=""
h=$(ulimit -Hn)
[ "$h" = unlimited ] || limits="\"nofile=$h:$h\", \"nproc=4096:4096\""
if [ -n "$limits" ]; then
    if grep -q '^\[containers\]' $conf; then
        sed -i "/^\[containers\]/a default_ulimits = [$limits]" $conf
    else
        printf '[containers]\ndefault_ulimits = [%s]\n' "$limits" >>$conf
    fi
    own=1
fi
if [ $own = 1 ]; then
    export CONTAINERS_CONF=$conf
    [ "$(podman info --format '{{.Host.NetworkBackend}}')" = netavark ] || fail "cannot switch podman to netavark"
    say "containers.conf: $conf ($(podman info --format '{{.Host.NetworkBackend}}'); ulimits: $limits)"
fi

# ---------------------------------------------------------------- 0. base
if [ "${BASE_REBUILD:-0}" = 1 ] || ! podman image exists $BASE; then
    t=$SECONDS
    root=$(mktemp -d /var/tmp/pv-bookworm.XXXXXX)
    say "debootstrap --variant=minbase bookworm -> $BASE"
    debootstrap --variant=minbase bookworm "$root/root" >"$root/debootstrap.log" 2>&1 ||
        { tail -20 "$root/debootstrap.log"; rm -rf --one-file-system "$root"; fail "debootstrap"; }
    rm -rf "$root/root/var/cache/apt/archives/"*.deb "$root/root/var/lib/apt/lists/"*_Packages
    tar -C "$root/root" --numeric-owner -c . | podman import -q - $BASE >/dev/null
    rm -rf --one-file-system "$root"
    say "base image made in $((SECONDS - t)) s"
fi
# the OCI runtime: crun, or runc when crun runs nothing here (crun
# refuses a hybrid cgroup hierarchy with controllers on its v2 part)
if ! podman run --rm $BASE true >/dev/null 2>&1 && command -v runc >/dev/null &&
   podman --runtime runc run --rm $BASE true >/dev/null 2>&1; then
    [ "${CONTAINERS_CONF:-}" = "$conf" ] || { export CONTAINERS_CONF=$conf; }
    sed -i '/^\[engine\]/a runtime = "runc"' $conf
    grep -q '^runtime = "runc"' $conf || printf '[engine]\nruntime = "runc"\n' >>$conf
    say "runtime: runc (crun runs no container here)"
fi
podman run --rm $BASE cat /etc/debian_version | grep -q '^12\.' || fail "$BASE is not Debian 12"

# ---------------------------------------------------------------- 1. config, build
trap cleanup EXIT
"${DC[@]}" down -v >/dev/null 2>&1 || true
# podman-compose 1.0.3 has no `config`: its dry run parses the file and
# prints the podman commands it would run; docker-compose (v1, when
# installed) validates it against the Compose schema
BASE_IMAGE=$BASE "${DC[@]}" --dry-run up -d --no-build >/tmp/$P-config.log 2>&1 ||
    { cat /tmp/$P-config.log; fail "podman-compose --dry-run up"; }
grep -q -- "--name=${P}_portvakt_1" /tmp/$P-config.log || { cat /tmp/$P-config.log; fail "no portvakt container in the dry run"; }
if command -v docker-compose >/dev/null; then
    docker-compose -f deploy/compose.yml config -q || fail "docker-compose config"
    say "ok: docker-compose config"
fi
say "ok: podman-compose --dry-run up"
t=$SECONDS
# the builds on the host's network: apt in a build container on a
# netavark network finds no resolver here
podman build -q --format docker --network host -f deploy/compose/Dockerfile.services --build-arg BASE=$BASE \
    -t localhost/portvakt-services:latest . >/dev/null
podman build -q --format docker --network host -f deploy/Dockerfile --build-arg BASE=$BASE -t localhost/portvakt:latest . >/dev/null
hc=$(podman image inspect localhost/portvakt:latest --format '{{.HealthCheck.Test}}')
grep -q '/readyz' <<<"$hc" || fail "the image's HEALTHCHECK: $hc"
say "ok: images built in $((SECONDS - t)) s; the image's HEALTHCHECK: $hc"

# ---------------------------------------------------------------- 2. order and gating
# (not with -d: podman-compose 1.0.3 passes it on to `podman create`)
BASE_IMAGE=$BASE "${DC[@]}" up --no-build --no-start >/tmp/$P-up.log 2>&1 || { cat /tmp/$P-up.log; fail "up --no-start"; }
for svc in database redis auth inventory portvakt; do
    podman container exists "$(cname $svc)" || { cat /tmp/$P-up.log; fail "podman-compose made no $svc container"; }
done
healthy() { podman healthcheck run "$(cname "$1")" >/dev/null 2>&1; }
started=()
# wait_healthy SVC: the healthcheck at its interval until it passes (60 s at most)
wait_healthy() {
    local i
    for i in $(seq 1 30); do healthy "$1" && return 0; sleep 2; done
    fail "$1 not healthy after 60 s"
}
declare -A DEPS=([database]="" [redis]="" [auth]="" [inventory]="database" [portvakt]="auth inventory redis")
for svc in database redis auth inventory portvakt; do
    for dep in ${DEPS[$svc]}; do
        healthy "$dep" || fail "$svc about to start before $dep is healthy"
    done
    podman start "$(cname $svc)" >/dev/null 2>&1 || fail "podman start $svc"
    started+=("$svc")
    wait_healthy "$svc"
    say "ok: $svc started after ${DEPS[$svc]:-nothing} reported healthy, and is healthy itself"
done
for svc in database redis auth inventory; do
    [ -z "$(podman port "$(cname $svc)")" ] || fail "$svc publishes ports"
done
ports=$(podman port "$(cname portvakt)" | sed -n 's/^\([0-9]*\/tcp\) -> [^ ]*:\([0-9]*\)$/\1:\2/p' | sort -u | tr '\n' ' ')
[ "$ports" = "443/tcp:443 80/tcp:80 " ] || fail "portvakt's published ports: $ports"
say "ok: only portvakt publishes ports (80, 443)"
# the first request through a limited route makes the worker's Redis
# client, which looks the name "redis" up then, on the worker's loop;
# made right after a container stopped (step below), the lookup took
# 15 s here (aardvark-dns 1.4 reloading), so it is made now
t=$SECONDS
out=$(curl -s -m 60 -o /dev/null -w '%{http_code}' http://127.0.0.1/api/auth/verify)
[ "$out" = 401 ] || fail "the first request: $out"
say "note: the first request through the Redis-limited route took $((SECONDS - t)) s"

# portvakt's readiness follows inventory's health: its database stopped,
# inventory's checks fail, and the gateway's healthcheck with them
podman stop -t 5 "$(cname database)" >/dev/null
for _ in $(seq 1 20); do healthy portvakt || break; sleep 1; done
! healthy portvakt || fail "portvakt still healthy with inventory's database down"
out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1/api/inventory/items)
[ "$out" = 503 ] || fail "inventory while unhealthy: $out, not 503"
say "ok: database stopped: portvakt's healthcheck (readiness) fails, inventory answers 503"
podman start "$(cname database)" >/dev/null
wait_healthy database
wait_healthy portvakt
say "ok: database back: portvakt healthy again"

# ---------------------------------------------------------------- 3. at work
out=$(curl -s -m 10 http://127.0.0.1/api/inventory/items)
grep -q '"wool socks"' <<<"$out" || fail "inventory through the gateway: $out"
out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1/api/auth/verify)
[ "$out" = 401 ] || fail "auth verify without a token: $out"
out=$(curl -sk -m 10 https://127.0.0.1/api/inventory/items/2)
grep -q '"wool socks"' <<<"$out" || fail "inventory over TLS: $out"
codes=$(for _ in $(seq 1 60); do curl -s -m 10 -o /dev/null -w '%{http_code}\n' http://127.0.0.1/api/auth/verify; done | sort | uniq -c)
grep -q ' 429$' <<<"$codes" || fail "no 429 from the rate limit: $codes"
hdrs=$(curl -si -m 10 http://127.0.0.1/api/auth/verify | tr -d '\r')
grep -qi '^RateLimit-Policy:' <<<"$hdrs" || fail "no RateLimit-Policy header: $hdrs"
calls=$(podman exec "$(cname redis)" redis-cli info commandstats |
        sed -n 's/^cmdstat_eval\(sha\)\{0,1\}:calls=\([0-9]*\),.*/\2/p' | awk '{ n += $1 } END { print n + 0 }')
[ "$calls" -ge 60 ] || fail "the limit ran $calls scripts in Redis, not one per request"
say "ok: services over HTTP and TLS, 401 from auth, 429 with RateLimit headers, $calls limit scripts run in Redis"
logs=$(podman logs "$(cname portvakt)" 2>&1)
say "ok: $(grep -o 'worker_processes auto: .*' <<<"$logs" | head -1)"

# ---------------------------------------------------------------- 4. new address
ip_of() { podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
old=$(ip_of "$(cname auth)")
net=$(podman inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cname auth)")
podman stop -t 5 "$(cname auth)" >/dev/null
# another container takes auth's address while auth is down
podman run -d --name ${P}_squatter --network "$net" --ip "$old" localhost/portvakt-services:latest sleep 600 >/dev/null
podman start "$(cname auth)" >/dev/null
new=$(ip_of "$(cname auth)")
[ "$new" != "$old" ] || fail "auth kept its address $old"
wait_healthy auth
# no reload: portvakt looks auth up again (`server auth:8080 resolve`), at
# once when a try at the old address fails
tries=""
for _ in $(seq 1 20); do
    out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer x' http://127.0.0.1/api/auth/verify) ||
        out="curl exit $?"
    tries="$tries${tries:+, }$out"
    [ "$out" = 200 ] && break; sleep 1
done
say "note: the answers while auth moved: $tries"
[ "$out" = 200 ] || fail "auth at $new: $out"
logs=$(podman logs "$(cname portvakt)" 2>&1)
! grep -q 'configuration reloaded' <<<"$logs" || fail "a reload was logged"
say "ok: auth moved $old -> $new, portvakt follows without a reload ($out)"

# ---------------------------------------------------------------- 5. graceful stop
curl -s -m 10 -o /dev/null -w '%{http_code}' 'http://127.0.0.1/api/inventory/slow?s=3' >/tmp/$P-slow.code &
slow=$!
sleep 1
podman stop -t 30 "$(cname portvakt)" >/dev/null
wait $slow || true
[ "$(cat /tmp/$P-slow.code)" = 200 ] || fail "request in flight: $(cat /tmp/$P-slow.code)"
rc=$(podman inspect -f '{{.State.ExitCode}}' "$(cname portvakt)")
[ "$rc" = 0 ] || fail "portvakt exited $rc on SIGTERM"
rm -f /tmp/$P-slow.code /tmp/$P-up.log /tmp/$P-config.log
say "ok: podman stop answered the request in flight (200) and portvakt exited 0"
