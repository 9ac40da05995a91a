package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// DayRollups keeps the figures of days that are over (the store), so that
// a month is read from thirty small rows instead of a million transitions:
// a day's history does not change once it is over. A kept day is dropped
// when a transition dated in it is written later (an import, a clock put
// right), and a day is not kept if one was written while it was read.
type DayRollups interface {
	// RollupMark is taken before the transitions of [from, to) are read.
	RollupMark(ctx context.Context, from, to time.Time) (int64, error)
	// SaveRollup keeps doc as kind's figures for [from, to) unless a
	// transition dated in it was written since mark was taken.
	SaveRollup(ctx context.Context, kind string, from, to time.Time, mark int64, doc []byte) error
	// Rollups are kind's kept days that begin in [from, to), by their
	// start (Unix milliseconds).
	Rollups(ctx context.Context, kind string, from, to time.Time) (map[int64]Rollup, error)
	// RollupsDropped counts the late transitions that dropped kept days:
	// when it moves, days kept in memory are forgotten too.
	RollupsDropped() uint64
}

// Rollup is one kept day.
type Rollup struct {
	End time.Time
	Doc []byte
}

// RollupScope names a figure computed from a configuration (the fault
// rules' alarms): a kept day is only read back under the same one.
func RollupScope(parts []string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Days splits [from, to) at the midnights of loc: each piece, and whether
// it is a whole day that ended before closed (its figures can be kept).
func Days(from, to, closed time.Time, loc *time.Location, fn func(start, end time.Time, whole bool) error) error {
	for t := from; t.Before(to); {
		l := t.In(loc)
		dayStart := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		next := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
		end := next
		if to.Before(end) {
			end = to
		}
		if err := fn(t, end, t.Equal(dayStart) && end.Equal(next) && !next.After(closed)); err != nil {
			return err
		}
		t = end
	}
	return nil
}
