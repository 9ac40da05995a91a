// Command sitegen drives a center with simulated sites' replication
// traffic (package sitegen):
//
//	go run ./internal/replication/sitegen/cmd/sitegen -broker tcp://127.0.0.1:1883 \
//	    -sites 100 -assets 50 -outage 10 -outage-at 30s -cut 20 -cut-at 1m -cut-for 10m -for 15m
//
// It prints each site group's progress every 10 s and stops at -for or
// on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/propgate/gateway/internal/replication/sitegen"
)

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "the central broker")
	user := flag.String("user", "", "broker username (password from SITEGEN_PASSWORD)")
	sites := flag.Int("sites", 100, "simulated sites")
	assets := flag.Int("assets", 50, "assets per site")
	rate := flag.Float64("rate", 1, "changes per asset per second")
	prefix := flag.String("prefix", "site-", "site ids: <prefix>001…")
	outage := flag.Int("outage", 0, "sites losing power at once (the first ones)")
	outageAt := flag.Duration("outage-at", 30*time.Second, "when the outage happens")
	cut := flag.Int("cut", 0, "sites whose WAN is cut (after the outage sites)")
	cutAt := flag.Duration("cut-at", time.Minute, "when the cut begins")
	cutFor := flag.Duration("cut-for", 10*time.Minute, "how long the cut lasts")
	dur := flag.Duration("for", 0, "stop after this long (0: until Ctrl-C)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *outage+*cut > *sites {
		fmt.Fprintln(os.Stderr, "sitegen: -outage plus -cut is more than -sites")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	g := sitegen.New(sitegen.Config{Sites: *sites, Assets: *assets, Rate: *rate, Prefix: *prefix, Log: log,
		Broker: func() *paho.ClientOptions {
			o := paho.NewClientOptions().AddBroker(*broker)
			if *user != "" {
				o.SetUsername(*user).SetPassword(os.Getenv("SITEGEN_PASSWORD"))
			}
			return o
		}})
	idx := func(from, n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = from + i
		}
		return out
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	if *outage > 0 {
		time.AfterFunc(*outageAt, func() { log.Info("outage", "sites", *outage); g.Outage(idx(0, *outage), time.Now()) })
	}
	if *cut > 0 {
		time.AfterFunc(*cutAt, func() { log.Info("WAN cut", "sites", *cut); g.Cut(idx(*outage, *cut)) })
		time.AfterFunc(*cutAt+*cutFor, func() { log.Info("WAN restored", "sites", *cut); g.Restore(idx(*outage, *cut)) })
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			report(g, start)
			return
		case <-t.C:
			report(g, start)
		}
	}
}

func report(g *sitegen.Generator, start time.Time) {
	var made, acked, queued, resends int64
	for _, s := range g.Stats() {
		made, acked, queued, resends = made+s.Generated, acked+s.Acked, queued+int64(s.Queued), resends+s.Resends
	}
	el := time.Since(start).Seconds()
	fmt.Printf("%6.0fs  made %d (%.0f/s)  acknowledged by the broker %d  queued %d  resends %d\n", el, made, float64(made)/el, acked, queued, resends)
}
