#!/bin/sh
# Runs every line `make run` prints under "Try:" as printed (its "(...)"
# remark dropped), in one shell so that TOKEN carries over, and checks
# each answer. A printed line without a check here fails.
#   sh scripts/check-demo.sh OUTPUT-OF-MAKE-RUN
# Used by scripts/fresh-machine.sh and tests/integration/test_make_run.py.
set -u
log=$1 fail=0 n=0
want() { # want LABEL PATTERN...: every pattern is in $out
    label=$1; shift
    for p in "$@"; do
        printf '%s\n' "$out" | grep -qE -- "$p" && continue
        echo "  FAIL ($label): no /$p/ in:"; printf '%s\n' "$out" | sed 's/^/    | /'
        fail=1; return
    done
    echo "  ok ($label)"
}
lines=$(sed -n '/^Try:/,/^$/p' "$log" | sed -n 's/^  \(curl .*\|TOKEN=.*\|for .*\)$/\1/p' |
        sed 's/  *([^()]*)$//')
[ -n "$lines" ] || { echo "no curl lines in the output of make run"; exit 1; }
while IFS= read -r line; do
    n=$((n + 1))
    printf '$ %s\n' "$line"
    case $line in
    TOKEN=*) eval "$line"; out=${TOKEN:-}
             want token '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'; continue ;;
    esac
    out=$(eval "$line" 2>&1) || { echo "  FAIL: exited $?"; fail=1; continue; }
    case $line in
    *" -X POST "*/api/auth/login*) want login '"token": "[^"]+"' '"user": "ada"' '"path": "/login"' ;;
    *"/api/auth/verify "*) want verify '"valid": true' '"user": "ada"' '"path": "/verify"' \
                             '"x_real_ip": "127.0.0.1"' ;;
    *" -si "*"/api/inventory/items") want no-credentials '^HTTP/1.1 401' \
                             '^WWW-Authenticate: Bearer realm="inventory"' ;;
    *"/api/inventory/items -H \"Authorization: Bearer \$TOKEN\"")
                             want jwt '"ski wax"' '"wool socks"' '"head torch"' '"path": "/items"' \
                                 '"x_user": "ada"'
                             first=$(printf '%s\n' "$out" | grep connection_from_gateway) ;;
    *"/api/inventory/items/2 -H 'X-API-Key: "*)
                             want api-key '"name": "wool socks"' '"path": "/items/2"' '"x_user": "demo-client"'
                             # same upstream connection as the request before:
                             # the gateway keeps it (one worker, one pool)
                             out=$(printf '%s\n' "$out" | grep connection_from_gateway)
                             want keepalive "^$(printf '%s' "${first:-none}" | sed 's/[.]/[.]/g')\$" ;;
    "for i in "*/api/limited/*) want burst '^200 200 200 429 $' ;;
    *" -si "*/api/limited/*) want rate-limit '^HTTP/1.1 429' '^RateLimit-Policy: ' '^RateLimit: ' '^Retry-After: ' ;;
    *" --cacert "*https://*/api/inventory/items/2*) want tls '"name": "wool socks"' '"x_user": "ada"' ;;
    *"/metrics | "*) want metrics '^portvakt_auth_.*jwt.* [1-9]' '^portvakt_auth_.*api_key.* [1-9]' \
                             '^portvakt_limit_req_.*rejected.* [1-9]' ;;
    *"/readyz") want ready '"status": ?"ready"' ;;
    *" -si "*/api/auth) want redirect '^HTTP/1.1 301' '^Location: http://[^/]+/api/auth/' ;;
    *" -si "*/nowhere) want not-found '^HTTP/1.1 404' ;;
    *) echo "  FAIL: no check for this line: add one to scripts/check-demo.sh"; fail=1 ;;
    esac
done <<LINES
$lines
LINES
[ "$n" -ge 13 ] || { echo "only $n lines printed, 13 expected"; fail=1; }
exit $fail
