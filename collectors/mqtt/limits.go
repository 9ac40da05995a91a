package mqtt

import (
	"strings"
	"sync"

	"github.com/propgate/gateway/collectors"
)

// Defaults for the per-subscription bounds on names taken from topic levels.
const (
	DefaultMaxAssets         = 10000
	DefaultMaxFieldsPerAsset = 256
	// MaxNameLen bounds an asset id or field name filled in from topic
	// levels (a level may be 64 KiB long).
	MaxNameLen = 128
)

// Reasons a point is refused, the reason label of gateway_mqtt_points_refused_total.
const (
	ReasonTooManyAssets = "too_many_assets"
	ReasonTooManyFields = "too_many_fields"
	ReasonNameTooLong   = "name_too_long"
)

// limiter bounds the distinct assets and fields one subscription creates
// from topic levels: anyone allowed to publish on the broker could otherwise
// invent a new field per topic. The first names seen are kept for the life
// of the process; later new names beyond the bounds are refused. When the
// sink knows the declared assets, points for other assets pass untracked
// (the sink drops and counts them), so invented asset ids cannot use up the
// bound and lock out real devices.
type limiter struct {
	dynAsset, dynField  bool
	maxAssets, maxField int
	known               func(asset string) bool // nil: every asset counts

	mu     sync.Mutex
	assets map[string]map[string]struct{} // asset → fields (nil unless dynField)
}

func newLimiter(s *Subscription, known func(string) bool) *limiter {
	l := &limiter{dynAsset: strings.Contains(s.Asset, "{"), maxAssets: s.MaxAssets, maxField: s.MaxFieldsPerAsset,
		known: known, assets: map[string]map[string]struct{}{}}
	for _, f := range s.Fields {
		l.dynField = l.dynField || strings.Contains(f.Name, "{")
	}
	return l
}

// admit keeps the points within the bounds, in order, and returns them with
// the count refused per reason (nil when none).
func (l *limiter) admit(pts []collectors.Point) ([]collectors.Point, map[string]int) {
	if !l.dynAsset && !l.dynField {
		return pts, nil // every name is fixed by the config
	}
	var refused map[string]int
	refuse := func(reason string) {
		if refused == nil {
			refused = map[string]int{}
		}
		refused[reason]++
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := pts[:0]
	for _, p := range pts {
		if (l.dynAsset && len(p.Asset) > MaxNameLen) || (l.dynField && len(p.Field) > MaxNameLen) {
			refuse(ReasonNameTooLong)
			continue
		}
		fields, ok := l.assets[p.Asset]
		if !ok && l.known != nil && !l.known(p.Asset) {
			kept = append(kept, p) // undeclared: the sink drops it as unknown_asset
			continue
		}
		if !ok {
			if len(l.assets) >= l.maxAssets {
				refuse(ReasonTooManyAssets)
				continue
			}
			if l.dynField {
				fields = map[string]struct{}{}
			}
			l.assets[p.Asset] = fields
		}
		if l.dynField {
			if _, ok := fields[p.Field]; !ok {
				if len(fields) >= l.maxField {
					refuse(ReasonTooManyFields)
					continue
				}
				fields[p.Field] = struct{}{}
			}
		}
		kept = append(kept, p)
	}
	return kept, refused
}
