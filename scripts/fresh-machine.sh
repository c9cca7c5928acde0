#!/bin/bash
# The README's two commands on a fresh Debian 12 machine.
#
# Builds a minimal Debian 12 root (debootstrap --variant=minbase bookworm,
# plus git, make, sudo and ca-certificates, as a freshly installed host
# has), mounts /proc, /dev, /dev/pts, /dev/shm and /sys into it, writes
# /etc/hosts, clones the commit under test into it and, inside a chroot, as
# an ordinary user with sudo rights:
#   1. runs `make test` (scripts/setup.sh installs the packages through sudo);
#   2. runs `make run`, sends the curl lines it prints and checks the
#      answers, then stops it with SIGTERM.
#   3. runs `make deb`, installs the package with apt, and runs the installed
#      portvakt with the installed config under the systemd unit's own
#      settings (tests/integration/unit_ns.py), then purges the package.
# The chroot shares the host's network namespace: the tests and the example
# pick free loopback ports at run time, so this must not run at the same
# time as another test run, but may run right after one (as .ci/run does).
#
# Needs root. The chroot is torn down (processes ended, everything
# unmounted in reverse order, the root deleted) on any exit.
#
# Environment:
#   FRESH_CACHE=1|0   keep the debootstrap result as a tarball in
#                     build/fresh-cache/ and start from it next time (only
#                     the bare minbase root is cached, never what setup.sh
#                     installs). Default: 1 for local runs, 0 when CI=true.
#   FRESH_MIRROR=URL  Debian mirror; default: the one apt uses on this host.
#   FRESH_FUZZ=N      FUZZ_SMOKE seconds for the fuzz targets (default 5).
#   FRESH_WERROR=1    build with warnings as errors (CI sets it).
#   FRESH_KEEP=1      leave the root in place (unmounted) for a post-mortem.
#   FRESH_USER=root   run make test and make run as root (default: a user
#                     "dev" with sudo rights).
#   FRESH_DIR=DIR     where to build the root (default: a new directory
#                     under /var/tmp). Never under build/: `make clean`
#                     must not meet a mounted /dev.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
EXTRA=git,make,sudo,ca-certificates
# An ordinary user with sudo rights, as a developer's machine has; CI runs
# the suites as root on the host too, under ASan. FRESH_USER=root runs them
# as root here.
USERNAME=${FRESH_USER:-dev}
[ "$USERNAME" = root ] && HOMEDIR=/root || HOMEDIR=/home/$USERNAME
# The fuzz step proves that the targets build and run on a fresh machine;
# `make fuzz` runs them longer. CI asks for 10 s each.
FUZZ=${FRESH_FUZZ:-5}
WERROR=${FRESH_WERROR:-}
if [ "${CI:-}" = true ]; then CACHE=${FRESH_CACHE:-0}; else CACHE=${FRESH_CACHE:-1}; fi
CACHE_TAR=$SRC/build/fresh-cache/$SUITE-minbase.tar
CACHE_DAYS=7

T0=$SECONDS
say() { printf 'fresh: %s\n' "$*"; }
elapsed() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

[ "$(id -u)" -eq 0 ] || { echo "fresh: needs root (debootstrap, mount, chroot)" >&2; exit 1; }

# ------------------------------------------------------------ mirror

# The Debian mirror (and security mirror) apt uses here, from one-line
# sources.list files and deb822 .sources files alike.
apt_uri() { # $1: suite
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        case $f in
        *.sources)
            awk -v want="$1" '
                function flush() { if (deb && uri != "" && hit && !done) { print uri; done = 1 }
                                   deb = 0; uri = ""; hit = 0 }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]*#/ { next }
                tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                tolower($1) == "uris:" { uri = $2 }
                tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) hit = 1 }
                END { flush() }' "$f" ;;
        *)
            awk -v want="$1" '
                $1 == "deb" { i = 2                 # skip [options]
                              if ($2 ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                              if ($(i + 1) == want) { print $i; exit } }' "$f" ;;
        esac
    done | head -n 1
}
MIRROR=${FRESH_MIRROR:-$(apt_uri "$SUITE")}
SECURITY=$(apt_uri "$SUITE-security")

# ------------------------------------------------------------ teardown

DIR=${FRESH_DIR:-$(mktemp -d /var/tmp/portvakt-fresh.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)   # compared with /proc/PID/root below
ROOT=$DIR/root
[ ! -e "$ROOT" ] || { echo "fresh: $ROOT exists; remove it or choose another FRESH_DIR" >&2; exit 1; }
MOUNTS=()   # in mount order; unmounted in reverse

chroot_pids() { # processes whose root is the chroot
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$ROOT" ] && echo "${p#/proc/}"
    done
    return 0
}

teardown() {
    local rc=$? i pids
    set +e
    trap - EXIT INT TERM
    pids=$(chroot_pids)
    if [ -n "$pids" ]; then
        say "ending processes left in the chroot: $(echo $pids)"
        kill -TERM $pids 2>/dev/null; sleep 2
        pids=$(chroot_pids); [ -n "$pids" ] && kill -KILL $pids 2>/dev/null; sleep 0.5
    fi
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" ||
            say "could not unmount ${MOUNTS[i]}"
    done
    if grep -q " $DIR/" /proc/self/mounts; then
        say "still mounted under $DIR; left in place"
    elif [ "${FRESH_KEEP:-0}" = 1 ]; then
        say "root kept in $ROOT"
    else
        rm -rf --one-file-system "$ROOT" "$DIR/debootstrap.log"
        rmdir "$DIR" 2>/dev/null
    fi
    say "$( [ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $(elapsed "$T0")"
    exit $rc
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() { # mnt TARGET MOUNT-ARGS...
    local target=$ROOT$1; shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTS+=("$target")
}

# A command in the chroot as the ordinary user, with a clean environment.
AS_USER=(chroot "--userspec=$USERNAME:$USERNAME" "$ROOT" env -i "HOME=$HOMEDIR"
         "USER=$USERNAME" "LOGNAME=$USERNAME" LANG=C.UTF-8 TERM=dumb
         PATH=/usr/local/bin:/usr/bin:/bin)
in_root() { "${AS_USER[@]}" "$@" </dev/null; }

# ------------------------------------------------------------ the root

t=$SECONDS
if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi
mkdir -p "$ROOT"
if [ "$CACHE" = 1 ] && [ -n "$(find "$CACHE_TAR" -mtime -$CACHE_DAYS 2>/dev/null)" ]; then
    say "root from $CACHE_TAR"
    tar -C "$ROOT" --numeric-owner -xpf "$CACHE_TAR"
else
    say "debootstrap --variant=minbase $SUITE (+ $EXTRA) from ${MIRROR:-the debootstrap default mirror}"
    debootstrap --variant=minbase --include=$EXTRA $SUITE "$ROOT" ${MIRROR:+"$MIRROR"} \
        >"$DIR/debootstrap.log" 2>&1 || { tail -30 "$DIR/debootstrap.log"; exit 1; }
    if [ "$CACHE" = 1 ]; then
        mkdir -p "$(dirname "$CACHE_TAR")"
        tar -C "$ROOT" --numeric-owner -cf "$CACHE_TAR.new" . && mv "$CACHE_TAR.new" "$CACHE_TAR"
    fi
fi
say "root ready in $(elapsed $t)"

# What a freshly installed host has and a debootstrap root lacks.
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$(hostname)" >"$ROOT/etc/hosts"
# apt: the release, its updates and security, as an installed host has.
MIRROR=${MIRROR:-$(awk '$1 == "deb" { print $2; exit }' "$ROOT/etc/apt/sources.list")}
{
    echo "deb $MIRROR $SUITE main"
    echo "deb $MIRROR $SUITE-updates main"
    [ -z "$SECURITY" ] || echo "deb $SECURITY $SUITE-security main"
} >"$ROOT/etc/apt/sources.list"
if [ "$USERNAME" != root ]; then
    chroot "$ROOT" useradd -m -s /bin/bash "$USERNAME"
    echo "$USERNAME ALL=(ALL) NOPASSWD: ALL" >"$ROOT/etc/sudoers.d/$USERNAME"
    chmod 440 "$ROOT/etc/sudoers.d/$USERNAME"
fi

# the root a mount point of its own, as / is on a real machine: unshare
# (the package step) makes / private in its namespace, which needs that
mnt "" --bind "$ROOT"
mnt /proc -t proc proc
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs -o mode=1777,nosuid,nodev tmpfs
mnt /sys -t sysfs -o ro sysfs

# The commit under test, as a clone (uncommitted changes are not in it).
# --no-local: a local clone hard-links the object files, and the chown
# below would then change the owner of the checkout's own objects. The
# checkout may belong to another user than root (sudo): safe.directory.
git_src() { git -c safe.directory='*' "$@"; }
COMMIT=$(git_src -C "$SRC" rev-parse HEAD)
[ -z "$(git_src -C "$SRC" status --porcelain --untracked-files=no)" ] ||
    say "note: the checkout has uncommitted changes; testing $COMMIT without them"
CLONE=$HOMEDIR/portvakt
UPLOAD_PACK="git -c safe.directory='*' upload-pack"
git_src clone -q --no-local -u "$UPLOAD_PACK" "$SRC" "$ROOT$CLONE"
# HEAD too, in case it is detached and on no branch
git_src -C "$ROOT$CLONE" fetch -q --upload-pack "$UPLOAD_PACK" "$SRC" HEAD
git -C "$ROOT$CLONE" -c advice.detachedHead=false checkout -q "$COMMIT"
chroot "$ROOT" chown -R "$USERNAME:$USERNAME" "$CLONE"
say "testing $(git_src -C "$SRC" log -1 --format='%h %s' "$COMMIT")"

# ------------------------------------------------------------ make test

t=$SECONDS
say "make test (FUZZ_SMOKE=$FUZZ) as $USERNAME"
in_root sh -c "cd $CLONE && make test FUZZ_SMOKE=$FUZZ${WERROR:+ WERROR=1}"
say "make test passed in $(elapsed $t)"

# ------------------------------------------------------------ make run

t=$SECONDS
say "make run"
RUNLOG=$HOMEDIR/make-run.log
# Its own session and process group (numbered as its pid), so that one
# SIGTERM reaches make and examples/run.py alike.
"${AS_USER[@]}" setsid -w sh -c "cd $CLONE && exec make run" </dev/null >"$ROOT$RUNLOG" 2>&1 &
RUNPID=$!
for _ in $(seq 1 300); do
    grep -q 'Ctrl-C stops everything' "$ROOT$RUNLOG" && break
    kill -0 $RUNPID 2>/dev/null || { cat "$ROOT$RUNLOG"; say "make run exited early"; exit 1; }
    sleep 0.2
done
grep -q 'Ctrl-C stops everything' "$ROOT$RUNLOG" || { cat "$ROOT$RUNLOG"; say "make run did not start"; exit 1; }

# Every line that `make run` prints under "Try:" is run as printed and
# its answer checked (scripts/check-demo.sh; the integration suite runs
# the same check on its own run of the example). A printed line without
# a check there fails the job.
rc=0
in_root sh "$CLONE/scripts/check-demo.sh" "$RUNLOG" || rc=$?
kill -TERM -- -$RUNPID 2>/dev/null || kill -TERM $RUNPID
stopped=0
for _ in $(seq 1 50); do kill -0 $RUNPID 2>/dev/null || { stopped=1; break; }; sleep 0.2; done
wait $RUNPID 2>/dev/null || true
echo "--- make run output"; sed 's/^/  | /' "$ROOT$RUNLOG"
[ $rc -eq 0 ] || { say "make run: the answers were not as expected"; exit 1; }
[ $stopped = 1 ] || { say "make run did not stop on SIGTERM"; exit 1; }
[ -z "$(chroot_pids)" ] || { say "make run left processes behind: $(chroot_pids)"; exit 1; }
say "make run passed in $(elapsed $t)"

# ------------------------------------------------------------ the package

# make deb, the package installed with apt (its dependencies and the
# portvakt user come with it), and the installed portvakt run with the
# installed config under the unit's own settings (tests/integration/
# unit_ns.py, in private mount and network namespaces: systemd cannot
# boot in a chroot).
t=$SECONDS
say "make deb, apt install, the unit's settings"
in_root sh -c "cd $CLONE && make deb" | tail -1
DEB=$(cd "$ROOT$CLONE/build" && ls portvakt_*.deb)
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$CLONE/build/$DEB" </dev/null >/dev/null
chroot "$ROOT" getent passwd portvakt >/dev/null || { say "the package made no portvakt user"; exit 1; }
chroot "$ROOT" /usr/sbin/portvakt -t -c /etc/portvakt/portvakt.conf
chroot "$ROOT" unshare --mount --net --fork /usr/bin/python3 "$CLONE/tests/integration/unit_ns.py" \
    / /lib/systemd/system/portvakt.service portvakt </dev/null >"$ROOT/tmp/unit.json" ||
    { cat "$ROOT/tmp/unit.json"; say "portvakt under the unit's settings failed"; exit 1; }
python3 - "$ROOT/tmp/unit.json" <<'PY'
import json, sys
seen = json.load(open(sys.argv[1]))
want = {"notify": ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], "answer": "HTTP/1.1 200 OK",
        "answer_after_reload": "HTTP/1.1 200 OK", "answer_in_flight": "HTTP/1.1 200 OK", "exit": 0}
bad = {k: seen.get(k) for k in want if seen.get(k) != want[k]}
if bad or seen.get("uid") == "0":
    sys.exit("fresh: unexpected: %r (uid %s)" % (bad, seen.get("uid")))
print("fresh: the installed package ran as uid %s: %s" % (seen["uid"], ", ".join(seen["notify"])))
PY
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq portvakt </dev/null >/dev/null
say "package passed in $(elapsed $t)"
