#!/usr/bin/env bash
# make run: the whole demo on one machine. Starts InfluxDB (unless INFLUX_URL
# points at one) and Mosquitto (unless MQTT_BROKER does), then the gateway
# with configs/demo.yaml and its built-in simulated site.
set -euo pipefail
cd "$(dirname "$0")/.."
started=""
user_influx=${INFLUX_URL:-}; user_bucket=${INFLUX_BUCKET:-}; user_mqtt=${MQTT_BROKER:-}
if [ -z "$user_influx" ] || [ -z "$user_mqtt" ]; then
  eval "$(scripts/services.sh start)" # sets INFLUX_URL, INFLUX_BUCKET, MQTT_BROKER
  started=yes
  [ -n "$user_influx" ] && INFLUX_URL=$user_influx && INFLUX_BUCKET=$user_bucket
  [ -n "$user_mqtt" ] && MQTT_BROKER=$user_mqtt
fi
export INFLUX_URL INFLUX_BUCKET MQTT_BROKER
export GATEWAY_DATA=${GATEWAY_DATA:-$PWD/.run/data}
export GATEWAY_LISTEN=${GATEWAY_LISTEN:-127.0.0.1:8080}
# Acknowledgement links must reach phones: a separate setting from the listen
# address (0.0.0.0 is not an address a phone can open).
export GATEWAY_PUBLIC_URL=${GATEWAY_PUBLIC_URL:-http://127.0.0.1:${GATEWAY_LISTEN##*:}}
# Random secrets for this run, unless given: the fallbacks in
# configs/demo.yaml are published in the repository and README.
rnd() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export ALERT_LINK_SECRET=${ALERT_LINK_SECRET:-$(rnd 32)}
export INSPECTION_QR_SECRET=${INSPECTION_QR_SECRET:-$(rnd 32)}
export WALL_TOKEN=${WALL_TOKEN:-$(rnd 16)}
export OPERATOR_PASSWORD=${OPERATOR_PASSWORD:-$(rnd 6)}
export ENGINEER_PASSWORD=${ENGINEER_PASSWORD:-$(rnd 6)}
export ADMIN_PASSWORD=${ADMIN_PASSWORD:-$(rnd 6)}
export OPERATOR_TOKEN=${OPERATOR_TOKEN:-$(rnd 24)}
export ADMIN_TOKEN=${ADMIN_TOKEN:-$(rnd 24)}
mkdir -p "$GATEWAY_DATA"
cleanup() { [ -n "$started" ] && [ -z "${KEEP_SERVICES:-}" ] && scripts/services.sh stop; }
trap cleanup EXIT
cat <<MSG

  ************************************************************************
  *  演示系统 DEMO: simulated equipment, demo: true. Not for a real site: *
  *  start from configs/site.example.yaml (docs/security.md).             *
  ************************************************************************
  Facilities gateway demo (site yushan-garden, simulated)
  Wall display:     http://$GATEWAY_LISTEN/?token=$WALL_TOKEN
  Operator console: http://$GATEWAY_LISTEN/console
                    wang.li / $OPERATOR_PASSWORD (operator)
                    zhang.wei / $ENGINEER_PASSWORD (engineer)
                    admin / $ADMIN_PASSWORD (admin)
  API token:        Authorization: Bearer $OPERATOR_TOKEN   (admin: $ADMIN_TOKEN)
  Ack links go to:  $GATEWAY_PUBLIC_URL   (set GATEWAY_PUBLIC_URL for phones on the LAN)
  Alerts sent:      http://$GATEWAY_LISTEN/demo/receiver   (operator login)
  API:              http://$GATEWAY_LISTEN/api/v1/assets
  Health:           http://$GATEWAY_LISTEN/healthz    Metrics: http://$GATEWAY_LISTEN/metrics
  InfluxDB:         $INFLUX_URL  (bucket ${INFLUX_BUCKET:-gateway/autogen})
  MQTT broker:      $MQTT_BROKER
  Inject a scenario: curl -H 'Authorization: Bearer $OPERATOR_TOKEN' -XPOST http://$GATEWAY_LISTEN/api/v1/simulator/scenarios/power-outage
                     (flooding, entrapment; DELETE the same path to end it)
  These secrets are new on every run (export them to keep them).

MSG
bin/gateway run -config "${CONFIG:-configs/demo.yaml}"
