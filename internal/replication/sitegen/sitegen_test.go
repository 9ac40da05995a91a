package sitegen

import (
	"context"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/replication"
	"github.com/propgate/gateway/internal/testenv"
)

// What the generator publishes is what a site sends: valid version-1
// envelopes, each site's seq gap-free and in order (across an outage
// burst and a WAN cut, whose queue arrives after the restore), alarms,
// work orders and incidents.
func TestGeneratorIntegration(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var mu sync.Mutex
	last := map[string]int64{}
	kinds := map[string]int{}
	var bad []string
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("center"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(replication.EventFilter, 1, func(_ paho.Client, m paho.Message) {
		e, err := replication.DecodeAt(m.Topic(), m.Payload(), time.Time{})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad = append(bad, err.Error())
			return
		}
		if e.Seq != last[e.Site]+1 {
			bad = append(bad, e.Site+": out of order")
		}
		last[e.Site] = e.Seq
		kinds[e.Kind]++
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	g := New(Config{Sites: 3, Assets: 10, Rate: 20, Broker: func() *paho.ClientOptions { return paho.NewClientOptions().AddBroker(broker.URL) }})
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	time.Sleep(300 * time.Millisecond)
	g.Cut([]int{2})
	g.Outage([]int{0, 2}, time.Now())
	time.Sleep(500 * time.Millisecond)
	if st := g.Stats()[2]; st.Queued == 0 || st.Acked >= st.Generated {
		t.Fatalf("the cut site sent during the cut: %+v", st)
	}
	g.Restore([]int{2})
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done

	stats := g.Stats()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		all := true
		for _, st := range stats {
			// Everything the broker acknowledged arrived; a window cut short
			// by the stop may have arrived unacknowledged, never more.
			if last[st.Site] < st.Acked || last[st.Site] > st.Generated {
				all = false
			}
		}
		mu.Unlock()
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %v, acknowledged %+v", last, stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("bad traffic: %v", bad[:min(5, len(bad))])
	}
	if kinds["alarm"] < 100 || kinds["incident"] < 2 || kinds["workorder"] < 2 {
		t.Fatalf("kinds: %v", kinds)
	}
	for _, st := range stats {
		if st.Acked < 20 {
			t.Errorf("%s sent little: %+v", st.Site, st)
		}
	}
}
