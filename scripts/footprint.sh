#!/usr/bin/env bash
# Measures the gateway's footprint at a typical site: 200 assets, 20 Modbus
# devices (served by the simulator), 100 MQTT sensors (published by the
# simulator), the demo's rules, playbooks, alerts, register and rounds.
#   scripts/footprint.sh [seconds per phase, default 180]
# Phase 1: InfluxDB up. Phase 2: InfluxDB unreachable (every point goes to
# the disk queue). The simulator runs as its own process (`gateway
# simulate`) so only the gateway is measured: CPU (utime+stime from
# /proc/<pid>/stat, per 10 s window, % of one core), RSS (VmRSS), points
# per second, and in phase 2 the queue's growth. Results: docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-180}
OUT=.run/footprint
rm -rf "$OUT" && mkdir -p "$OUT/data"
go build -o "$OUT/gateway" ./gateway
eval "$(scripts/services.sh start influx mosquitto | sed 's/^/export /')"

free_port() { local p=$1; while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p+1)); done; echo $p; }
export SIM_MODBUS_PUMPS=$(free_port 25020) SIM_MODBUS_PANELS=$(free_port 25120)
export GATEWAY_LISTEN=127.0.0.1:$(free_port 28080) GATEWAY_DATA=$PWD/$OUT/data SCHEDULE_DRILLS=false
export GATEWAY_PUBLIC_URL=http://$GATEWAY_LISTEN

# The site: configs/demo.yaml (17 assets: 8 Modbus devices, 9 MQTT
# sensors) plus 12 Modbus devices, 91 MQTT sensors and 80 cameras.
{
  awk '/^influxdb:/ { exit } { print }' configs/demo.yaml
  for i in $(seq 1 6); do
    echo "  - {id: fp-pump-$i, kind: pump_room, name: \"$((i+5))号楼 泵房\", building: \"$((i+5))号楼\", floor: B1, stale_after: 10s}"
    echo "  - {id: fp-panel-$i, kind: distribution_panel, name: \"$((i+5))号楼 配电室\", building: \"$((i+5))号楼\", floor: B1, stale_after: 10s}"
  done
  for i in $(seq 1 12); do echo "  - {id: fp-lift-$i, kind: elevator, name: \"电梯 $i\", building: \"$((i%6+6))号楼\", floor: \"1-18\", stale_after: 30s}"; done
  for i in $(seq 1 60); do echo "  - {id: fp-leak-$i, kind: water_sensor, name: \"水浸 $i\", building: \"$((i%6+6))号楼\", floor: B1, stale_after: 30s}"; done
  for i in $(seq 1 19); do echo "  - {id: fp-light-$i, kind: lighting, name: \"照明 $i\", building: \"$((i%6+6))号楼\", floor: \"1\", stale_after: 30s}"; done
  for i in $(seq 1 80); do echo "  - {id: fp-cam-$i, kind: cctv, name: \"摄像机 $i\", building: \"$((i%6+6))号楼\"}"; done
  echo
  awk 'f { print } /^influxdb:/ { f = 1; print }' configs/demo.yaml | awk '{ print } /b5-fire-panel, *address:/ {
    for (i = 1; i <= 6; i++) {
      printf "    - {asset: fp-pump-%d,  address: \"127.0.0.1:${SIM_MODBUS_PUMPS:-15020}\",  unit_id: %d, template: pump-controller, poll_interval: 1s, timeout: 500ms}\n", i, i + 4
      printf "    - {asset: fp-panel-%d, address: \"127.0.0.1:${SIM_MODBUS_PANELS:-15021}\", unit_id: %d, template: panel-meter, poll_interval: 1s, timeout: 500ms}\n", i, i + 4
    } }'
} > "$OUT/site.yaml"
sed -i "s#^  dir: playbooks #  dir: $PWD/configs/playbooks #" "$OUT/site.yaml"
"$OUT/gateway" check -config "$OUT/site.yaml" 2>/dev/null

SIMULATOR=true "$OUT/gateway" simulate -config "$OUT/site.yaml" > "$OUT/simulator.log" 2>&1 &
SIM=$!
GW=
cleanup() {
  [ -n "$GW" ] && kill "$GW" 2>/dev/null && wait "$GW" 2>/dev/null || true
  kill "$SIM" 2>/dev/null && wait "$SIM" 2>/dev/null || true
  scripts/services.sh stop
}
trap cleanup EXIT

HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }
metric() { curl -s "http://$GATEWAY_LISTEN/metrics" | awk -v m="$1" '$1 == m { s += $2 } index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s }'; }
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "median %s, min %s, max %s (%d windows)", v[int((NR + 1) / 2)], v[1], v[NR], NR }'; }

# phase NAME: runs the gateway for SECS after a 30 s warm-up, sampling every 10 s.
phase() {
  local start; start=$(date +%s)
  SIMULATOR=false "$OUT/gateway" run -config "$OUT/site.yaml" > "$OUT/$1.log" 2>&1 &
  GW=$!
  sleep 30
  local t0 c0 p0 q0 cpu rss
  t0=$(date +%s.%N) c0=$(ticks $GW) p0=$(metric gateway_points_collected_total) q0=$(metric gateway_influx_queue_bytes)
  : > "$OUT/$1.cpu"; : > "$OUT/$1.rss"
  for _ in $(seq 1 $((SECS / 10))); do
    local a b; a=$(ticks $GW); sleep 10; b=$(ticks $GW)
    echo "scale=1; ($b - $a) * 100 / $HZ / 10" | bc >> "$OUT/$1.cpu"
    rss_mib $GW >> "$OUT/$1.rss"
  done
  local t1 c1 p1 q1 el
  t1=$(date +%s.%N) c1=$(ticks $GW) p1=$(metric gateway_points_collected_total) q1=$(metric gateway_influx_queue_bytes)
  el=$(echo "$t1 - $t0" | bc)
  echo "== $1 ($(printf %.0f "$el") s after a 30 s warm-up)"
  echo "CPU % of one core per 10 s window: $(stats < "$OUT/$1.cpu"); over the phase $(echo "scale=1; ($c1 - $c0) * 100 / $HZ / $el" | bc) %"
  echo "RSS MiB: $(stats < "$OUT/$1.rss"); peak (VmHWM) $(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' /proc/$GW/status)"
  echo "points collected per second: $(echo "scale=0; ($p1 - $p0) / $el" | bc)"
  echo "written to disk by the gateway (/proc/<pid>/io write_bytes, whole run incl. warm-up): $(awk '/^write_bytes/ { printf "%.1f MiB", $2 / 1048576 }' /proc/$GW/io) in $(( $(date +%s) - start )) s"
  echo "InfluxDB queue: $q0 -> $q1 bytes ($(echo "scale=1; ($q1 - $q0) / $el * 86400 / 1048576" | bc) MiB per day at this rate); on disk $(du -sb "$OUT/data/queue" | cut -f1) bytes"
  kill $GW && wait $GW 2>/dev/null || true
  GW=
}

echo "machine: $(nproc) CPUs, $(awk '/model name/ { $1 = $2 = $3 = ""; print; exit }' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg); $(go version)"
echo "site: $("$OUT/gateway" check -config "$OUT/site.yaml" 2>/dev/null | sed 's/.*: ok //')"
phase influx-up
export INFLUX_URL=http://127.0.0.1:$(free_port 29086)
phase influx-down
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
