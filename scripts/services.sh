#!/usr/bin/env bash
# Starts (or reuses) the local InfluxDB 1.8 and Mosquitto the demo uses, and
# on request PostgreSQL 15, with generated configs and data under .run/.
# Prints shell assignments for INFLUX_URL, INFLUX_BUCKET and MQTT_BROKER
# (and DATABASE_URL with postgres).
#   scripts/services.sh start [influx] [mosquitto] [postgres] | stop
# start alone starts influx and mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.run
mkdir -p "$RUN/influx" "$RUN/mosquitto"

free_port() { # first free port from $1 upwards
  local p=$1
  while (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do p=$((p+1)); done
  echo $p
}

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

# PostgreSQL refuses to run as root: under root the cluster belongs to
# Debian's postgres user (made by the postgresql package).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] || { echo "services: PostgreSQL is not installed; run make deps" >&2; exit 1; }
  mkdir -p $RUN/postgres
  [ "$(id -u)" -eq 0 ] && chown postgres: $RUN/postgres
  if [ ! -f $RUN/postgres/data/PG_VERSION ]; then
    as_pg "$bin/initdb" -D "$PWD/$RUN/postgres/data" -U postgres -A trust -E UTF8 --locale=C --no-instructions >/dev/null
  fi
  if alive $RUN/postgres/data/postmaster.pid; then
    PG_PORT=$(cat $RUN/postgres/port)
  else
    PG_PORT=$(free_port 5432)
    echo $PG_PORT > $RUN/postgres/port
    as_pg "$bin/pg_ctl" -D "$PWD/$RUN/postgres/data" -l "$PWD/$RUN/postgres/log" -w -s \
      -o "-p $PG_PORT -h 127.0.0.1 -k ''" start >/dev/null
  fi
  "$bin/psql" -qAt "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -c "SELECT 1 FROM pg_database WHERE datname = 'gateway'" | grep -q 1 ||
    "$bin/psql" -q "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -c "CREATE DATABASE gateway" >/dev/null
}
# alive reads the first line of postmaster.pid, the postmaster's pid.
alive() { [ -f "$1" ] && kill -0 "$(head -1 "$1")" 2>/dev/null; }

cmd=${1:-start}; shift || true
case "$cmd" in
  start)
    want=("$@"); [ ${#want[@]} -eq 0 ] && want=(influx mosquitto)
    for s in "${want[@]}"; do
      case "$s" in
        influx) start_influx
          echo "INFLUX_URL=http://127.0.0.1:$INFLUX_PORT"
          echo "INFLUX_BUCKET=gateway/autogen" ;;
        mosquitto) start_mosquitto
          echo "MQTT_BROKER=tcp://127.0.0.1:$MQTT_PORT" ;;
        postgres) start_postgres
          echo "DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/gateway?sslmode=disable" ;;
        *) echo "services: unknown service $s (influx, mosquitto, postgres)" >&2; exit 2 ;;
      esac
    done
    ;;
  stop)
    for s in influx mosquitto; do
      if alive $RUN/$s/pid; then kill "$(cat $RUN/$s/pid)"; fi
      rm -f $RUN/$s/pid
    done
    if alive $RUN/postgres/data/postmaster.pid; then
      as_pg "$(pg_bin)/pg_ctl" -D "$PWD/$RUN/postgres/data" -m fast -s stop || true
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
