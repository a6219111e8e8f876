package merge

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
)

// DefaultIndexGroupFiles is IndexOptions.GroupFiles when zero.
const DefaultIndexGroupFiles = 16

// IndexOptions tune IndexMain.
type IndexOptions struct {
	// DB bounds the DuckDB instance that reads the files' keys.
	DB DBOptions
	// GroupFiles is the number of files one query reads; 0 means
	// DefaultIndexGroupFiles. Progress is reported after each group.
	GroupFiles int
	// Progress, when set, is called after each group with the files
	// indexed so far and the files to index.
	Progress func(done, total int)
	// Logger receives a warning per unreadable file; nil discards.
	Logger *slog.Logger
}

// IndexResult counts what IndexMain did.
type IndexResult struct {
	Files      int   `json:"files"`      // live data files of main holding rows
	Known      int   `json:"known"`      // of those, already in the key index
	Indexed    int   `json:"indexed"`    // indexed by this call
	Unreadable int   `json:"unreadable"` // could not be read; left unindexed
	Rows       int64 `json:"rows"`       // rows read to index them
}

// IndexMain brings main's key index (see package keyindex) up to date:
// every live data file not yet in it has its keys read once (two columns,
// grouped per log) and its per-log cert_index ranges saved. A merge batch
// then reads only the main files whose ranges can hold its keys, so after
// the first merge a merge reads main's keys only where they meet staging's
// (the files the live ingester added since are indexed here first).
//
// A file that cannot be read is left out of the index, with a warning: the
// batches that need it read it themselves and fail naming the batch. The
// index is a cache: an error here never makes a merge wrong, only slower.
func IndexMain(ctx context.Context, main *lake.Table, opts IndexOptions) (IndexResult, error) {
	var res IndexResult
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	snap, err := main.Snapshot(ctx)
	if err != nil {
		return res, err
	}
	ix, err := keyindex.Load(main.Path(), snap.Metadata.ID)
	if err != nil {
		return res, err
	}
	if ix.Skipped > 0 {
		log.WarnContext(ctx, "key index segments skipped (unreadable or of an earlier table at this path)", "segments", ix.Skipped)
	}
	live := make(map[string]int64, len(snap.Files))
	var todo []delta.Add
	for _, a := range snap.Files {
		live[a.Path] = a.Size
		if statsBox(a).Rows == 0 {
			continue
		}
		res.Files++
		if _, ok := ix.Lookup(a.Path, a.Size); ok {
			res.Known++
			continue
		}
		todo = append(todo, a)
	}
	if len(todo) == 0 {
		return res, nil
	}
	db, err := openDB(ctx, opts.DB)
	if err != nil {
		return res, err
	}
	defer db.Close()
	group := opts.GroupFiles
	if group <= 0 {
		group = DefaultIndexGroupFiles
	}
	var done []keyindex.File
	for start := 0; start < len(todo); start += group {
		part := todo[start:min(start+group, len(todo))]
		files, rows, err := indexFiles(ctx, db, snap, part)
		if err != nil && ctx.Err() == nil {
			// Find the unreadable files one by one; index the rest.
			files, rows = nil, 0
			for _, a := range part {
				f, n, err := indexFiles(ctx, db, snap, []delta.Add{a})
				if err != nil {
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					res.Unreadable++
					log.WarnContext(ctx, "main file not indexed: it could not be read", "file", a.Path, "err", err)
					continue
				}
				files, rows = append(files, f...), rows+n
			}
		} else if err != nil {
			return res, err
		}
		done = append(done, files...)
		res.Indexed += len(files)
		res.Rows += rows
		if opts.Progress != nil {
			opts.Progress(start+len(part), len(todo))
		}
	}
	if err := ix.Save(done, live); err != nil {
		return res, err
	}
	return res, nil
}

// indexFiles reads the per-log key ranges of adds with one query.
func indexFiles(ctx context.Context, db *duck, snap *delta.Snapshot, adds []delta.Add) ([]keyindex.File, int64, error) {
	paths := make([]string, len(adds))
	for i, a := range adds {
		paths[i] = snap.LocalPath(a)
	}
	if err := checkPaths(paths); err != nil {
		return nil, 0, err
	}
	// file_index is the file's position in the list. A group per file
	// keeps a file without rows of any key (all nulls) in the result.
	q := `SELECT file_index::BIGINT, source_url, min(cert_index)::BIGINT, max(cert_index)::BIGINT, count(cert_index)::BIGINT
		FROM read_parquet(` + sqlList(paths) + `, union_by_name = true, hive_partitioning = false)
		GROUP BY ALL ORDER BY ALL`
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("read keys of %d main files: %w", len(paths), err)
	}
	defer rs.Close()
	files := make([]keyindex.File, len(adds))
	for i, a := range adds {
		files[i] = keyindex.File{Path: a.Path, Size: a.Size}
	}
	var rows int64
	for rs.Next() {
		var (
			fi       int64
			url      sql.NullString
			lo, hi   sql.NullInt64
			nonNulls int64
		)
		if err := rs.Scan(&fi, &url, &lo, &hi, &nonNulls); err != nil {
			return nil, 0, fmt.Errorf("read keys of %d main files: %w", len(paths), err)
		}
		if fi < 0 || fi >= int64(len(files)) {
			return nil, 0, fmt.Errorf("read keys of %d main files: file index %d out of range", len(paths), fi)
		}
		rows += nonNulls
		if !url.Valid || !lo.Valid || !hi.Valid {
			continue // rows without a key: no key to find
		}
		// Negative indices do not occur; clamping keeps the range a
		// superset, as statsBox does.
		files[fi].Logs = append(files[fi].Logs, keyindex.LogRange{
			SourceURL: url.String, Min: uint64(max(lo.Int64, 0)), Max: uint64(max(hi.Int64, 0)), Rows: nonNulls,
		})
	}
	if err := rs.Err(); err != nil {
		return nil, 0, fmt.Errorf("read keys of %d main files: %w", len(paths), err)
	}
	return files, rows, nil
}

// mayBeIn reports whether a file with index entry f may hold a key of ks:
// some range of ks overlaps the file's range of the same log.
func (ks keySet) mayBeIn(f keyindex.File) bool {
	for _, l := range f.Logs {
		rs := ks.exact[l.SourceURL]
		// The first range ending at or after the file's first index.
		i, _ := slices.BinarySearchFunc(rs, l.Min, func(r KeyRange, v uint64) int { return cmp.Compare(r.End, v) })
		if i < len(rs) && rs[i].Start <= l.Max {
			return true
		}
	}
	return false
}
