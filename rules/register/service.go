package register

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
)

// Field is the derived reading the register publishes per asset with
// certificates: days until the earliest one expires (negative: expired).
const Field = "cert_days_left"

// Source is the collector name the register publishes under (metrics).
const Source = "register"

// Store keeps the register (internal/store/sqlite).
type Store interface {
	RegisterEntries(ctx context.Context) ([]Entry, error)
	// PutRegisterEntries saves es in one transaction. With onlyNew, entries
	// already stored are left alone (the YAML seed); otherwise each entry's
	// Version must be the stored one (0: not stored yet), else ErrConflict
	// and nothing is saved. Saved entries get Version+1.
	PutRegisterEntries(ctx context.Context, es []Entry, onlyNew bool) (int, error)
}

// Service serves the register and the contacts directory and publishes
// cert_days_left for the reminder rules.
type Service struct {
	cfg    Config
	store  Store
	sink   collectors.Sink
	assets map[string]collectors.Asset
	log    *slog.Logger
	now    func() time.Time
	every  time.Duration

	mu    sync.RWMutex
	cache map[string]Entry // by asset; bounded by the declared assets
}

// NewService builds the service; nothing runs until Run. sink receives the
// derived readings (the pipeline); nil publishes nothing.
func NewService(cfg Config, assets []collectors.Asset, store Store, sink collectors.Sink, log *slog.Logger, now func() time.Time) *Service {
	cfg.SetDefaults()
	s := &Service{cfg: cfg, store: store, sink: sink, assets: map[string]collectors.Asset{}, log: log, now: now, every: time.Minute, cache: map[string]Entry{}}
	for _, a := range assets {
		s.assets[a.ID] = a
	}
	// Republish before the readings go stale on the screens (stale_after).
	for _, e := range cfg.Assets {
		if a, ok := s.assets[e.Asset]; ok && a.StaleAfter > 0 && a.StaleAfter/2 < s.every {
			s.every = max(a.StaleAfter/2, time.Second)
		}
	}
	return s
}

// Known reports whether id is a declared asset.
func (s *Service) Known(id string) bool { _, ok := s.assets[id]; return ok }

// Load stores the YAML seed (entries not stored yet) and reads the register.
func (s *Service) Load(ctx context.Context) error {
	if len(s.cfg.Assets) > 0 {
		n, err := s.store.PutRegisterEntries(ctx, s.cfg.Assets, true)
		if err != nil {
			return fmt.Errorf("register: seed: %w", err)
		}
		if n > 0 {
			s.log.Info("register seeded from the config", "entries", n)
		}
	}
	es, err := s.store.RegisterEntries(ctx)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.cache)
	for _, e := range es {
		if s.Known(e.Asset) { // an asset removed from the config keeps its row, unused
			s.cache[e.Asset] = e
		}
	}
	return nil
}

// Entries lists the register, each certificate with its days left.
func (s *Service) Entries() []Entry {
	now, loc := s.now(), s.cfg.Location()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.cache))
	for _, e := range s.cache {
		out = append(out, e.withDays(now, loc, s.cfg.WarnDays))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Asset < out[j].Asset })
	return out
}

// Entry is one asset's record; a declared asset without one gets an empty
// record (Version 0) to fill in.
func (s *Service) Entry(asset string) (Entry, error) {
	if !s.Known(asset) {
		return Entry{}, fmt.Errorf("asset %q: %w", asset, ErrNotFound)
	}
	s.mu.RLock()
	e, ok := s.cache[asset]
	s.mu.RUnlock()
	if !ok {
		e = Entry{Asset: asset, Certificates: []Certificate{}}
	}
	return e.withDays(s.now(), s.cfg.Location(), s.cfg.WarnDays), nil
}

// Put saves one entry edited by a person (by); e.Version must be the
// version read. Validation errors are *cfgerr.FieldError.
func (s *Service) Put(ctx context.Context, e Entry, by string) (Entry, error) {
	out, err := s.put(ctx, []Entry{e}, by)
	if err != nil {
		return Entry{}, err
	}
	return out[0], nil
}

func (s *Service) put(ctx context.Context, es []Entry, by string) ([]Entry, error) {
	now := s.now()
	for i := range es {
		if err := es[i].Validate(s.Known); err != nil {
			return nil, err
		}
		es[i].UpdatedBy, es[i].Updated = by, now
		for j := range es[i].Certificates {
			es[i].Certificates[j].Days, es[i].Certificates[j].Status = nil, ""
		}
	}
	if _, err := s.store.PutRegisterEntries(ctx, es, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	for i := range es {
		es[i].Version++
		s.cache[es[i].Asset] = es[i]
	}
	s.mu.Unlock()
	s.Publish()
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = e.withDays(now, s.cfg.Location(), s.cfg.WarnDays)
	}
	return out, nil
}

// Contacts is the external directory.
func (s *Service) Contacts() []Contact { return slices.Clone(s.cfg.Contacts) }

// Resolve turns the contact ids a playbook step names into contacts;
// asset_contractor is the register's contractor for asset. Unknown ids and
// an asset without a contractor are left out.
func (s *Service) Resolve(ids []string, asset string) []Contact {
	var out []Contact
	for _, id := range ids {
		if id == AssetContractor {
			s.mu.RLock()
			e, ok := s.cache[asset]
			s.mu.RUnlock()
			if ok && e.Contractor != "" {
				name := e.Contractor
				if a, ok := s.assets[asset]; ok && a.Name != "" {
					name += "（" + a.Name + " 维保单位 maintenance contractor）"
				}
				out = append(out, Contact{ID: AssetContractor, Name: name, Category: "contractor", Phone: e.ContractorPhone, Assets: []string{asset}})
			}
			continue
		}
		for _, c := range s.cfg.Contacts {
			if c.ID == id {
				out = append(out, c)
			}
		}
	}
	return out
}

// Publish hands the pipeline cert_days_left for every asset with
// certificates.
func (s *Service) Publish() {
	if s.sink == nil {
		return
	}
	now, loc := s.now(), s.cfg.Location()
	s.mu.RLock()
	pts := make([]collectors.Point, 0, len(s.cache))
	for id, e := range s.cache {
		if d, ok := e.CertDaysLeft(now, loc); ok {
			pts = append(pts, collectors.Point{Asset: id, Kind: s.assets[id].Kind, Field: Field, Value: collectors.Int(int64(d)), Unit: "d",
				Quality: collectors.QualityGood, Time: now})
		}
	}
	s.mu.RUnlock()
	sort.Slice(pts, func(i, j int) bool { return pts[i].Asset < pts[j].Asset })
	s.sink.Publish(Source, pts)
}

// Run republishes the derived readings until ctx ends (often enough that
// they never go stale, and so the day changes at midnight).
func (s *Service) Run(ctx context.Context) error {
	s.Publish()
	collectors.Every(ctx, s.every, s.Publish)
	return nil
}
