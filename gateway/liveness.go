package main

import (
	"time"

	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/sdnotify"
)

// liveLoops are the loops systemd's watchdog waits on: the rule engine,
// the playbook runner and the alert router tick every second; the Modbus
// devices are polled (a failing device too, backing off). Each counter may
// stand still for a while before the gateway counts as hung. MQTT is pushed
// by the broker, so its silence says nothing about the gateway.
func liveLoops(cfg *config.Config) []sdnotify.Loop {
	const tickAllowance = 15 * time.Second // 1 s loops; a slow store write is not a hang
	loops := []sdnotify.Loop{
		{Metric: "gateway_rules_ticks_total", Within: tickAllowance},
		{Metric: "gateway_playbook_ticks_total", Within: tickAllowance},
	}
	if cfg.Alerts != nil {
		loops = append(loops, sdnotify.Loop{Metric: "gateway_alert_ticks_total", Within: tickAllowance})
	}
	var slowest time.Duration
	for _, d := range cfg.Modbus.Devices {
		slowest = max(slowest, max(d.PollInterval, d.MaxBackoff)+d.Timeout)
	}
	if slowest > 0 {
		loops = append(loops, sdnotify.Loop{Metric: "gateway_modbus_polls_total", Within: 2*slowest + tickAllowance})
	}
	return loops
}
