#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently, on a fresh
# Debian/Ubuntu machine with Go: Mosquitto; PostgreSQL 15 (the multi-site
# store; tests run their own server with initdb); pymodbus, libmodbus and mbpoll
# (independent Modbus peers), socat (a serial line between them), Chromium and
# a Chinese font (browser tests), lintian, systemd-analyze and qemu-user-static
# (packages, the unit, ARM tests) from Debian; and InfluxDB 1.8 built from
# source into bin/influxd.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto mosquitto-clients)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || need+=(python3-pymodbus)
command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
command -v socat >/dev/null 2>&1 || need+=(socat)
[ -f /usr/include/modbus/modbus.h ] || need+=(libmodbus-dev)
[ -x /usr/bin/chromium ] || need+=(chromium)                       # browser tests
command -v lintian >/dev/null 2>&1 || need+=(lintian)                # package checks
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)       # unit checks (not PID 1 here)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)     # make test-arm
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need+=(fonts-wqy-microhei)   # Chinese on screen
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's mosquitto package starts a system broker on 1883; the tests and the
# demo run their own, so stop it to leave the port free.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
fi
# Likewise Debian's postgresql package starts a cluster on 5432; the tests and
# scripts/services.sh run their own (initdb into a temp dir or .run/postgres).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet postgresql 2>/dev/null; then
  systemctl stop postgresql || true
fi

if [ ! -x bin/influxd ]; then
  echo "install-deps: building InfluxDB 1.8.10 into bin/influxd (about a minute)"
  GOBIN="$PWD/bin" GOFLAGS=-mod=mod go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10
fi
echo "install-deps: ok"
