// Package reference holds the original implementation's algorithms,
// rebuilt to check certlake's against and to measure them by: tests and
// internal/bench use it, production code never does (TestLayering).
package reference

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/record"
)

// MergeBatchRows is the record batch size of the original merge.
const MergeBatchRows = 8192

// Merge merges staging into main the way the original
// implementation does (quirk Q7 of spec/record-format.md), for the
// benchmark to compare against: it reads ALL staging rows into memory,
// then for each 8192-row batch anti-joins the batch against every file of
// main (no pruning) and appends the new rows in one commit per batch, so a
// later batch sees the earlier ones' inserts. One deviation, so the two
// merges can be compared: duplicates inside one batch are inserted once
// (the first seen in file order), not twice (Q8). It neither deletes nor
// modifies staging.
func Merge(ctx context.Context, main, staging *lake.Table, db lake.DBOptions) (merge.Totals, error) {
	var t merge.Totals
	snap, err := staging.Snapshot(ctx)
	if err != nil {
		return t, fmt.Errorf("reference merge: %w", err)
	}
	all, err := lake.ReadRows(ctx, lake.Files(snap))
	if err != nil {
		return t, fmt.Errorf("reference merge: read staging: %w", err)
	}
	t.StagingRows = int64(len(all))
	if db.MemoryLimit == "" {
		db.MemoryLimit = merge.DefaultMemoryLimit
	}
	d, err := lake.OpenDB(ctx, db)
	if err != nil {
		return t, fmt.Errorf("reference merge: %w", err)
	}
	defer d.Close()
	for start := 0; start < len(all); start += MergeBatchRows {
		batch := all[start:min(start+MergeBatchRows, len(all))]
		// Q8 fixed: first occurrence of a key in the batch wins.
		seen := make(map[refKey]bool, len(batch))
		uniq := batch[:0:0]
		for _, r := range batch {
			k := refKey{r.SourceURL, r.CertIndex}
			if !seen[k] {
				seen[k] = true
				uniq = append(uniq, r)
			}
		}
		mainSnap, err := main.Snapshot(ctx)
		if err != nil {
			return t, fmt.Errorf("reference merge: %w", err)
		}
		present, err := referencePresent(ctx, d, lake.Files(mainSnap), uniq)
		if err != nil {
			return t, fmt.Errorf("reference merge: batch at row %d: %w", start, err)
		}
		var add []record.Row
		for _, r := range uniq {
			if !present[refKey{r.SourceURL, r.CertIndex}] {
				r.SeenDate = ""
				add = append(add, r)
			}
		}
		if len(add) > 0 {
			if _, err := main.Append(ctx, add, lake.CommitOptions{Operation: "MERGE"}); err != nil {
				return t, fmt.Errorf("reference merge: batch at row %d: %w", start, err)
			}
		}
		t.Inserted += int64(len(add))
	}
	t.Skipped = t.StagingRows - t.Inserted
	return t, nil
}

type refKey struct {
	url string
	idx uint64
}

// referencePresent returns the keys of batch that some file of main holds,
// reading every main file (the original's unpruned MERGE).
func referencePresent(ctx context.Context, d *sql.DB, files []lake.FileInfo, batch []record.Row) (map[refKey]bool, error) {
	out := map[refKey]bool{}
	if len(files) == 0 || len(batch) == 0 {
		return out, nil
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.LocalPath
	}
	var vals strings.Builder
	for i, r := range batch {
		if i > 0 {
			vals.WriteByte(',')
		}
		fmt.Fprintf(&vals, "(%s,%d)", lake.QuoteSQL(r.SourceURL), r.CertIndex)
	}
	q := `WITH b(source_url, cert_index) AS (VALUES ` + vals.String() + `)
		SELECT b.source_url, b.cert_index FROM b
		SEMI JOIN read_parquet(` + sqlList(paths) + `, hive_partitioning = false) m
		ON m.source_url = b.source_url AND m.cert_index = b.cert_index`
	rows, err := d.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("anti-join against %d main files: %w", len(paths), err)
	}
	defer rows.Close()
	for rows.Next() {
		var k refKey
		var idx int64
		if err := rows.Scan(&k.url, &idx); err != nil {
			return nil, err
		}
		k.idx = uint64(idx)
		out[k] = true
	}
	return out, rows.Err()
}

// sqlList renders paths as a DuckDB list literal of strings.
func sqlList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = lake.QuoteSQL(p)
	}
	return "[" + strings.Join(q, ",") + "]"
}
