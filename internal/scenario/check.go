package scenario

import (
	"context"
	"errors"
	"fmt"

	"github.com/certlake/certlake/internal/lake"
)

// KeyCounts maps source_url to cert_index to the number of rows with that key.
type KeyCounts map[string]map[uint64]int

// Keys counts the rows of each (source_url, cert_index) in the table at path
// with DuckDB over its live files. A missing table has no keys.
func Keys(ctx context.Context, path string) (KeyCounts, error) {
	out := KeyCounts{}
	t, err := lake.Open(ctx, path, lake.Options{})
	if errors.Is(err, lake.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := lake.KeysSQL(t.Files(snap))
	if err != nil {
		return nil, err
	}
	db, err := lake.OpenDB(ctx, lake.DBOptions{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT source_url, cert_index, count(*) FROM "+keys+" GROUP BY ALL")
	if err != nil {
		return nil, fmt.Errorf("count keys of %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		var i int64
		var n int
		if err := rows.Scan(&u, &i, &n); err != nil {
			return nil, err
		}
		if out[u] == nil {
			out[u] = map[uint64]int{}
		}
		out[u][uint64(i)] = n
	}
	return out, rows.Err()
}

// Total returns the number of rows counted.
func (k KeyCounts) Total() int {
	n := 0
	for _, m := range k {
		for _, c := range m {
			n += c
		}
	}
	return n
}

// Duplicates returns the keys held more than once, as "url#index" strings.
func (k KeyCounts) Duplicates() []string {
	var out []string
	for u, m := range k {
		for i, c := range m {
			if c > 1 {
				out = append(out, fmt.Sprintf("%s#%d", u, i))
			}
		}
	}
	return out
}

// CheckStaging reports how staging differs from "exactly the missing keys of
// every log, once each".
func (s *Scenario) CheckStaging(got KeyCounts) error {
	var errs []error
	for _, l := range s.Logs {
		m := got[l.Source.URL]
		want := map[uint64]bool{}
		for _, r := range l.Missing {
			for i := r.Start; i <= r.End; i++ {
				want[i] = true
				if m[i] != 1 {
					errs = append(errs, fmt.Errorf("%s: key %d held %d times, want 1", l.Source.URL, i, m[i]))
				}
			}
		}
		for i := range m {
			if !want[i] {
				errs = append(errs, fmt.Errorf("%s: key %d staged but was not missing", l.Source.URL, i))
			}
		}
		if len(errs) > 20 {
			break
		}
	}
	return errors.Join(errs...)
}

// CheckComplete reports how main differs from "every entry of every log,
// once each".
func (s *Scenario) CheckComplete(got KeyCounts) error {
	var errs []error
	for _, l := range s.Logs {
		m := got[l.Source.URL]
		for i := uint64(0); i < l.Entries; i++ {
			if m[i] != 1 {
				errs = append(errs, fmt.Errorf("%s: key %d held %d times, want 1", l.Source.URL, i, m[i]))
				if len(errs) > 20 {
					return errors.Join(errs...)
				}
			}
		}
		if len(m) != int(l.Entries) {
			errs = append(errs, fmt.Errorf("%s: %d distinct keys, want %d", l.Source.URL, len(m), l.Entries))
		}
	}
	return errors.Join(errs...)
}
