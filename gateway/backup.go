package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/gateway/config"
	"github.com/propgate/gateway/internal/backup"
	"github.com/propgate/gateway/internal/store/postgres"
	"github.com/propgate/gateway/internal/store/sqlite"
)

// stateSource is where this config keeps the gateway's state: its SQLite
// files (a database on PostgreSQL is backed up with PostgreSQL's own tools,
// pg_dump; docs/operations.md), the queue, the config.
func stateSource(cfg *config.Config, path string) backup.Source {
	src := backup.Source{Config: path, QueueDir: cfg.InfluxDB.Queue.Dir}
	add := func(name, db string) {
		if !postgres.IsURL(db) {
			src.Databases = append(src.Databases, backup.Database{Name: name, Path: db})
		}
	}
	add("rules", cfg.Rules.Database)
	if cfg.Alerts != nil {
		add("alerts", cfg.Alerts.Database)
	}
	if cfg.Dashboard != nil {
		add("audit", cfg.Dashboard.AuditDatabase)
	}
	if cfg.Playbooks.Dir != "" {
		src.PlaybooksDir = cfg.Playbooks.Dir
		if !filepath.IsAbs(src.PlaybooksDir) {
			src.PlaybooksDir = filepath.Join(filepath.Dir(path), src.PlaybooksDir)
		}
	}
	return src
}

// stateDir holds the lock the running gateway keeps: the rules database's
// directory (/var/lib/propgate-gateway in the package), or the queue's
// parent when the rules are on PostgreSQL.
func stateDir(cfg *config.Config) string {
	if postgres.IsURL(cfg.Rules.Database) {
		return filepath.Dir(filepath.Clean(cfg.InfluxDB.Queue.Dir))
	}
	return filepath.Dir(cfg.Rules.Database)
}

// runBackup takes an online backup while the gateway runs (or not).
func runBackup(ctx context.Context, cfg *config.Config, path, out string, stdout io.Writer) error {
	if out == "" {
		return errors.New("backup: -out FILE is required")
	}
	start := time.Now()
	src := stateSource(cfg, path)
	m, err := backup.Create(ctx, src, out, cfg.Site, version, start)
	if err != nil {
		return err
	}
	for _, db := range []string{cfg.Rules.Database, alertsDB(cfg), auditDB(cfg)} {
		if postgres.IsURL(db) {
			fmt.Fprintf(stdout, "note: %s is on PostgreSQL: back it up with pg_dump\n", postgres.Redact(db))
		}
	}
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	fmt.Fprintf(stdout, "%s: backup of %s (%d files, %d bytes before compression) in %s\n",
		out, cfg.Site, len(m.Files), size, time.Since(start).Round(time.Millisecond))
	return nil
}

// runRestore puts a backup back while the gateway is stopped: unpacked and
// checked beside the state, the databases opened (migrating them forward,
// refusing a schema newer than this binary) and the queue opened (refusing
// a newer format) before anything is replaced.
func runRestore(cfg *config.Config, path, in string, stdout io.Writer) error {
	if in == "" {
		return errors.New("restore: -in FILE is required")
	}
	unlock, err := backup.Lock(stateDir(cfg))
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer unlock()
	src := stateSource(cfg, path)
	staged, err := backup.Stage(in, src)
	if err != nil {
		return err
	}
	defer staged.Discard()
	if err := openStaged(cfg, staged, src); err != nil {
		return fmt.Errorf("restore: %s (made by gateway %s) cannot be used by this gateway (%s), nothing was changed: %w",
			in, staged.Manifest.Gateway, version, err)
	}
	res, err := staged.Apply(src)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s (gateway %s, taken %s)\n", cfg.Site, in, staged.Manifest.Gateway,
		staged.Manifest.Created.Local().Format(time.RFC3339))
	for _, r := range res.Replaced {
		fmt.Fprintf(stdout, "  previous %s kept as %s.pre-restore\n", r, r)
	}
	if res.Config != "" && res.Config != path {
		fmt.Fprintf(stdout, "  the backed-up config is in %s: compare it with %s\n", res.Config, path)
	}
	return nil
}

func openStaged(cfg *config.Config, s *backup.Staged, src backup.Source) error {
	for _, db := range src.Databases {
		p := s.Databases[db.Name]
		var closer interface{ Close() error }
		var err error
		switch db.Name {
		case "rules":
			closer, err = sqlite.OpenRules(p, cfg.Rules.Orders.Webhook != nil)
		case "alerts":
			closer, err = sqlite.OpenAlerts(p)
		case "audit":
			closer, err = sqlite.OpenAudit(p, cfg.Dashboard.AuditMaxRows)
		}
		if err != nil {
			return err
		}
		if err := closer.Close(); err != nil {
			return err
		}
		for _, side := range []string{"-wal", "-shm"} {
			_ = os.Remove(p + side)
		}
	}
	if src.QueueDir != "" {
		q, err := queue.Open(queue.Options{Dir: s.QueueDir()})
		if err != nil {
			return err
		}
		return q.Close()
	}
	return nil
}

func alertsDB(cfg *config.Config) string {
	if cfg.Alerts == nil {
		return ""
	}
	return cfg.Alerts.Database
}

func auditDB(cfg *config.Config) string {
	if cfg.Dashboard == nil {
		return ""
	}
	return cfg.Dashboard.AuditDatabase
}
