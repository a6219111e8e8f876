package main

import (
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
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// dataset is a generated lake: a main table as a live ingester leaves it
// (every log's entries interleaved in time-window files, ~1.5% of indices
// missing) and a staging table as a historical backfill leaves it.
//
// Per log l, with base B, S staged keys and P main indices:
//   - staging holds B+j for j in [0, S): the lower half lies below main's
//     first index (new), the upper half over main's first S/2 indices (about
//     half of staging is therefore already in main); five runs of S/250 keys
//     are staged a second time in a later commit (duplicates inside staging);
//   - main holds B+S/2+j for j in [0, P), minus holes: runs of 1, 37, 1000
//     and 20000 indices, each kind ~0.375% of the indices, chosen by DuckDB's
//     hash of (seed, log, j / run length).
//
// A main at 2x or 4x extends every log's run (j up to 2P or 4P); the first
// P indices and their holes are the same, and staging is the same table.
type dataset struct {
	mainPath, stagingPath string
	logs                  []gaps.LogCeiling
	mainRows              int64 // rows in main
	stagingRows           int64 // rows in staging, duplicates included
	// narrow: main is a narrow main of item 6 (no digest after a merge).
	narrow bool
}

type dataSpec struct {
	seed     uint64
	logs     int
	perMain  int64 // P
	perStage int64 // S
	files    int
}

func (b *bench) spec(mainX int) dataSpec {
	s := dataSpec{seed: b.opts.seed, logs: b.size.logs, files: b.size.mainFiles * mainX}
	s.perStage = max(b.size.stagingKeys/int64(s.logs)/1000*1000, 2000)
	s.perMain = b.size.mainKeys / int64(s.logs) * int64(mainX)
	return s
}

func (s dataSpec) url(l int) string { return fmt.Sprintf("https://ct.bench.example/log%02d/", l) }

func (s dataSpec) name(l int) string { return fmt.Sprintf("Bench log %02d", l) }

// base spreads the logs' first indices as real logs' are (each log starts
// somewhere in [0, 2e9)), leaving room for a 4x main.
func (s dataSpec) base(l int) int64 {
	return int64(l)*100_000_000 + int64((s.seed*7919+uint64(l)*104729)%1_000_000)
}

// ensure generates the dataset of main size mainX (once; later runs reuse it).
func (b *bench) ensure(ctx context.Context, mainX int) (dataset, error) {
	s := b.spec(mainX)
	// The directory names the preset's sizes, so a changed preset never
	// reuses data generated for another.
	dir := filepath.Join(b.dir, fmt.Sprintf("lake-l%d-m%d-s%d-f%d", b.size.logs, b.size.mainKeys, b.size.stagingKeys, b.size.mainFiles))
	d := dataset{
		mainPath:    filepath.Join(dir, fmt.Sprintf("main-%dx", mainX)),
		stagingPath: filepath.Join(dir, "staging"),
	}
	for l := range s.logs {
		// Above every key: both planners see the whole log.
		d.logs = append(d.logs, gaps.LogCeiling{URL: s.url(l), Ceiling: uint64(s.base(l) + s.perStage/2 + s.perMain + 1)})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return d, err
	}
	if err := b.once(ctx, d.stagingPath, func() error { return genStaging(ctx, d.stagingPath, s) }); err != nil {
		return d, fmt.Errorf("generate staging: %w", err)
	}
	if err := b.once(ctx, d.mainPath, func() error { return genMain(ctx, d.mainPath, s) }); err != nil {
		return d, fmt.Errorf("generate main %dx: %w", mainX, err)
	}
	var err error
	if d.mainRows, err = tableRows(ctx, d.mainPath); err != nil {
		return d, err
	}
	if d.stagingRows, err = tableRows(ctx, d.stagingPath); err != nil {
		return d, err
	}
	return d, nil
}

// once runs gen unless path was completed by an earlier run (a marker file
// beside it records completion, so an interrupted generation starts over).
func (b *bench) once(ctx context.Context, path string, gen func() error) error {
	marker := path + ".complete"
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	t0 := time.Now()
	fmt.Fprintf(os.Stderr, "bench: generating %s ...\n", path)
	if err := gen(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: generated %s in %v\n", path, time.Since(t0).Round(time.Second))
	return os.WriteFile(marker, nil, 0o644)
}

func tableRows(ctx context.Context, path string) (int64, error) {
	t, err := lake.Open(ctx, path, lake.Options{})
	if err != nil {
		return 0, err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, f := range lake.Files(snap) {
		n += f.NumRecords
	}
	return n, nil
}

// holePredicate is true for the main offsets j of log l that are present.
func holePredicate(seed uint64, l, j string) string {
	var parts []string
	for k, run := range []int{1, 37, 1000, 20000} {
		// 1/267 of the runs of each length: ~0.375% of the indices each.
		parts = append(parts, fmt.Sprintf("hash(%d::UBIGINT, %s, (%s) // %d, %d) %% 267 <> 0", seed, l, j, run, k))
	}
	return strings.Join(parts, " AND ")
}

// genMain writes main's files with DuckDB (55M+ rows through Go would take
// most of the run) and commits each, with key stats, as an ingester's flush.
func genMain(ctx context.Context, path string, s dataSpec) error {
	t, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: lake.RoleMain})
	if err != nil {
		return err
	}
	db, err := lake.OpenDB(ctx, lake.DBOptions{MemoryLimit: "2GB"})
	if err != nil {
		return err
	}
	defer db.Close()
	var bases []string
	for l := range s.logs {
		bases = append(bases, strconv.FormatInt(s.base(l)+s.perStage/2, 10))
	}
	perFile := (s.perMain + int64(s.files) - 1) / int64(s.files)
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for k := range s.files {
		lo, hi := int64(k)*perFile, min(int64(k+1)*perFile, s.perMain)
		if lo >= hi {
			break
		}
		seen := t0.Add(time.Duration(k) * 2 * time.Hour)
		date := seen.Format(time.DateOnly)
		rel := fmt.Sprintf("seen_date=%s/part-%05d-bench-c000.zstd.parquet", date, k)
		local := filepath.Join(path, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return err
		}
		// Rows in time order: every log's entries of the window interleaved.
		// Non-key columns repeat per 1024 rows (see the package comment).
		q := fmt.Sprintf(`COPY (
	WITH g AS (
		SELECT i, (i %% %[1]d)::INTEGER AS l, %[2]d + i // %[1]d AS j FROM range(0, %[3]d) t(i)
	), r AS (
		SELECT i, l, ([%[4]s])[l + 1] + j AS idx, i // 1024 AS grp
		FROM g WHERE %[5]s
	), v AS (
		-- The non-key columns, once per 1024 rows.
		SELECT grp,
			CASE WHEN grp %% 10 < 3 THEN 'X509LogEntry' ELSE 'PrecertLogEntry' END AS update_type,
			'https://ct.bench.example/ct/v1/get-entries?start=' || grp AS cert_link,
			printf('%%016X', hash(grp)) AS serial_number,
			printf('%%040X', hash(grp, 1)) AS fingerprint,
			printf('%%064X', hash(grp, 2)) AS sha256,
			(1750000000 + grp)::BIGINT AS not_before,
			'/CN=g' || grp || '.example.com' AS subject_aggregated,
			'/C=US/CN=Bench CA R' || (grp %% 6) || '/O=Certlake Bench' AS issuer_aggregated,
			['g' || grp || '.example.com'] AS all_domains,
			to_base64(encode(printf('%%064X', hash(grp, 3)))) AS as_der,
			['{"subject":{"aggregated":"/C=US/CN=Bench CA R' || (grp %% 6) || '"},"is_ca":true}'] AS chain
		FROM (SELECT DISTINCT i // 1024 AS grp FROM range(0, %[3]d) t(i))
	), u AS (
		SELECT l, 'https://ct.bench.example/log' || lpad(l::VARCHAR, 2, '0') || '/' AS url,
			'Bench log ' || lpad(l::VARCHAR, 2, '0') AS source_name
		FROM range(0, %[1]d) t(l)
	)
	SELECT r.idx::BIGINT AS cert_index, v.update_type,
		to_timestamp(%[6]d + r.i // 640 * 0.15)::TIMESTAMPTZ AS seen,
		u.source_name, u.url AS source_url, v.cert_link, v.serial_number, v.fingerprint, v.sha256,
		v.fingerprint AS sha1, v.not_before, v.not_before + 7776000 AS not_after, false AS is_ca,
		'ecdsa, sha256' AS signature_algorithm, v.subject_aggregated, v.issuer_aggregated,
		v.all_domains, v.as_der, v.chain
	FROM r JOIN v USING (grp) JOIN u USING (l)
) TO %[7]s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`,
			s.logs, lo, (hi-lo)*int64(s.logs), strings.Join(bases, ","), holePredicate(s.seed, "l", "j"),
			seen.Unix(), lake.QuoteSQL(local))
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("write main file %d: %w", k, err)
		}
		if err := commitFile(ctx, db, t, path, rel, date, "WRITE"); err != nil {
			return fmt.Errorf("commit main file %d: %w", k, err)
		}
	}
	return nil
}

// commitFile adds one data file written outside the lake writer, with the
// key stats certlake prunes on.
func commitFile(ctx context.Context, db *sql.DB, t *lake.Table, root, rel, date, op string) error {
	local := filepath.Join(root, filepath.FromSlash(rel))
	var n int64
	var ilo, ihi sql.NullInt64
	var ulo, uhi sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT count(*), min(cert_index), max(cert_index), min(source_url), max(source_url) FROM read_parquet(`+lake.QuoteSQL(local)+`)`).
		Scan(&n, &ilo, &ihi, &ulo, &uhi); err != nil {
		return err
	}
	if n == 0 {
		return os.Remove(local)
	}
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	stats, err := json.Marshal(map[string]any{
		"numRecords": n,
		"minValues":  map[string]any{"cert_index": ilo.Int64, "source_url": ulo.String},
		"maxValues":  map[string]any{"cert_index": ihi.Int64, "source_url": uhi.String},
		"nullCount":  map[string]any{"cert_index": 0, "source_url": 0},
	})
	if err != nil {
		return err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	add := delta.Add{Path: rel, PartitionValues: map[string]string{lake.PartitionColumn: date}, Size: fi.Size(),
		ModificationTime: fi.ModTime().UnixMilli(), DataChange: true, Stats: string(stats)}
	_, err = t.Delta().Commit(ctx, snap.Version, []delta.Action{{Add: &add}}, delta.CommitOptions{Operation: op})
	return err
}

// stagingRow is one compact staging row (64-byte as_der).
func stagingRow(s dataSpec, l int, idx int64, seen time.Time) record.Row {
	h1 := uint64(idx)*0x9E3779B97F4A7C15 ^ s.seed
	h2 := uint64(l+1)*0xC2B2AE3D27D4EB4F ^ uint64(idx)
	hx := fmt.Sprintf("%016X%016X", h1, h2)
	der := make([]byte, 64)
	for i := range der {
		der[i] = hx[i%len(hx)] ^ byte(i*31)
	}
	url := s.url(l)
	return record.Row{
		CertIndex:          uint64(idx),
		UpdateType:         record.PrecertEntry.UpdateType(),
		Seen:               seen,
		SourceName:         s.name(l),
		SourceURL:          url,
		CertLink:           fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", url, idx, idx),
		SerialNumber:       hx[:32],
		Fingerprint:        hx + "01234567",
		SHA256:             hx + hx,
		SHA1:               hx + "01234567",
		NotBefore:          1700000000 + idx%40000000,
		NotAfter:           1700000000 + idx%40000000 + 7776000,
		SignatureAlgorithm: "ecdsa, sha256",
		SubjectAggregated:  fmt.Sprintf("/CN=h%d.example.com", idx),
		IssuerAggregated:   fmt.Sprintf("/C=US/CN=Bench CA R%d/O=Certlake Bench", idx%6),
		AllDomains:         []string{fmt.Sprintf("h%d.example.com", idx)},
		AsDER:              der,
		Chain:              []string{fmt.Sprintf(`{"subject":{"aggregated":"/C=US/CN=Bench CA R%d"},"is_ca":true}`, idx%6)},
	}
}

// genStaging writes staging as a backfill does: per log, 50,000-row commits,
// then a few runs staged again.
func genStaging(ctx context.Context, path string, s dataSpec) error {
	t, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: lake.RoleStaging})
	if err != nil {
		return err
	}
	const chunk = 50_000
	seen := time.Date(2025, 7, 1, 3, 0, 0, 0, time.UTC)
	write := func(l int, spans [][2]int64) error {
		w := t.NewWriter(lake.WriterOptions{})
		for _, sp := range spans {
			for j := sp[0]; j < sp[1]; j++ {
				if err := w.Write(stagingRow(s, l, s.base(l)+j, seen)); err != nil {
					w.Abort()
					return err
				}
			}
		}
		_, err := w.Commit(ctx, lake.CommitOptions{})
		return err
	}
	for l := range s.logs {
		for j := int64(0); j < s.perStage; j += chunk {
			if err := write(l, [][2]int64{{j, min(j+chunk, s.perStage)}}); err != nil {
				return err
			}
		}
	}
	dup := max(s.perStage/250, 1)
	for l := range s.logs {
		var spans [][2]int64
		for d := range int64(5) {
			from := s.perStage / 5 * d
			spans = append(spans, [2]int64{from, min(from+dup, s.perStage)})
		}
		if err := write(l, spans); err != nil {
			return err
		}
	}
	return nil
}

// digest summarizes a table's keys: rows, distinct keys, and an
// order-independent hash of the key set.
type digest struct {
	Rows, Keys int64
	Hash       string
}

func digestTable(ctx context.Context, path string) (digest, error) {
	return digestTableAt(ctx, path, lake.Options{})
}

// digestTableAt is digestTable of a table opened with opts: a remote
// table's files are read from local copies in its scratch cache.
func digestTableAt(ctx context.Context, path string, opts lake.Options) (digest, error) {
	var d digest
	t, err := lake.Open(ctx, path, opts)
	if err != nil {
		return d, err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return d, err
	}
	files := t.Files(snap)
	release, err := t.Localize(ctx, files)
	if err != nil {
		return d, err
	}
	defer release()
	// A grouped aggregate spills past the memory limit (a 200M-key main
	// does not fit a COUNT DISTINCT in memory).
	tmp, err := os.MkdirTemp("", "certlake-bench-digest-")
	if err != nil {
		return d, err
	}
	defer os.RemoveAll(tmp)
	db, err := lake.OpenDB(ctx, lake.DBOptions{MemoryLimit: "4GB", TempDir: tmp})
	if err != nil {
		return d, err
	}
	defer db.Close()
	keys, err := lake.KeysSQL(files)
	if err != nil {
		return d, err
	}
	// The hash sums distinct keys, so it describes the key set; rows vs keys
	// tells duplicates apart.
	q := `SELECT coalesce(sum(n), 0), count(*), coalesce(sum(h), 0)::VARCHAR FROM (
		SELECT count(*) AS n, any_value(hash(source_url, cert_index))::HUGEINT AS h
		FROM ` + keys + ` GROUP BY source_url, cert_index)`
	if err := db.QueryRowContext(ctx, q).Scan(&d.Rows, &d.Keys, &d.Hash); err != nil {
		return d, fmt.Errorf("digest %s: %w", path, err)
	}
	return d, nil
}

// runDir makes a fresh directory for one measured run under the bench's
// runs directory; the caller removes it.
func (b *bench) runDir(prefix string) (string, error) {
	runs := filepath.Join(b.dir, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(runs, prefix)
}
