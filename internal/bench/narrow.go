package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
)

// The billion-key item needs a main far larger than the other items'. Its
// rows are narrow: keys, seen and constant values in the other 18 columns
// (all 20 columns are present and typed as the table's schema says), so
// that a billion rows fit this machine's disk and generate in minutes. Gap
// detection and the merge's anti-join read only the keys, so narrow rows
// change what they cost only through the files' sizes.
//
// The files are written once into a pool: file k holds offsets j in
// [k*P/F, (k+1)*P/F) of every log, with the holes of holePredicate, as
// genMain's file k does (same seen times, same offsets per file). A main of
// N pool files is then a table of hard links to the first N, so mains of
// 50M, 100M, 200M and 1B keys share their files and their holes.

// narrowFile is one pool file and its Delta add stats.
type narrowFile struct {
	Rel    string `json:"rel"`
	Date   string `json:"date"`
	Size   int64  `json:"size"`
	Rows   int64  `json:"rows"`
	IdxMin int64  `json:"idx_min"`
	IdxMax int64  `json:"idx_max"`
	URLMin string `json:"url_min"`
	URLMax string `json:"url_max"`
}

// narrowPool generates (once) the pool of n files of spec s (s.files is the
// pool's file count, s.perMain its offsets per log) under dir and returns
// its files in order. An interrupted generation resumes at its next file:
// the pool of a billion keys takes tens of minutes.
func (b *bench) narrowPool(ctx context.Context, s dataSpec) ([]narrowFile, error) {
	dir := filepath.Join(b.dir, fmt.Sprintf("narrow-l%d-p%d-f%d", s.logs, s.perMain, s.files))
	index := filepath.Join(dir, "files.jsonl")
	if _, err := os.Stat(index); err != nil {
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "bench: generating %s ...\n", dir)
		if err := genNarrowPool(ctx, dir, index, s); err != nil {
			return nil, fmt.Errorf("generate narrow pool: %w", err)
		}
		fmt.Fprintf(os.Stderr, "bench: generated %s in %v\n", dir, time.Since(t0).Round(time.Second))
	}
	return readNarrowIndex(index)
}

// readNarrowIndex reads a pool's files, one JSON object a line; a torn last
// line (an interrupted write) ends the list.
func readNarrowIndex(index string) ([]narrowFile, error) {
	f, err := os.Open(index)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []narrowFile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var nf narrowFile
		if err := json.Unmarshal(sc.Bytes(), &nf); err != nil {
			if strings.HasSuffix(index, ".tmp") {
				break
			}
			return nil, fmt.Errorf("%s: %w", index, err)
		}
		out = append(out, nf)
	}
	return out, sc.Err()
}

// genNarrowPool writes the pool's files from the first one that index.tmp
// (the files done so far) does not list.
func genNarrowPool(ctx context.Context, dir, index string, s dataSpec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	done, err := readNarrowIndex(index + ".tmp")
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(done) > s.files {
		done = done[:s.files]
	}
	db, err := lake.OpenDB(ctx, lake.DBOptions{MemoryLimit: "2GB"})
	if err != nil {
		return err
	}
	defer db.Close()
	// Rewrite the list of the files done (dropping a torn line), then
	// append.
	out, err := os.Create(index + ".tmp")
	if err != nil {
		return err
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	for _, nf := range done {
		if err := enc.Encode(nf); err != nil {
			return err
		}
	}
	if len(done) > 0 {
		fmt.Fprintf(os.Stderr, "bench: narrow pool: resuming after %d files\n", len(done))
	}
	for k := len(done); k < s.files; k++ {
		nf, err := genNarrowFile(ctx, db, dir, s, k)
		if err != nil {
			return err
		}
		if err := enc.Encode(nf); err != nil {
			return err
		}
		if k%50 == 49 {
			fmt.Fprintf(os.Stderr, "bench: narrow pool: %d of %d files\n", k+1, s.files)
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(index+".tmp", index)
}

// linkNarrowMain creates (once) a main table of the first n pool files, as
// hard links, one commit per file as a live ingester's flushes.
func (b *bench) linkNarrowMain(ctx context.Context, s dataSpec, pool []narrowFile, n int) (string, error) {
	poolDir := filepath.Join(b.dir, fmt.Sprintf("narrow-l%d-p%d-f%d", s.logs, s.perMain, s.files))
	path := filepath.Join(b.dir, fmt.Sprintf("narrow-main-%d", n))
	err := b.once(ctx, path, func() error {
		t, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: lake.RoleMain})
		if err != nil {
			return err
		}
		for _, f := range pool[:n] {
			if err := linkNarrowFile(ctx, t, poolDir, path, f, "WRITE"); err != nil {
				return err
			}
		}
		return nil
	})
	return path, err
}

// linkNarrowFile hard-links pool file f into the table at root and commits it.
func linkNarrowFile(ctx context.Context, t *lake.Table, poolDir, root string, f narrowFile, op string) error {
	dst := filepath.Join(root, filepath.FromSlash(f.Rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(poolDir, filepath.FromSlash(f.Rel)), dst); err != nil {
		return err
	}
	stats, err := json.Marshal(map[string]any{
		"numRecords": f.Rows,
		"minValues":  map[string]any{"cert_index": f.IdxMin, "source_url": f.URLMin},
		"maxValues":  map[string]any{"cert_index": f.IdxMax, "source_url": f.URLMax},
		"nullCount":  map[string]any{"cert_index": 0, "source_url": 0},
	})
	if err != nil {
		return err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	add := delta.Add{Path: f.Rel, PartitionValues: map[string]string{lake.PartitionColumn: f.Date}, Size: f.Size,
		ModificationTime: time.Now().UnixMilli(), DataChange: true, Stats: string(stats)}
	_, err = t.Delta().Commit(ctx, snap.Version, []delta.Action{{Add: &add}}, delta.CommitOptions{Operation: op})
	return err
}

// genNarrowFile writes pool file k (k may be past s.files: the file a live
// writer adds next) into dir and returns it with its stats.
func genNarrowFile(ctx context.Context, db *sql.DB, dir string, s dataSpec, k int) (narrowFile, error) {
	var bases, names, urls []string
	for l := range s.logs {
		bases = append(bases, strconv.FormatInt(s.base(l)+s.perStage/2, 10))
		names = append(names, lake.QuoteSQL(s.name(l)))
		urls = append(urls, lake.QuoteSQL(s.url(l)))
	}
	perFile := (s.perMain + int64(s.files) - 1) / int64(s.files)
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	lo, hi := int64(k)*perFile, int64(k+1)*perFile
	seen := t0.Add(time.Duration(k) * 2 * time.Hour)
	date := seen.Format(time.DateOnly)
	rel := fmt.Sprintf("seen_date=%s/part-%05d-narrow-c000.zstd.parquet", date, k)
	local := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return narrowFile{}, err
	}
	// Names, URLs and seen come from constant lists and integer
	// microseconds: building them per row with string functions took
	// most of a file's time.
	q := fmt.Sprintf(`COPY (
	WITH g AS (
		SELECT i, (i %% %[1]d)::INTEGER AS l, %[2]d + i // %[1]d AS j FROM range(0, %[3]d) t(i)
	), r AS (
		SELECT i, l, ([%[4]s])[l + 1] + j AS idx FROM g WHERE %[5]s
	)
	SELECT r.idx::BIGINT AS cert_index, 'PrecertLogEntry' AS update_type,
		make_timestamptz(%[6]d::BIGINT + r.i // 640 * 150000) AS seen,
		([%[8]s])[r.l + 1] AS source_name,
		([%[9]s])[r.l + 1] AS source_url,
		'' AS cert_link, '' AS serial_number, '' AS fingerprint, '' AS sha256, '' AS sha1,
		0::BIGINT AS not_before, 0::BIGINT AS not_after, false AS is_ca, '' AS signature_algorithm,
		'' AS subject_aggregated, '' AS issuer_aggregated, []::VARCHAR[] AS all_domains, '' AS as_der,
		[]::VARCHAR[] AS chain
	FROM r
) TO %[7]s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`,
		s.logs, lo, (hi-lo)*int64(s.logs), strings.Join(bases, ","), holePredicate(s.seed, "l", "j"),
		seen.UnixMicro(), lake.QuoteSQL(local), strings.Join(names, ","), strings.Join(urls, ","))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return narrowFile{}, fmt.Errorf("write narrow file %d: %w", k, err)
	}
	nf := narrowFile{Rel: rel, Date: date}
	if err := db.QueryRowContext(ctx, `SELECT count(*), min(cert_index), max(cert_index), min(source_url), max(source_url) FROM read_parquet(`+lake.QuoteSQL(local)+`)`).
		Scan(&nf.Rows, &nf.IdxMin, &nf.IdxMax, &nf.URLMin, &nf.URLMax); err != nil {
		return nf, fmt.Errorf("stats of narrow file %d: %w", k, err)
	}
	fi, err := os.Stat(local)
	if err != nil {
		return nf, err
	}
	nf.Size = fi.Size()
	return nf, nil
}
