// Command gateway is the facilities-monitoring gateway: it collects readings
// from Modbus and MQTT equipment, keeps the live state, stores every reading
// in InfluxDB through a durable queue and serves the HTTP API.
//
//	gateway [run] -config configs/demo.yaml   run the gateway
//	gateway check -config FILE                 validate a config and exit
//	gateway simulate -config FILE              run only the simulated site
//	gateway center -config FILE                run the monitoring center (every site's records, docs/multisite.md)
//	gateway version                            print the version and exit
//	gateway backup -config FILE -out BACKUP    online backup of the state (databases, config, queue)
//	gateway restore -config FILE -in BACKUP    put a backup back (the gateway stopped)
//
// Every command that reads a config also takes -env FILE: KEY=VALUE lines
// (systemd's EnvironmentFile= format) substituted into ${NAME} in the
// config, so `gateway check -config /etc/propgate-gateway/gateway.yaml -env
// /etc/propgate-gateway/gateway.env` sees what the service sees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/backup"
	"github.com/propgate/gateway/internal/envfile"
)

// version is stamped at build time: go build -ldflags "-X main.version=$(git describe --tags --always --dirty)".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("gateway "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/demo.yaml", "config file")
	envPath := fs.String("env", "", "KEY=VALUE file substituted into ${NAME} in the config (systemd EnvironmentFile format)")
	out := fs.String("out", "", "backup: the backup file to write")
	in := fs.String("in", "", "restore: the backup file to read")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "gateway %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "run", "check", "simulate", "backup", "restore", "center":
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q; commands: run, check, simulate, center, backup, restore, version\n", cmd)
		return 2
	}
	cfg, err := loadConfig(*path, *envPath)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: invalid config:\n%v\n", err)
		return 1
	}
	switch {
	case cmd == "center" && cfg.Center == nil:
		fmt.Fprintf(stderr, "gateway: %s has no center: section; fix: add center: (database, broker), docs/multisite.md\n", *path)
		return 1
	case cmd != "center" && cmd != "check" && cfg.CenterOnly():
		fmt.Fprintf(stderr, "gateway: %s is a monitoring center's config (center:, no assets); fix: gateway center -config %s\n", *path, *path)
		return 1
	}
	if cmd == "check" {
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "%s: ok (%d assets, %d Modbus devices, %d MQTT subscriptions, %d rules, %d playbooks)\n",
			*path, len(cfg.Assets), len(cfg.Modbus.Devices), mqttSubs(cfg), len(cfg.Rules.Rules), len(cfg.Playbooks.Loaded))
		return 0
	}
	switch cmd {
	case "backup":
		if err := runBackup(context.Background(), cfg, *path, *out, stdout); err != nil {
			fmt.Fprintf(stderr, "gateway: %v\n", err)
			return 1
		}
		return 0
	case "restore":
		if err := runRestore(cfg, *path, *in, stdout); err != nil {
			fmt.Fprintf(stderr, "gateway: %v\n", err)
			return 1
		}
		return 0
	}
	// Decoding a large config (10,000 rules) leaves ~100 MB of garbage;
	// nothing would collect it at idle. Hand it back now.
	debug.FreeOSMemory()
	log := newLogger(cfg, stderr)
	// GOGC is left at Go's default (100): the realistic ingest benchmark
	// (docs/benchmarks.md) measured no CPU difference against 200 or 400
	// within its noise, and 400 held ~110 MiB instead of ~60 at 1,000 assets.
	if prof := os.Getenv("GATEWAY_CPUPROFILE"); prof != "" {
		// For benchmarks: a CPU profile of the whole run, written at exit.
		f, err := os.Create(prof)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	if prof := os.Getenv("GATEWAY_ALLOCPROFILE"); prof != "" {
		// For benchmarks: where the run allocated (go tool pprof -sample_index=alloc_space), written at exit.
		defer func() {
			if f, err := os.Create(prof); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "simulate":
		err = simulate(ctx, cfg, log)
	case "center":
		err = runCenter(ctx, cfg, log)
	default:
		// The state lock: one gateway per state directory, and no restore
		// under a running one.
		unlock, lerr := backup.Lock(stateDir(cfg))
		if lerr != nil {
			log.Error("gateway not started", "err", lerr)
			return 1
		}
		defer unlock()
		// SIGHUP (systemctl reload) re-reads the config (and the env file)
		// and applies it without a restart, or refuses it (reload.go).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		app := NewApp(cfg, log)
		app.ReloadOn(hup, func() (*config.Config, error) { return loadConfig(*path, *envPath) })
		err = app.Run(ctx)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

// loadConfig loads path with ${NAME} taken from the env file (when given)
// first, then from the environment.
func loadConfig(path, envPath string) (*config.Config, error) {
	if envPath == "" {
		return config.Load(path)
	}
	vars, err := envfile.Read(envPath)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return config.Parse(path, raw, envfile.Lookup(vars, os.LookupEnv))
}

func mqttSubs(cfg *config.Config) int {
	if cfg.MQTT == nil {
		return 0
	}
	return len(cfg.MQTT.Subs)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if underJournal(w) {
		// journald stamps every line itself: a second timestamp is noise.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}
	}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// underJournal reports whether w is the process's stderr and that stderr is
// connected to the journal (systemd sets JOURNAL_STREAM to its device and
// inode; a redirected stderr does not match).
func underJournal(w io.Writer) bool {
	if w != io.Writer(os.Stderr) {
		return false
	}
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}
