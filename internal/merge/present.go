package merge

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/certlake/certlake/internal/keyindex"
)

// The anti-join against main's key index: the batch's chosen keys go from
// DuckDB to Go as per-log bitmaps (one 64-bit word per 64 indices, so a
// dense batch is a few thousand rows), are intersected with the key sets of
// main's indexed files, and the keys main holds go back to DuckDB the same
// way, as table present_words(u, w, m): bit i of m is index 64w+i. No main
// Parquet file is read for them.

// stagingSets returns the batch's chosen keys per log (read once per batch:
// chosen does not change between attempts).
func (m *batchRun) stagingSets(ctx context.Context) (map[string]*roaring64.Bitmap, error) {
	if m.staged != nil {
		return m.staged, nil
	}
	rs, err := m.db.QueryContext(ctx, `SELECT source_url, cert_index::UBIGINT >> 6 AS w,
		bit_or(1::UBIGINT << (cert_index::UBIGINT & 63::UBIGINT)) AS m
		FROM chosen WHERE source_url IS NOT NULL AND cert_index >= 0 GROUP BY ALL`)
	if err != nil {
		return nil, fmt.Errorf("read the batch's keys: %w", err)
	}
	defer rs.Close()
	sets := map[string]*roaring64.Bitmap{}
	var buf []uint64
	for rs.Next() {
		var (
			u    string
			w, b uint64
		)
		if err := rs.Scan(&u, &w, &b); err != nil {
			return nil, fmt.Errorf("read the batch's keys: %w", err)
		}
		bm := sets[u]
		if bm == nil {
			bm = roaring64.New()
			sets[u] = bm
		}
		if b == ^uint64(0) {
			bm.AddRange(w*64, w*64+64)
			continue
		}
		buf = buf[:0]
		for i := range uint64(64) {
			if b&(1<<i) != 0 {
				buf = append(buf, w*64+i)
			}
		}
		bm.AddMany(buf)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read the batch's keys: %w", err)
	}
	m.staged = sets
	return sets, nil
}

// loadPresent fills present_words with the batch's keys that the indexed
// main files hold, and returns how many keys that is.
func (m *batchRun) loadPresent(ctx context.Context, files []keyindex.File) (int64, error) {
	if _, err := m.db.ExecContext(ctx, `CREATE OR REPLACE TABLE present_words (u VARCHAR, w UBIGINT, m UBIGINT)`); err != nil {
		return 0, fmt.Errorf("create present_words: %w", err)
	}
	staged, err := m.stagingSets(ctx)
	if err != nil {
		return 0, err
	}
	present := map[string]*roaring64.Bitmap{}
	for _, f := range files {
		for u, bm := range f.Keys {
			s := staged[u]
			if s == nil || bm.IsEmpty() || bm.Maximum() < s.Minimum() || s.Maximum() < bm.Minimum() || !bm.Intersects(s) {
				continue
			}
			in := roaring64.And(bm, s)
			if p := present[u]; p != nil {
				p.Or(in)
			} else {
				present[u] = in
			}
		}
	}
	if len(present) == 0 {
		return 0, nil
	}
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("load present keys: %w", err)
	}
	defer conn.Close()
	var n int64
	err = conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("duckdb connection is %T", dc)
		}
		app, err := duckdb.NewAppenderFromConn(dconn, "", "present_words")
		if err != nil {
			return err
		}
		for u, bm := range present {
			it := bm.Iterator()
			var w, word uint64
			started := false
			for it.HasNext() {
				v := it.Next()
				n++
				if started && v>>6 != w {
					if err := app.AppendRow(u, w, word); err != nil {
						app.Close()
						return err
					}
					word = 0
				}
				w, started = v>>6, true
				word |= 1 << (v & 63)
			}
			if started {
				if err := app.AppendRow(u, w, word); err != nil {
					app.Close()
					return err
				}
			}
		}
		return app.Close()
	})
	if err != nil {
		return 0, fmt.Errorf("load present keys: %w", err)
	}
	return n, nil
}
