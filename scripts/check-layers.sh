#!/bin/sh
# The include order between src/ directories (docs/ARCHITECTURE.md,
# "Layers"): a file may include headers of its own directory and of the
# directories below it, never above. KNOWN lists the back edges that are
# still to be removed; any other one fails `make lint`, and so does a
# KNOWN edge that no longer exists (so the list only shrinks).
set -eu
cd "$(dirname "$0")/.."

ORDER="core policy host config proc http upstream proxy doctor main"
KNOWN=""

rank() {
    i=0
    for d in $ORDER; do
        [ "$d" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
    echo "check-layers: directory src/$1 has no place in ORDER" >&2
    exit 2
}

fail=0
seen=""
for f in src/*/*.[ch] src/main.c; do
    from=$(dirname "$f" | sed 's|^src/||; s|^src$|main|')
    for to in $(sed -n 's|^#include "\.\./\([a-z]*\)/.*|\1|p; s|^#include "\([a-z]*\)/.*|\1|p' "$f" | sort -u); do
        [ "$to" = "$from" ] && continue
        if [ "$(rank "$to")" -gt "$(rank "$from")" ]; then
            case " $KNOWN " in
            *" $from>$to "*) seen="$seen $from>$to" ;;
            *) echo "check-layers: $f includes src/$to/, which is above src/$from/" >&2; fail=1 ;;
            esac
        fi
    done
done
for k in $KNOWN; do
    case " $seen " in
    *" $k "*) ;;
    *) echo "check-layers: $k is gone; remove it from KNOWN" >&2; fail=1 ;;
    esac
done
exit $fail
