#!/bin/bash
# The brief's Compose stack (deploy/compose.yml), run for real and checked:
#
#   1. every service starts only after what it depends on reported healthy
#      (the states watched as the stack comes up), and portvakt is the only
#      one with published ports;
#   2. through the published ports 80 and 443: both services, TLS, a rate
#      limit answering 429 with RateLimit headers, its counters in Redis;
#   3. portvakt honours its limits: one worker for `cpus: 1.0` (auto, from
#      the cgroup quota), and doctor's CPU and memory checks pass inside;
#   4. a service restarted with a new address: portvakt follows its
#      name to the new address without a reload (`resolve`);
#   5. a graceful stop (docker stop: SIGTERM) with a request in flight: the
#      request is answered and portvakt exits 0.
#
# Needs docker with docker-compose (v1 or the v2 plugin; run with
# --compatibility so deploy.resources.limits apply) and a Debian 12 image:
# BASE_IMAGE (default debian:bookworm-slim; see README "Container image and
# Compose" for one made from a debootstrap root). Uses the host's ports 80
# and 443. Not part of .ci/run: CI has no container runtime.
#   sudo BASE_IMAGE=localhost/debian:bookworm bash scripts/compose-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
P=pvcompose
if docker compose version >/dev/null 2>&1; then DC=(docker compose); else DC=(docker-compose); fi
DC+=(--compatibility -p $P -f deploy/compose.yml)
T0=$SECONDS
say() { printf 'compose: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }
cleanup() {
    local rc=$?
    [ $rc -eq 0 ] || "${DC[@]}" logs --no-color --tail=30 2>&1 | sed 's/^/  | /' || true
    "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    docker rm -f ${P}_squatter >/dev/null 2>&1 || true
    say "$( [ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - T0)) s"
}
trap cleanup EXIT

cid() { "${DC[@]}" ps -q "$1"; }

say "build (base $BASE_IMAGE)"
"${DC[@]}" build -q
say "up"
# the start-up watched: every 0.2 s, each service's state; a dependant
# must not be seen running before each of its dependencies was seen
# healthy (docker keeps only the last 5 healthcheck results, so the
# order is taken as it happens)
"${DC[@]}" up -d >/tmp/$P-up.log 2>&1 &
up=$!
python3 - "$P" <<'PY' || fail "start-up order"
import subprocess, sys, time
project = sys.argv[1]
first_up, first_healthy = {}, {}
deadline = time.monotonic() + 300
poll = 0
while time.monotonic() < deadline:
    poll += 1
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=com.docker.compose.project=" + project,
                          "--format", '{{.Label "com.docker.compose.service"}}\t{{.Status}}'],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        svc, _, status = line.partition("\t")
        if status.startswith("Up"):
            first_up.setdefault(svc, poll)
        if "(healthy)" in status:
            first_healthy.setdefault(svc, poll)
    if "portvakt" in first_healthy:
        break
    time.sleep(0.2)
else:
    sys.exit("compose: portvakt never healthy: %r" % first_healthy)
for svc, dep in (("inventory", "database"), ("portvakt", "auth"), ("portvakt", "inventory"),
                 ("portvakt", "redis")):
    if first_healthy[dep] > first_up[svc]:
        sys.exit("compose: %s seen running (poll %d) before %s healthy (poll %d)"
                 % (svc, first_up[svc], dep, first_healthy[dep]))
    print("compose: ok: %s healthy (poll %d) before %s running (poll %d)"
          % (dep, first_healthy[dep], svc, first_up[svc]))
PY
wait $up || { cat /tmp/$P-up.log; fail "up"; }
for svc in database redis auth inventory; do
    [ -z "$(docker port "$(cid $svc)")" ] || fail "$svc publishes ports"
done
[ "$(docker port "$(cid portvakt)" | sed -n 's/^\([0-9]*\/tcp\) -> [^ ]*:\([0-9]*\)$/\1:\2/p' | sort -u | tr '\n' ' ')" = \
  "443/tcp:443 80/tcp:80 " ] || fail "portvakt's published ports: $(docker port "$(cid portvakt)")"
say "ok: only portvakt publishes ports (80, 443)"

# 2. the gateway at work
out=$(curl -s http://127.0.0.1/api/inventory/items)
grep -q '"wool socks"' <<<"$out" || fail "inventory through the gateway: $out"
out=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/api/auth/verify)
[ "$out" = 401 ] || fail "auth verify without a token: $out"
out=$(curl -sk https://127.0.0.1/api/inventory/items/2)
grep -q '"wool socks"' <<<"$out" || fail "inventory over TLS: $out"
codes=$(for _ in $(seq 1 60); do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1/api/auth/verify; done | sort | uniq -c)
grep -q ' 429$' <<<"$codes" || fail "no 429 from the rate limit: $codes"
hdrs=$(curl -si http://127.0.0.1/api/auth/verify | tr -d '\r')
grep -qi '^RateLimit-Policy:' <<<"$hdrs" || fail "no RateLimit-Policy header: $hdrs"
# the limit's script ran in Redis (its keys expire within a second or two)
calls=$(docker exec "$(cid redis)" redis-cli info commandstats |
        sed -n 's/^cmdstat_eval\(sha\)\{0,1\}:calls=\([0-9]*\),.*/\2/p' | awk '{ n += $1 } END { print n + 0 }')
[ "$calls" -ge 60 ] || fail "the limit ran $calls scripts in Redis, not one per request"
say "ok: services over HTTP and TLS, 401 from auth, 429 with RateLimit headers, $calls limit scripts run in Redis"

# 3. limits honoured
logs=$(docker logs "$(cid portvakt)" 2>&1)
grep -q 'worker_processes auto: 1 (cgroup' <<<"$logs" ||
    fail "workers not from the CPU quota: $(grep worker_processes <<<"$logs")"
say "ok: $(grep -o 'worker_processes auto: .*' <<<"$logs")"
doc=$(docker exec "$(cid portvakt)" /usr/sbin/portvakt doctor --json -c /etc/portvakt/portvakt.conf || true)
python3 -c '
import json, sys
c = {x["id"]: x for x in json.loads(sys.argv[1])["checks"]}
for k in ("cgroup_cpu", "cgroup_memory"):
    if c[k]["status"] != "ok" or "no limit" in c[k]["value"] or "no quota" in c[k]["value"]:
        sys.exit("doctor %s: %s %s" % (k, c[k]["status"], c[k]["value"]))
    print("compose: ok: doctor %s %s (%s)" % (k, c[k]["status"], c[k]["value"]))' "$doc" || fail "doctor in the container"

# 4. a service restarted with a new address
old=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(cid auth)")
net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cid auth)")
"${DC[@]}" stop auth >/dev/null
# another container on the network while auth is down, so auth comes back
# elsewhere
docker run -d --name ${P}_squatter --network "$net" localhost/portvakt-services:latest sleep 600 >/dev/null
"${DC[@]}" start auth >/dev/null
new=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(cid auth)")
[ "$new" != "$old" ] || fail "auth kept its address $old"
for _ in $(seq 1 60); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid auth)")" = healthy ] && break; sleep 1
done
# no reload: portvakt looks auth up again (`server auth:8080 resolve`), at
# once when a try at the old address fails
for _ in $(seq 1 20); do
    out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer x' http://127.0.0.1/api/auth/verify)
    [ "$out" = 200 ] && break; sleep 1
done
[ "$out" = 200 ] || fail "auth at $new: $out"
logs=$(docker logs "$(cid portvakt)" 2>&1)
! grep -q 'configuration reloaded' <<<"$logs" || fail "a reload was logged"
say "ok: auth moved $old -> $new, portvakt follows without a reload ($out)"

# 5. graceful stop with a request in flight
curl -s -o /tmp/$P-slow.out -w '%{http_code}' 'http://127.0.0.1/api/inventory/slow?s=3' >/tmp/$P-slow.code &
slow=$!
sleep 1
"${DC[@]}" stop portvakt >/dev/null
wait $slow || true
[ "$(cat /tmp/$P-slow.code)" = 200 ] || fail "request in flight: $(cat /tmp/$P-slow.code)"
rc=$(docker inspect -f '{{.State.ExitCode}}' "$(cid portvakt)")
[ "$rc" = 0 ] || fail "portvakt exited $rc on SIGTERM"
rm -f /tmp/$P-slow.out /tmp/$P-slow.code
say "ok: docker stop answered the request in flight (200) and portvakt exited 0"
