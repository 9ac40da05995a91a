package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propgate/gateway/internal/replication"
)

var _ replication.BatchCenter = (*Center)(nil)

// applyBatchSQL applies a burst of events in one statement (one round
// trip): the events new by (site, epoch, seq) are recorded, each record
// touched takes the newest of them (only over an older stored change:
// newerChange), each site's last contact and last seq (of its current
// epoch, followEpochs having run first) move forward. It returns the
// (site, epoch, seq) that were new.
const applyBatchSQL = `WITH input AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $12::text[])
		AS t(site, seq, v, kind, key, at, envelope, state, priority, doc, epoch)
), ins AS (
	INSERT INTO center_events (site, epoch, seq, v, kind, key, at, received, envelope)
	SELECT site, epoch, seq, v, kind, key, at, $11, envelope::json FROM input
	ON CONFLICT (site, epoch, seq) DO NOTHING
	RETURNING site, epoch, seq
), newest AS (
	SELECT DISTINCT ON (i.site, i.kind, i.key) i.site, i.kind, i.key, i.epoch, i.seq, i.at, i.state, i.priority, i.doc
	FROM input i JOIN ins ON ins.site = i.site AND ins.epoch = i.epoch AND ins.seq = i.seq
	ORDER BY i.site, i.kind, i.key, i.epoch COLLATE "C" DESC, i.seq DESC
), rec AS (
	INSERT INTO center_records (site, kind, key, epoch, seq, at, state, priority, doc)
	SELECT site, kind, key, epoch, seq, at, state, priority, doc::json FROM newest
	ON CONFLICT (site, kind, key) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq, at = excluded.at, state = excluded.state, priority = excluded.priority, doc = excluded.doc
	WHERE ` + newerChange + `
), sites AS (
	UPDATE center_sites s SET last_seq = GREATEST(s.last_seq, COALESCE(n.seq, 0)), last_seen = GREATEST(s.last_seen, $11),
		state_since = CASE WHEN s.state = 'online' THEN s.state_since ELSE $11 END, state = 'online'
	FROM (SELECT i.site, max(i.seq) FILTER (WHERE i.epoch = c.epoch) AS seq FROM ins i JOIN center_sites c ON c.site = i.site GROUP BY i.site) n
	WHERE s.site = n.site
)
SELECT site, epoch, seq FROM ins`

// ApplyBatch implements replication.BatchCenter: the same effect as Apply
// for each event, for a whole burst in one transaction and one round trip
// (the consumer's cost per event is then a share of one commit instead of
// three statements and a commit). The envelope is stored as received.
func (c *Center) ApplyBatch(ctx context.Context, in []replication.Received, received time.Time) ([]bool, error) {
	applied := make([]bool, len(in))
	if len(in) == 0 {
		return applied, nil
	}
	type id struct {
		site, epoch string
		seq         int64
	}
	first := make(map[id]int, len(in)) // a redelivery within the burst counts once
	n := len(in)
	sites, kinds, keys, envs, states, prios, docs := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	seqs, vs, ats := make([]int64, 0, n), make([]int32, 0, n), make([]*time.Time, 0, n)
	epochs, froms := make([]string, 0, n), make([]int64, 0, n)
	for i, r := range in {
		e := r.Event
		k := id{e.Site, text(e.Epoch), e.Seq}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		state, prio := summary(e.Kind, e.Doc)
		sites, seqs, vs, kinds, keys = append(sites, e.Site), append(seqs, e.Seq), append(vs, int32(e.V)), append(kinds, e.Kind), append(keys, text(e.Key))
		epochs, froms = append(epochs, k.epoch), append(froms, e.EpochFrom)
		var at *time.Time
		if !e.At.IsZero() {
			at = &e.At
		}
		env := r.Raw
		if len(env) == 0 {
			b, err := json.Marshal(e)
			if err != nil {
				return nil, err
			}
			env = b
		}
		ats, envs, states, prios, docs = append(ats, at), append(envs, string(env)), append(states, state), append(prios, prio), append(docs, string(e.Doc))
	}
	var results []replication.Event // command results applied: matched to their commands
	err := c.tx(ctx, func(tx pgx.Tx) error {
		clear(applied)
		results = results[:0]
		if err := followEpochs(ctx, tx, sites, epochs, froms, received); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, applyBatchSQL, sites, seqs, vs, kinds, keys, ats, envs, states, prios, docs, received, epochs)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k id
			if err := rows.Scan(&k.site, &k.epoch, &k.seq); err != nil {
				rows.Close()
				return err
			}
			if i, ok := first[k]; ok {
				applied[i] = true
				if in[i].Event.Kind == replication.KindCommand {
					results = append(results, in[i].Event)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range results {
			if err := applyResult(ctx, tx, e, received); err != nil {
				return err
			}
		}
		// A site heard from is online (in the statement). Its contiguous
		// mark and gap move in Gaps, once a second, not per burst: three
		// more updates of each site's row per burst left PostgreSQL
		// rewriting those rows faster than it could clean them
		// (BenchmarkCenterScale: 466 instead of 93 µs of its CPU per
		// event, behind the sites by seconds).
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("center store: applying %d events: %w", len(in), err)
	}
	return applied, nil
}
