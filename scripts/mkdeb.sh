#!/bin/sh
# Build the Debian package from the install tree, with dpkg-deb:
#   sh scripts/mkdeb.sh BUILD VERSION   (make deb runs it)
# `make install` into BUILD/deb/root (PREFIX=/usr, SYSCONFDIR=/etc), plus
# the systemd unit, the logrotate file and the sysctl fragment from
# deploy/, the control files from deploy/debian/, man pages and changelog
# compressed as Debian wants, the binary stripped, and Depends made by
# dpkg-shlibdeps. Writes BUILD/portvakt_VERSION_ARCH.deb.
set -eu
BUILD=$1
VERSION=$2
ARCH=$(dpkg --print-architecture)
ROOT=$BUILD/deb/root
DEB=$BUILD/portvakt_${VERSION}_$ARCH.deb

rm -rf "$BUILD/deb"
mkdir -p "$ROOT/DEBIAN"
make --no-print-directory install DESTDIR="$ROOT" PREFIX=/usr SYSCONFDIR=/etc BUILD="$BUILD" >/dev/null
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$ROOT/usr/sbin/portvakt"

install -D -m 644 deploy/portvakt.service "$ROOT/lib/systemd/system/portvakt.service"
install -D -m 644 deploy/portvakt.logrotate "$ROOT/etc/logrotate.d/portvakt"
install -D -m 644 deploy/99-portvakt.conf "$ROOT/usr/lib/sysctl.d/99-portvakt.conf"
DOC=$ROOT/usr/share/doc/portvakt
install -m 644 deploy/debian/copyright "$DOC/copyright"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")/" \
    deploy/debian/changelog | gzip -9n >"$DOC/changelog.gz"
gzip -9n "$ROOT/usr/share/man/man8/portvakt.8" "$ROOT/usr/share/man/man5/portvakt.conf.5"

for f in conffiles postinst prerm postrm; do
    install -m "$( [ $f = conffiles ] && echo 644 || echo 755 )" "deploy/debian/$f" "$ROOT/DEBIAN/$f"
done

# dpkg-shlibdeps reads debian/control; give it a minimal one
mkdir -p "$BUILD/deb/src/debian"
printf 'Source: portvakt\n\nPackage: portvakt\nArchitecture: any\n' >"$BUILD/deb/src/debian/control"
SHLIBS=$(cd "$BUILD/deb/src" && dpkg-shlibdeps -O "$(cd - >/dev/null && cd "$ROOT" && pwd)/usr/sbin/portvakt" 2>/dev/null |
         sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@SHLIBS@/$SHLIBS/" \
    deploy/debian/control >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 644 "$ROOT/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "mkdeb: $DEB"
