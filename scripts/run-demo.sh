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
mkdir -p "$GATEWAY_DATA"
cleanup() { [ -n "$started" ] && [ -z "${KEEP_SERVICES:-}" ] && scripts/services.sh stop; }
trap cleanup EXIT
cat <<MSG

  Facilities gateway demo (site yushan-garden, simulated)
  Wall display:     http://$GATEWAY_LISTEN/?token=${WALL_TOKEN:-demo-wall-display-token}
  Operator console: http://$GATEWAY_LISTEN/console   (wang.li / operator-demo; zhang.wei / engineer-demo; admin / admin-demo)
  API token:        Authorization: Bearer ${OPERATOR_TOKEN:-demo-operator-token}   (read-only: the wall token)
  Alerts sent:      http://$GATEWAY_LISTEN/demo/receiver
  API:              http://$GATEWAY_LISTEN/api/v1/assets
  Health:           http://$GATEWAY_LISTEN/healthz    Metrics: http://$GATEWAY_LISTEN/metrics
  InfluxDB:         $INFLUX_URL  (bucket ${INFLUX_BUCKET:-gateway/autogen})
  MQTT broker:      $MQTT_BROKER
  Inject a scenario: curl -H 'Authorization: Bearer demo-operator-token' -XPOST http://$GATEWAY_LISTEN/api/v1/simulator/scenarios/power-outage
                     (flooding, entrapment; DELETE the same path to end it)

MSG
bin/gateway run -config "${CONFIG:-configs/demo.yaml}"
