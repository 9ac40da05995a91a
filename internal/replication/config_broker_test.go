package replication

import (
	"strings"
	"testing"
)

// A broker URL with credentials in it is refused without echoing them.
func TestBrokerWithUserinfoRefusedUnechoed(t *testing.T) {
	c := Conn{Broker: "ssl://center:hunter2@broker.example:8883", Username: "center", Password: "x"}
	err := c.validate(false, "ssl://center-broker.example:8883")
	if err == nil || !strings.Contains(err.Error(), "before @") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("%v", err)
	}
}
