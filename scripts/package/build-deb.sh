#!/usr/bin/env bash
# Builds the propgate-gateway .deb for one Debian architecture with dpkg-deb.
#
#   scripts/package/build-deb.sh ARCH [OUTDIR]     ARCH: amd64, arm64 or armhf
#
# Environment: VERSION (default: git describe), GO (default: go).
# Why dpkg-deb and not nfpm: the package is a handful of files, dpkg-deb is
# what Debian itself builds with (installed on every Debian/Ubuntu machine,
# no new Go dependencies or tool downloads), and the same dpkg tools check
# the result. What a packaging library would add (rpm, apk) no site asked for.
set -euo pipefail
cd "$(dirname "$0")/../.."

arch=${1:?usage: build-deb.sh amd64|arm64|armhf [OUTDIR]}
out=${2:-bin/package}
GO=${GO:-go}
pkg=propgate-gateway

case "$arch" in
  amd64) goarch=amd64; goarm= ;;
  arm64) goarch=arm64; goarm= ;;
  armhf) goarch=arm;   goarm=7 ;;
  *) echo "build-deb: unknown architecture $arch (amd64, arm64, armhf)" >&2; exit 2 ;;
esac

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
# A Debian version starts with a digit: v1.2.3-4-gabc → 1.2.3+4.gabc;
# an untagged tree → 0~git<commit date>.<describe>.
if [[ $VERSION =~ ^v?([0-9]+\.[0-9][0-9A-Za-z.]*)(-(.*))?$ ]]; then
  debver=${BASH_REMATCH[1]}
  [ -n "${BASH_REMATCH[3]}" ] && debver+="+${BASH_REMATCH[3]//-/.}"
else
  date=$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date -u +%Y%m%d)
  debver="0~git${date}.${VERSION//-/.}"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
umask 022

# The binary: static, web assets embedded, version stamped, reproducible.
mkdir -p "$root/usr/bin"
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
  "$GO" build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$VERSION" \
  -o "$root/usr/bin/gateway" ./gateway

install -D -m 0644 configs/site.example.yaml           "$root/etc/$pkg/gateway.yaml"
install -D -m 0600 scripts/package/gateway.env         "$root/etc/$pkg/gateway.env"
install -D -m 0644 scripts/package/$pkg.service        "$root/lib/systemd/system/$pkg.service"
install -D -m 0644 scripts/package/sysusers.conf       "$root/usr/lib/sysusers.d/$pkg.conf"
install -d -m 0755                                     "$root/var/lib/$pkg"   # postinst: 0750 propgate
install -D -m 0644 scripts/package/lintian-overrides   "$root/usr/share/lintian/overrides/$pkg"
install -D -m 0644 scripts/package/copyright           "$root/usr/share/doc/$pkg/copyright"
install -D -m 0644 README.md                           "$root/usr/share/doc/$pkg/README.md"
gzip -9n < README.md > "$root/usr/share/doc/$pkg/README.md.gz" && rm "$root/usr/share/doc/$pkg/README.md"
mkdir -p "$root/usr/share/man/man1"
gzip -9n < scripts/package/gateway.1 > "$root/usr/share/man/man1/gateway.1.gz"
stamp=$(git log -1 --format=%cD 2>/dev/null || date -uR)
cat > "$root/changelog" <<CHANGES
$pkg ($debver) unstable; urgency=medium

  * Built from $VERSION.

 -- PropGate Packaging <packaging@propgate.invalid>  $stamp
CHANGES
gzip -9n < "$root/changelog" > "$root/usr/share/doc/$pkg/changelog.gz" && rm "$root/changelog"

mkdir -p "$root/DEBIAN"
install -m 0755 scripts/package/postinst scripts/package/prerm scripts/package/postrm "$root/DEBIAN/"
printf '/etc/%s/gateway.yaml\n/etc/%s/gateway.env\n' "$pkg" "$pkg" > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $debver
Architecture: $arch
Maintainer: PropGate Packaging <packaging@propgate.invalid>
Installed-Size: $size
Depends: adduser
Recommends: systemd
Section: net
Priority: optional
Homepage: https://github.com/propgate/gateway
Description: facilities-monitoring gateway for property management
 Collects readings from pump rooms, power panels, leak sensors, lifts and
 lighting over Modbus and MQTT, keeps them in InfluxDB through a durable
 disk queue, raises ISA-18.2 alarms, opens work orders with service-level
 deadlines, runs emergency plans and alerts the engineers on duty. Serves
 the wall display, the operator console and the phone pages over HTTPS.
 .
 Runs as the hardened systemd service propgate-gateway.
CONTROL
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/${pkg}_${debver}_${arch}.deb"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
  dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
