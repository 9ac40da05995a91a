package register

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/propgate/gateway/collectors"
	"github.com/propgate/gateway/internal/cfgerr"
)

// Field is the derived reading the register publishes per asset with
// certificates: days until the earliest one expires (negative: expired).
const Field = "cert_days_left"

// WarrantyField is the derived reading the register publishes per asset
// with a warranty end: days until the warranty ends (0 on its last day,
// negative after). The reminder rules alarm below 31, 8 and 2 with floor 0:
// once the warranty has ended the reminder clears.
const WarrantyField = "warranty_days_left"

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
	// RegisterContacts lists the stored directory, deleted ones included.
	RegisterContacts(ctx context.Context) ([]Contact, error)
	// PutRegisterContacts saves cs in one transaction, with the same
	// onlyNew and Version rules as PutRegisterEntries.
	PutRegisterContacts(ctx context.Context, cs []Contact, onlyNew bool) (int, error)
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

	mu       sync.RWMutex
	cache    map[string]Entry   // by asset; bounded by the declared assets
	contacts map[string]Contact // by id, deleted ones included; bounded by MaxContacts
}

// NewService builds the service; nothing runs until Run. sink receives the
// derived readings (the pipeline); nil publishes nothing.
func NewService(cfg Config, assets []collectors.Asset, store Store, sink collectors.Sink, log *slog.Logger, now func() time.Time) *Service {
	cfg.SetDefaults()
	s := &Service{cfg: cfg, store: store, sink: sink, assets: map[string]collectors.Asset{}, log: log, now: now, every: time.Minute, cache: map[string]Entry{}, contacts: map[string]Contact{}}
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
	if len(s.cfg.Contacts) > 0 {
		n, err := s.store.PutRegisterContacts(ctx, s.cfg.Contacts, true)
		if err != nil {
			return fmt.Errorf("register: contacts seed: %w", err)
		}
		if n > 0 {
			s.log.Info("contacts directory seeded from the config", "contacts", n)
		}
	}
	es, err := s.store.RegisterEntries(ctx)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	cs, err := s.store.RegisterContacts(ctx)
	if err != nil {
		return fmt.Errorf("register: contacts: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.cache)
	for _, e := range es {
		if s.Known(e.Asset) { // an asset removed from the config keeps its row, unused
			s.cache[e.Asset] = e
		}
	}
	clear(s.contacts)
	for _, c := range cs {
		if len(s.contacts) >= MaxContacts {
			s.log.Warn("the stored contacts directory has more entries than the gateway serves", "max", MaxContacts)
			break
		}
		s.contacts[c.ID] = c
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

// Contacts is the external directory (deleted entries left out), by
// category in the directory's order, then as the config lists them (110,
// 119, 120), then those added in the console by name.
func (s *Service) Contacts() []Contact {
	rank := func(id string) int {
		if i := slices.IndexFunc(s.cfg.Contacts, func(c Contact) bool { return c.ID == id }); i >= 0 {
			return i
		}
		return len(s.cfg.Contacts)
	}
	s.mu.RLock()
	out := make([]Contact, 0, len(s.contacts))
	for _, c := range s.contacts {
		if !c.Deleted {
			c.Assets = slices.Clone(c.Assets)
			out = append(out, c)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		ci, cj := slices.Index(ContactCategories, out[i].Category), slices.Index(ContactCategories, out[j].Category)
		if ci != cj {
			return ci < cj
		}
		if ri, rj := rank(out[i].ID), rank(out[j].ID); ri != rj {
			return ri < rj
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Contact is one directory entry.
func (s *Service) Contact(id string) (Contact, error) {
	s.mu.RLock()
	c, ok := s.contacts[id]
	s.mu.RUnlock()
	if !ok || c.Deleted {
		return Contact{}, fmt.Errorf("contact %q: %w", id, ErrNotFound)
	}
	c.Assets = slices.Clone(c.Assets)
	return c, nil
}

// PutContact adds (c.Version 0) or changes a directory entry, edited by a
// person (by). Adding an id that exists is ErrConflict; changing needs the
// version read. Validation errors are *cfgerr.FieldError.
func (s *Service) PutContact(ctx context.Context, c Contact, by string) (Contact, error) {
	c.Name, c.Phone, c.Phone2, c.Notes = strings.TrimSpace(c.Name), strings.TrimSpace(c.Phone), strings.TrimSpace(c.Phone2), strings.TrimSpace(c.Notes)
	if err := c.Validate(s.Known); err != nil {
		return Contact{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.contacts[c.ID]
	switch {
	case c.Version == 0 && exists && !old.Deleted:
		return Contact{}, fmt.Errorf("contact %q exists: %w", c.ID, ErrConflict)
	case c.Version == 0 && exists: // re-adding a deleted id continues its versions
		c.Version = old.Version
	case c.Version != 0 && (!exists || old.Deleted):
		return Contact{}, fmt.Errorf("contact %q: %w", c.ID, ErrNotFound)
	case !exists && len(s.contacts) >= MaxContacts:
		return Contact{}, cfgerr.Errorf("id", "the directory has %d entries, the most it keeps; fix: delete ones no longer used", MaxContacts)
	}
	c.Deleted, c.UpdatedBy, c.Updated = false, by, s.now()
	if err := s.saveContact(ctx, &c); err != nil {
		return Contact{}, err
	}
	s.log.Info("contact saved", "contact", c.ID, "by", by, "version", c.Version)
	return c, nil
}

// DeleteContact removes a directory entry (version: the one read). A
// contact a playbook step names is ErrInUse: change the playbook first.
func (s *Service) DeleteContact(ctx context.Context, id string, version int, by string) error {
	if where, ok := s.cfg.StepContacts[id]; ok {
		return fmt.Errorf("contact %q is named by %s: %w; fix: remove it from the playbook first, or edit the contact instead", id, where, ErrInUse)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contacts[id]
	if !ok || c.Deleted {
		return fmt.Errorf("contact %q: %w", id, ErrNotFound)
	}
	if c.Version != version {
		return fmt.Errorf("contact %q is at version %d, you read %d: %w", id, c.Version, version, ErrConflict)
	}
	c.Deleted, c.UpdatedBy, c.Updated = true, by, s.now()
	if err := s.saveContact(ctx, &c); err != nil {
		return err
	}
	s.log.Info("contact deleted", "contact", id, "by", by)
	return nil
}

// saveContact stores c (its Version the stored one) and caches it with
// the next version; s.mu is held.
func (s *Service) saveContact(ctx context.Context, c *Contact) error {
	if _, err := s.store.PutRegisterContacts(ctx, []Contact{*c}, false); err != nil {
		return err
	}
	c.Version++
	s.contacts[c.ID] = *c
	return nil
}

// Resolve turns the contact ids a playbook step names into contacts;
// asset_contractor is the register's contractor for asset. Unknown ids and
// an asset without a contractor are left out.
func (s *Service) Resolve(ids []string, asset string) []Contact {
	var out []Contact
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if id == AssetContractor {
			e, ok := s.cache[asset]
			if ok && e.Contractor != "" {
				name := e.Contractor
				if a, ok := s.assets[asset]; ok && a.Name != "" {
					name += "（" + a.Name + " 维保单位 maintenance contractor）"
				}
				out = append(out, Contact{ID: AssetContractor, Name: name, Category: "contractor", Phone: e.ContractorPhone, Assets: []string{asset}})
			}
			continue
		}
		if c, ok := s.contacts[id]; ok && !c.Deleted {
			c.Assets = slices.Clone(c.Assets)
			out = append(out, c)
		}
	}
	return out
}

// Publish hands the pipeline cert_days_left for every asset with
// certificates and warranty_days_left for every asset with a warranty end.
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
		if d, ok := e.WarrantyEnd.DaysLeft(now, loc); ok {
			pts = append(pts, collectors.Point{Asset: id, Kind: s.assets[id].Kind, Field: WarrantyField, Value: collectors.Int(int64(d)), Unit: "d",
				Quality: collectors.QualityGood, Time: now})
		}
	}
	s.mu.RUnlock()
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].Asset != pts[j].Asset {
			return pts[i].Asset < pts[j].Asset
		}
		return pts[i].Field < pts[j].Field
	})
	s.sink.Publish(Source, pts)
}

// Run republishes the derived readings until ctx ends (often enough that
// they never go stale, and so the day changes at midnight).
func (s *Service) Run(ctx context.Context) error {
	s.Publish()
	collectors.Every(ctx, s.every, s.Publish)
	return nil
}
