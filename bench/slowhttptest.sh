#!/bin/sh
# Slow-client attacks with Debian's slowhttptest against portvakt (and, for
# comparison, NGINX 1.22 on the same config): slow headers (-H, slowloris),
# slow body (-B, R-U-Dead-Yet) and slow read (-X). Each run gets a fresh
# gateway and a fresh copy of the test suite's echo upstream, on 127.0.0.1.
#
#   bench/slowhttptest.sh                 # both servers, all three modes
#   ONLY=portvakt bench/slowhttptest.sh   # one server
#   CONNS=300 LENGTH=30 bench/slowhttptest.sh
#
# Writes bench/results/slowhttptest.md (the commands, a summary table and
# the tool's last status block per run) unless OUT is set. Scratch files go
# to build/bench/slowhttptest/. Not part of `make test`.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-/usr/bin/python3}
PORTVAKT=${PORTVAKT:-$ROOT/build/portvakt}
NGINX=${NGINX:-/usr/sbin/nginx}
ONLY=${ONLY:-portvakt nginx}
CONNS=${CONNS:-300}       # connections per attack
RATE=${RATE:-100}         # new connections per second
LENGTH=${LENGTH:-30}      # seconds per attack
TIMEOUT=${TIMEOUT:-5s}    # client_header/client_body/send/keepalive timeout in the config
OUT=${OUT:-$ROOT/bench/results/slowhttptest.md}
WORK=$ROOT/build/bench/slowhttptest

command -v slowhttptest >/dev/null || { echo "slowhttptest is not installed (apt-get install slowhttptest)" >&2; exit 1; }
[ -x "$PORTVAKT" ] || { echo "$PORTVAKT is not built (make)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK" "$(dirname "$OUT")"

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

UP_PID=
GW_PID=
cleanup() {
    if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; fi
    if [ -n "$UP_PID" ]; then kill "$UP_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

# The echo upstream of the integration tests; /big answers 1 MiB, so slow
# readers have something to read slowly. On SIGTERM it writes "connections
# accepted, most open at once" to STATSFILE.
UPSTREAM_PY='
import signal, sys, time
sys.path.insert(0, sys.argv[1])
from conftest import EchoUpstream, Reply
up = EchoUpstream(port=int(sys.argv[2]))
up.handler = lambda q: Reply(200, body_size=1 << 20, chunk_size=65536) if q.target.startswith("/big") else None

def done(*_):
    with open(sys.argv[3], "w") as f:
        f.write("%d %d\n" % (up.connections, up.max_open))
    sys.exit(0)

signal.signal(signal.SIGTERM, done)
while True:
    time.sleep(3600)
'

wait_port() {  # wait_port PORT: until something accepts on it (10 s at most)
    for _ in $(seq 200); do
        "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

start_upstream() {  # start_upstream PORT STATSFILE
    "$PY" -c "$UPSTREAM_PY" "$ROOT/tests/integration" "$1" "$2" >>"$WORK/upstream.log" 2>&1 &
    UP_PID=$!
    wait_port "$1" || { echo "the upstream did not start:" >&2; cat "$WORK/upstream.log" >&2; exit 1; }
}

stop_upstream() {
    kill "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
    UP_PID=
}

conf() {  # conf GATEWAY_PORT UPSTREAM_PORT -> the config (NGINX syntax, run by both)
    cat <<EOF
worker_processes 1;
events { worker_connections 4096; }
http {
    access_log off;
    client_header_timeout $TIMEOUT;
    client_body_timeout $TIMEOUT;
    send_timeout $TIMEOUT;
    keepalive_timeout $TIMEOUT;
    upstream up { server 127.0.0.1:$2 max_fails=0; keepalive 16; }
    server {
        listen 127.0.0.1:$1 backlog=1024;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

start_gateway() {  # start_gateway NAME PORT UPSTREAM_PORT DIR
    mkdir -p "$4"
    conf "$2" "$3" >"$4/gateway.conf"
    if [ "$1" = portvakt ]; then
        "$PORTVAKT" -c "$4/gateway.conf" >"$4/out.log" 2>"$4/err.log" &
    else
        # NGINX as the tests run it (foreground, one process, files in DIR);
        # no temp files: NGINX then stops reading the upstream when its
        # buffers are full, as portvakt does, instead of spooling to disk
        "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); from conftest import nginx_conf
print(nginx_conf(open(sys.argv[2]).read(), sys.argv[3]).replace("http {", "http { proxy_max_temp_file_size 0;", 1))' \
            "$ROOT/tests/integration" "$4/gateway.conf" "$4" >"$4/nginx.conf"
        "$NGINX" -p "$4" -e stderr -c "$4/nginx.conf" >"$4/out.log" 2>"$4/err.log" &
    fi
    GW_PID=$!
    wait_port "$2" && return 0
    echo "$1 did not start:" >&2
    cat "$4/err.log" >&2
    exit 1
}

stop_gateway() {  # prints the gateway's peak RSS (VmHWM, kB), then stops it
    awk '/^VmHWM:/ {print $2}' "/proc/$GW_PID/status" 2>/dev/null || echo "?"
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=
}

args_for() {  # args_for MODE PORT
    case $1 in
    H) echo "-H -c $CONNS -r $RATE -i 3 -x 24 -l $LENGTH -p 3 -u http://127.0.0.1:$2/" ;;
    B) echo "-B -c $CONNS -r $RATE -i 3 -x 10 -s 65536 -l $LENGTH -p 3 -u http://127.0.0.1:$2/" ;;
    X) echo "-X -c $CONNS -r $RATE -k 2 -n 1 -w 512 -y 1024 -z 32 -l $LENGTH -p 3 -u http://127.0.0.1:$2/big" ;;
    esac
}

strip_colours() {
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1"
}

# The tool's last status block and how the test ended.
last_status() {
    strip_colours "$1" | awk '
        /slow HTTP test status on/ { block = $0 "\n"; grab = 1; next }
        grab && /^(initializing|pending|connected|error|closed|service available):/ { block = block $0 "\n" }
        /^Test ended/ { ended = $0 }
        /^Exit status:/ { exitst = $0 }
        END { printf "%s%s\n%s\n", block, ended, exitst }'
}

ended() {  # "5 s, No open connections left"
    strip_colours "$1" | awk '
        /^Test ended on/ { s = $4; sub(/[a-z]+$/, "", s) }
        /^Exit status:/ { sub(/^Exit status: */, ""); e = $0 }
        END { printf "%s s, %s", s, e }'
}

# From the per-second CSV (seconds,closed,pending,connected,service
# available -- the last column is 0 when the probe failed): the most attack
# connections open at once and the last sample; then the seconds unavailable.
csv_connected() {
    awk -F, 'NR > 1 && $1 != "" {
            if ($4 + 0 > peak) peak = $4 + 0
            last = sprintf("%d at %d s", $4, $1)
        }
        END { printf "%d | %s", peak, last }' "$1"
}

csv_unavailable() {
    awk -F, 'NR > 1 && $1 != "" && $5 + 0 == 0 { down++ } END { printf "%d", down }' "$1"
}

{
    echo "# slowhttptest against portvakt and NGINX"
    echo
    echo "Made by \`bench/slowhttptest.sh\` on $(date -u +%Y-%m-%d) ($(uname -m), $(nproc) CPUs;"
    echo "$(slowhttptest -h 2>&1 | sed -n 's/.*version \([0-9.]*\).*/slowhttptest \1/p' | head -1);" \
         "$("$PORTVAKT" -v 2>&1 | head -1); $("$NGINX" -v 2>&1 | head -1))."
    echo "Each attack runs $LENGTH s with $CONNS connections opened at $RATE per second against"
    echo "a fresh gateway (one worker) whose client_header_timeout, client_body_timeout,"
    echo "send_timeout and keepalive_timeout are $TIMEOUT, in front of the integration tests'"
    echo "echo upstream. The tool's probe (an ordinary request each second, 3 s timeout)"
    echo "decides \"service available\"."
    echo
    echo "Commands (PORT is the gateway's port, chosen free per run):"
    echo
    echo '```'
    for m in H B X; do echo "slowhttptest $(args_for $m PORT) -g -o FILE"; done
    echo '```'
    echo
    echo "Summary (connected: attack connections the server held open, from the tool's"
    echo "per-second CSV; probe unavailable: seconds the probe failed; upstream"
    echo "connections: accepted by the echo upstream, one of them the readiness check):"
    echo
    echo "| mode | server | peak connected | last sample | ended | probe unavailable (s) | gateway peak RSS (kB) | upstream connections (most open at once) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$WORK/summary.md"
: >"$WORK/blocks.md"

for mode in H B X; do
    for name in $ONLY; do
        dir=$WORK/$name-$mode
        up=$(free_port)
        start_upstream "$up" "$dir.upstream"
        port=$(free_port)
        start_gateway "$name" "$port" "$up" "$dir"
        echo "slowhttptest -$mode against $name ($LENGTH s)" >&2
        # shellcheck disable=SC2046
        slowhttptest $(args_for "$mode" "$port") -g -o "$dir/stats" >"$dir/slowhttptest.out" 2>&1 || true
        rss=$(stop_gateway)
        stop_upstream
        upconns="?"
        upmax="?"
        if [ -s "$dir.upstream" ]; then read -r upconns upmax <"$dir.upstream"; fi
        echo "| -$mode | $name | $(csv_connected "$dir/stats.csv") | $(ended "$dir/slowhttptest.out")" \
             "| $(csv_unavailable "$dir/stats.csv") | $rss | $upconns ($upmax) |" >>"$WORK/summary.md"
        {
            echo "### -$mode, $name"
            echo
            echo '```'
            last_status "$dir/slowhttptest.out"
            echo '```'
            echo
        } >>"$WORK/blocks.md"
    done
done

{
    cat "$WORK/summary.md"
    echo
    echo "How to read it:"
    echo
    echo "- -H (slowloris): a header line every 3 s. client_header_timeout bounds the whole"
    echo "  head, so every attack connection is closed about $TIMEOUT after it opened, however"
    echo "  often it sends; the service stays available."
    echo "- -B (slow body): a few body bytes every 3 s. client_body_timeout is the gap between"
    echo "  two reads (as in NGINX), so these connections are legitimately kept until the body"
    echo "  is done. portvakt streams request bodies, so each slow body also holds an upstream"
    echo "  connection (last column); NGINX buffers the body first and holds none."
    echo "- -X (slow read): the client reads a few bytes every second with a tiny window. Each"
    echo "  read is progress, so send_timeout does not fire; what matters is that memory stays"
    echo "  bounded per connection (back-pressure) and the service stays available."
    echo
    echo "## The tool's last status block per run"
    echo
    cat "$WORK/blocks.md"
} >"$OUT"
echo "wrote $OUT" >&2
