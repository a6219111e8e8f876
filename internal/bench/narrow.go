package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/pqwrite"
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

// narrowColumns are the narrow files' columns: the table's 20, without
// the partition column, required, zstd; constant columns dictionary
// encoded.
var narrowColumns = func() []pqwrite.Column {
	var cols []pqwrite.Column
	add := func(t pqwrite.Type, dict bool, names ...string) {
		for _, n := range names {
			cols = append(cols, pqwrite.Column{Name: n, Type: t, Dictionary: dict, Stats: n == "cert_index" || n == "source_url", Codec: pqwrite.Zstd})
		}
	}
	add(pqwrite.Int64, false, "cert_index")
	add(pqwrite.String, true, "update_type")
	add(pqwrite.TimestampMicros, true, "seen")
	add(pqwrite.String, true, "source_name", "source_url", "cert_link", "serial_number", "fingerprint", "sha256", "sha1")
	add(pqwrite.Int64, true, "not_before", "not_after")
	add(pqwrite.Boolean, false, "is_ca")
	add(pqwrite.String, true, "signature_algorithm", "subject_aggregated", "issuer_aggregated")
	add(pqwrite.StringList, false, "all_domains")
	add(pqwrite.String, true, "as_der")
	add(pqwrite.StringList, false, "chain")
	return cols
}()

// narrowRowGroup is the rows of a narrow file's row group.
const narrowRowGroup = 122_880

// genNarrowFile writes pool file k (k may be past s.files: the file a live
// writer adds next) into dir and returns it with its stats. Row i of the
// file is offset j = lo + i/logs of log l = i%logs, unless (l, j) is a
// hole (holePredicate). DuckDB finds the holes (its hash defines them);
// the rows are written by pqwrite, which writes the constant columns for
// a fraction of what DuckDB's COPY took (most of a billion keys'
// generation time).
func genNarrowFile(ctx context.Context, db *sql.DB, dir string, s dataSpec, k int) (narrowFile, error) {
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
	logs := int64(s.logs)
	n := (hi - lo) * logs
	rs, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT i FROM (
		SELECT i, (i %% %[1]d)::INTEGER AS l, %[2]d + i // %[1]d AS j FROM range(0, %[3]d) t(i)
	) WHERE NOT (%[4]s) ORDER BY i`, logs, lo, n, holePredicate(s.seed, "l", "j")))
	if err != nil {
		return narrowFile{}, fmt.Errorf("holes of narrow file %d: %w", k, err)
	}
	var holes []int64
	for rs.Next() {
		var i int64
		if err := rs.Scan(&i); err != nil {
			rs.Close()
			return narrowFile{}, err
		}
		holes = append(holes, i)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return narrowFile{}, err
	}
	nf := narrowFile{Rel: rel, Date: date, IdxMin: math.MaxInt64, IdxMax: -1}
	if err := writeNarrowFile(local, s, lo, n, holes, seen.UnixMicro(), &nf); err != nil {
		return nf, fmt.Errorf("write narrow file %d: %w", k, err)
	}
	fi, err := os.Stat(local)
	if err != nil {
		return nf, err
	}
	nf.Size = fi.Size()
	return nf, nil
}

// writeNarrowFile writes rows 0..n-1 but the holes (ascending) to path and
// fills nf's row count and key stats.
func writeNarrowFile(path string, s dataSpec, lo, n int64, holes []int64, seenMicros int64, nf *narrowFile) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := pqwrite.NewWriter(bw, narrowColumns, pqwrite.Options{CreatedBy: "certlake bench"})
	if err != nil {
		return err
	}
	logs := int64(s.logs)
	var bases []int64
	var names, urls [][]byte
	for l := range s.logs {
		bases = append(bases, s.base(l)+s.perStage/2)
		names = append(names, []byte(s.name(l)))
		urls = append(urls, []byte(s.url(l)))
	}
	var (
		idx, seen       []int64
		name, url, none [][]byte
		zeros           []int64
		falses          []bool
		levels          []int16
		urlMin, urlMax  = -1, -1
	)
	flush := func() error {
		rows := len(idx)
		if rows == 0 {
			return nil
		}
		for len(none) < rows {
			none, zeros, falses, levels = append(none, nil), append(zeros, 0), append(falses, false), append(levels, 0)
		}
		constant := [][]byte{[]byte("PrecertLogEntry")}
		for len(constant) < rows {
			constant = append(constant, constant[0])
		}
		for c, col := range narrowColumns {
			cw := w.Column(c)
			var err error
			switch col.Name {
			case "cert_index":
				err = cw.Int64s(idx)
			case "seen":
				err = cw.Int64s(seen)
			case "update_type":
				err = cw.ByteArrays(constant)
			case "source_name":
				err = cw.ByteArrays(name)
			case "source_url":
				err = cw.ByteArrays(url)
			case "not_before", "not_after":
				err = cw.Int64s(zeros[:rows])
			case "is_ca":
				err = cw.Bools(falses[:rows])
			case "all_domains", "chain":
				err = cw.List(nil, levels[:rows], levels[:rows])
			default:
				err = cw.ByteArrays(none[:rows])
			}
			if err != nil {
				return err
			}
		}
		idx, seen, name, url = idx[:0], seen[:0], name[:0], url[:0]
		return w.EndRowGroup()
	}
	h := 0
	for i := range n {
		if h < len(holes) && holes[h] == i {
			h++
			continue
		}
		l, j := i%logs, lo+i/logs
		x := bases[l] + j
		idx = append(idx, x)
		seen = append(seen, seenMicros+i/640*150_000)
		name, url = append(name, names[l]), append(url, urls[l])
		nf.Rows++
		nf.IdxMin, nf.IdxMax = min(nf.IdxMin, x), max(nf.IdxMax, x)
		if urlMin < 0 || string(urls[l]) < string(urls[urlMin]) {
			urlMin = int(l)
		}
		if urlMax < 0 || string(urls[l]) > string(urls[urlMax]) {
			urlMax = int(l)
		}
		if len(idx) == narrowRowGroup {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if urlMin >= 0 {
		nf.URLMin, nf.URLMax = string(urls[urlMin]), string(urls[urlMax])
	}
	return bw.Flush()
}
