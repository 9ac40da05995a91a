#!/usr/bin/env bash
# Starts (or reuses) the local InfluxDB 1.8 and Mosquitto the demo uses, with
# generated configs and data under .run/. Prints shell assignments for
# INFLUX_URL, INFLUX_BUCKET and MQTT_BROKER.
#   scripts/services.sh start | stop
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.run
mkdir -p "$RUN/influx" "$RUN/mosquitto"

free_port() { # first free port from $1 upwards
  local p=$1
  while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p+1)); done
  echo $p
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_influx() {
  if alive $RUN/influx/pid; then
    INFLUX_PORT=$(cat $RUN/influx/port)
  else
    INFLUX_PORT=$(free_port 8086)
    BIND_PORT=$(free_port $((INFLUX_PORT+1000)))
    cat > $RUN/influx/influxdb.conf <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$BIND_PORT"
[meta]
  dir = "$PWD/$RUN/influx/meta"
[data]
  dir = "$PWD/$RUN/influx/data"
  wal-dir = "$PWD/$RUN/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
CONF
    nohup bin/influxd -config $RUN/influx/influxdb.conf > $RUN/influx/log 2>&1 &
    echo $! > $RUN/influx/pid
    echo $INFLUX_PORT > $RUN/influx/port
  fi
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$INFLUX_PORT/ping" >/dev/null && break
    sleep 0.2
  done
  curl -sf -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE gateway" >/dev/null
}

start_mosquitto() {
  if alive $RUN/mosquitto/pid; then
    MQTT_PORT=$(cat $RUN/mosquitto/port)
  else
    MQTT_PORT=$(free_port 1883)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_inflight_messages 1000\nmax_queued_messages 1000000\nlog_dest stderr\n' \
      "$MQTT_PORT" "$PWD/$RUN/mosquitto" > $RUN/mosquitto/mosquitto.conf
    MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    nohup "$MOSQ" -c $RUN/mosquitto/mosquitto.conf > $RUN/mosquitto/log 2>&1 &
    echo $! > $RUN/mosquitto/pid
    echo $MQTT_PORT > $RUN/mosquitto/port
  fi
  for _ in $(seq 1 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT) 2>/dev/null && break
    sleep 0.1
  done
}

case "${1:-start}" in
  start)
    start_influx
    start_mosquitto
    echo "INFLUX_URL=http://127.0.0.1:$INFLUX_PORT"
    echo "INFLUX_BUCKET=gateway/autogen"
    echo "MQTT_BROKER=tcp://127.0.0.1:$MQTT_PORT"
    ;;
  stop)
    for s in influx mosquitto; do
      if alive $RUN/$s/pid; then kill "$(cat $RUN/$s/pid)"; fi
      rm -f $RUN/$s/pid
    done
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
