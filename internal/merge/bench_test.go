package merge

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/record"
)

// The merge benchmark: staging rows merged into a main table, certlake's
// merge against the original's approach (MergeReference) on the same data,
// each in its own process so its peak RSS is its own.
//
//	go test ./internal/merge -run '^$' -bench BenchmarkMerge -benchtime 1x -timeout 2h
//
// Environment:
//
//	CERTLAKE_BENCH_SCALE      data size factor; 1 (default) is 50M main rows and
//	                          5M staging rows, 0.01 a CI-sized run
//	CERTLAKE_BENCH_MAIN_X     main size multiplier on top of the scale (e.g. 4 for
//	                          200M main rows) to show how times grow with main
//	CERTLAKE_BENCH_DIR        where the generated tables are kept between runs
//	                          (default: a directory under os.TempDir())
//	CERTLAKE_BENCH_REFERENCE  "0" skips the reference run
//	CERTLAKE_BENCH_BATCH_ROWS certlake's batch size (default DefaultBatchRows)
//	CERTLAKE_BENCH_MEMORY     DuckDB memory_limit of both merges (default 1GB)
//	CERTLAKE_BENCH_COPY_CHUNK_ROWS certlake's BatchOptions.CopyChunkRows
//	CERTLAKE_BENCH_THREADS    DuckDB threads of both merges (default: all cores)
//	CERTLAKE_BENCH_DEBUG      "1" logs certlake's batch phases and its RSS to stderr
//	CERTLAKE_BENCH_GO_WRITER  "1" moves certlake's new rows through the lake
//	                          writer (BatchOptions.GoWriter) instead of DuckDB's COPY
//
// The data (deterministic, no randomness outside a fixed formula):
//   - 20 logs with cert_index bases spread over [0, 2e9), as real logs are.
//   - main: mainRows keys, per log a contiguous run of indices, minus holes:
//     in the staged region (the middle of each log's run) main holds every
//     other block of 1000 indices, so half the staged keys are in main.
//     Written by DuckDB as 50 files (parallel generation; writing 50M rows
//     through the Go writer would dominate the run) in the layout of a live
//     ingester: each file is a time window holding every log's entries of
//     that window interleaved, so file and row-group stats span all logs
//     and all index bases (the hard case for pruning).
//   - staging: stagingRows keys (the staged regions), written by the lake
//     writer in 50,000-row commits per log as a backfill would, plus ~2%
//     duplicates: five ranges per log (1000 rows each at scale 1) staged twice, in later
//     commits (Q1 over-fetch).
//   - rows are compact (a 64-byte as_der, one short chain element, one or
//     two domains) so generating 55M rows stays fast; the merge reads keys
//     from main and full rows only from staging, so main's row width barely
//     matters.

const (
	benchLogs      = 20
	benchMainFiles = 50
	benchSeed      = 20241125
	benchBlock     = 1000
)

type benchSpec struct {
	Scale       float64
	MainX       int
	MainRows    int64 // per log rows x logs, before holes
	StagingRows int64 // per log staged rows x logs, duplicates excluded
}

func benchSpecFromEnv() benchSpec {
	s := benchSpec{Scale: 1, MainX: 1}
	if v, err := strconv.ParseFloat(os.Getenv("CERTLAKE_BENCH_SCALE"), 64); err == nil && v > 0 {
		s.Scale = v
	}
	if v, err := strconv.Atoi(os.Getenv("CERTLAKE_BENCH_MAIN_X")); err == nil && v > 0 {
		s.MainX = v
	}
	perLogStaged := int64(math.Round(5_000_000*s.Scale/benchLogs/benchBlock/2)) * benchBlock * 2
	perLogStaged = max(perLogStaged, 2*benchBlock)
	perLogMain := int64(math.Round(50_000_000*s.Scale/benchLogs)) * int64(s.MainX)
	perLogMain = max(perLogMain, 2*perLogStaged)
	s.MainRows = perLogMain * benchLogs
	s.StagingRows = perLogStaged * benchLogs
	return s
}

func (s benchSpec) perLogMain() int64   { return s.MainRows / benchLogs }
func (s benchSpec) perLogStaged() int64 { return s.StagingRows / benchLogs }

// holeStart is the offset (within a log's run) of the staged region.
func (s benchSpec) holeStart() int64 { return s.perLogMain()/2 - s.perLogStaged()/2 }

func benchURL(l int) string { return fmt.Sprintf("https://ct.bench.example/log%02d/", l) }

// benchBase spreads the logs' first indices over [0, 2e9).
func benchBase(l int) int64 { return int64(l) * 104729 * 9973 % 2_000_000_000 }

// ensureBenchData generates (once per spec) main and staging tables under
// dir and returns their paths.
func ensureBenchData(tb testing.TB, s benchSpec) (mainPath, stagingPath string) {
	dir := os.Getenv("CERTLAKE_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "certlake-bench-merge")
	}
	dir = filepath.Join(dir, fmt.Sprintf("m%d-s%d", s.MainRows, s.StagingRows))
	mainPath, stagingPath = filepath.Join(dir, "main"), filepath.Join(dir, "staging")
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return mainPath, stagingPath
	}
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	if err := genBenchMain(ctx, mainPath, s); err != nil {
		tb.Fatalf("generate main: %v", err)
	}
	tb.Logf("generated main (%d rows before holes) in %v", s.MainRows, time.Since(start).Round(time.Second))
	start = time.Now()
	if err := genBenchStaging(ctx, stagingPath, s); err != nil {
		tb.Fatalf("generate staging: %v", err)
	}
	tb.Logf("generated staging (%d rows + duplicates) in %v", s.StagingRows, time.Since(start).Round(time.Second))
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return mainPath, stagingPath
}

// genBenchMain writes main's files with DuckDB and commits them, one
// commit per file as an ingester's flushes.
func genBenchMain(ctx context.Context, path string, s benchSpec) error {
	t, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: lake.RoleMain})
	if err != nil {
		return err
	}
	db, err := openDB(ctx, DBOptions{MemoryLimit: "2GB"})
	if err != nil {
		return err
	}
	defer db.Close()
	// Rows in generation order (the ingester's time order) without a sort.
	if _, err := db.ExecContext(ctx, "SET preserve_insertion_order = true"); err != nil {
		return err
	}
	var bases []string
	for l := range benchLogs {
		bases = append(bases, strconv.FormatInt(benchBase(l), 10))
	}
	perFile := (s.perLogMain() + benchMainFiles - 1) / benchMainFiles
	hs, hl := s.holeStart(), s.perLogStaged()
	t0 := time.Date(2024, 11, 20, 0, 0, 0, 0, time.UTC)
	for k := range benchMainFiles {
		lo := int64(k) * perFile
		hi := min(lo+perFile, s.perLogMain())
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
		q := fmt.Sprintf(`COPY (
			WITH g AS (
				SELECT i, (i %% %[1]d)::INTEGER AS l, %[2]d + i // %[1]d AS j
				FROM range(0, %[3]d) t(i)
			), r AS (
				SELECT i, l, j, ([%[4]s])[l + 1] + j AS idx,
				       'https://ct.bench.example/log' || lpad(l::VARCHAR, 2, '0') || '/' AS url,
				       hash(([%[4]s])[l + 1] + j, l) AS h
				FROM g
				WHERE NOT (j >= %[5]d AND j < %[6]d AND ((j - %[5]d) // %[7]d) %% 2 = 1)
			)
			SELECT idx::BIGINT AS cert_index,
			       CASE WHEN idx %% 10 < 3 THEN 'X509LogEntry' ELSE 'PrecertLogEntry' END AS update_type,
			       to_timestamp(%[8]d + i // 640 * 0.15)::TIMESTAMPTZ AS seen,
			       'Bench log ' || lpad(l::VARCHAR, 2, '0') AS source_name,
			       url AS source_url,
			       url || 'ct/v1/get-entries?start=' || idx || '&end=' || idx AS cert_link,
			       printf('%%016X', h) AS serial_number,
			       printf('%%016X%%08X', h, idx) AS fingerprint,
			       printf('%%016X%%016X', h, hash(h)) AS sha256,
			       printf('%%016X%%08X', h, idx) AS sha1,
			       (1700000000 + idx %% 40000000)::BIGINT AS not_before,
			       (1700000000 + idx %% 40000000 + 7776000)::BIGINT AS not_after,
			       idx %% 100 = 0 AS is_ca,
			       'ecdsa, sha256' AS signature_algorithm,
			       '/CN=h' || idx || '.example.com' AS subject_aggregated,
			       '/C=US/CN=Bench CA R' || (idx %% 6) || '/O=Certlake Bench' AS issuer_aggregated,
			       ['h' || idx || '.example.com'] AS all_domains,
			       to_base64(encode(printf('0%%016X', h))) AS as_der,
			       ['{"subject":{"aggregated":"/C=US/CN=Bench CA R' || (idx %% 6) || '"},"is_ca":true}'] AS chain
			FROM r
		) TO %[9]s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)`,
			benchLogs, lo, (hi-lo)*benchLogs, strings.Join(bases, ","), hs, hs+hl, benchBlock,
			seen.Unix(), sqlString(local))
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("write file %d: %w", k, err)
		}
		var n int64
		var ilo, ihi sql.NullInt64
		var ulo, uhi sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT count(*), min(cert_index), max(cert_index), min(source_url), max(source_url) FROM read_parquet(`+sqlString(local)+`)`).Scan(&n, &ilo, &ihi, &ulo, &uhi); err != nil {
			return err
		}
		if n == 0 { // the window fell inside a hole
			if err := os.Remove(local); err != nil {
				return err
			}
			continue
		}
		fi, err := os.Stat(local)
		if err != nil {
			return err
		}
		stats, _ := json.Marshal(map[string]any{
			"numRecords": n,
			"minValues":  map[string]any{"cert_index": ilo.Int64, "source_url": ulo.String},
			"maxValues":  map[string]any{"cert_index": ihi.Int64, "source_url": uhi.String},
			"nullCount":  map[string]any{"cert_index": 0, "source_url": 0},
		})
		snap, err := t.Snapshot(ctx)
		if err != nil {
			return err
		}
		add := delta.Add{Path: rel, PartitionValues: map[string]string{"seen_date": date}, Size: fi.Size(),
			ModificationTime: fi.ModTime().UnixMilli(), DataChange: true, Stats: string(stats)}
		if _, err := t.Delta().Commit(ctx, snap.Version, []delta.Action{{Add: &add}}, delta.CommitOptions{Operation: "WRITE"}); err != nil {
			return err
		}
	}
	return nil
}

// benchRow is one compact staging row.
func benchRow(l int, idx int64, seen time.Time) record.Row {
	url := benchURL(l)
	h := fmt.Sprintf("%016X%016X", uint64(idx)*0x9E3779B97F4A7C15, uint64(l+1)*0xC2B2AE3D27D4EB4F^uint64(idx))
	der := make([]byte, 64)
	for i := range der {
		der[i] = h[i%len(h)] ^ byte(i*31)
	}
	return record.Row{
		CertIndex:          uint64(idx),
		UpdateType:         "PrecertLogEntry",
		Seen:               seen,
		SourceName:         fmt.Sprintf("Bench log %02d", l),
		SourceURL:          url,
		CertLink:           fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", url, idx, idx),
		SerialNumber:       h[:32],
		Fingerprint:        h,
		SHA256:             h + h,
		SHA1:               h,
		NotBefore:          1700000000 + idx%40000000,
		NotAfter:           1700000000 + idx%40000000 + 7776000,
		IsCA:               idx%100 == 0,
		SignatureAlgorithm: "ecdsa, sha256",
		SubjectAggregated:  fmt.Sprintf("/CN=h%d.example.com", idx),
		IssuerAggregated:   fmt.Sprintf("/C=US/CN=Bench CA R%d/O=Certlake Bench", idx%6),
		AllDomains:         []string{fmt.Sprintf("h%d.example.com", idx)},
		AsDER:              der,
		Chain:              []string{fmt.Sprintf(`{"subject":{"aggregated":"/C=US/CN=Bench CA R%d"},"is_ca":true}`, idx%6)},
	}
}

// genBenchStaging writes staging as a backfill would: per log, 50,000-row
// commits over the staged region, then a few ranges staged again.
func genBenchStaging(ctx context.Context, path string, s benchSpec) error {
	t, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: lake.RoleStaging})
	if err != nil {
		return err
	}
	const chunk = 50_000
	seen := time.Date(2024, 11, 25, 3, 0, 0, 0, time.UTC)
	write := func(l int, from, to int64) error {
		w := t.NewWriter(lake.WriterOptions{})
		for j := from; j < to; j++ {
			if err := w.Write(benchRow(l, benchBase(l)+j, seen)); err != nil {
				w.Abort()
				return err
			}
		}
		_, err := w.Commit(ctx, lake.CommitOptions{})
		return err
	}
	hs, hl := s.holeStart(), s.perLogStaged()
	for l := range benchLogs {
		for j := hs; j < hs+hl; j += chunk {
			if err := write(l, j, min(j+chunk, hs+hl)); err != nil {
				return err
			}
		}
	}
	// 2% duplicates: five ranges per log staged a second time.
	dupLen := max(hl/250, 1)
	for l := range benchLogs {
		w := t.NewWriter(lake.WriterOptions{})
		for d := range int64(5) {
			from := hs + (hl/5)*d
			for j := from; j < min(from+dupLen, hs+hl); j++ {
				if err := w.Write(benchRow(l, benchBase(l)+j, seen)); err != nil {
					w.Abort()
					return err
				}
			}
		}
		if _, err := w.Commit(ctx, lake.CommitOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// childResult is what a benchmark child process reports.
type childResult struct {
	Totals
	Seconds float64 `json:"seconds"`
	Batches int     `json:"batches"`
	MaxRSS  int64   `json:"max_rss_bytes"` // the child's VmHWM, read by the child at its end
	CPU     float64 `json:"cpu_seconds"`   // user + system, filled in by the parent
}

// runChild runs one merge in a child process (this test binary) and
// returns its result and peak RSS.
func runChild(tb testing.TB, mode, mainPath, stagingPath string) childResult {
	cmd := exec.Command(os.Args[0], "-test.run=^TestMergeBenchChild$", "-test.v")
	cmd.Env = append(os.Environ(), "CERTLAKE_BENCH_CHILD="+mode, "CERTLAKE_BENCH_CHILD_MAIN="+mainPath, "CERTLAKE_BENCH_CHILD_STAGING="+stagingPath)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var res childResult
	found := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "BENCH-RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				tb.Fatal(err)
			}
			found = true
		}
	}
	if err := cmd.Wait(); err != nil || !found {
		tb.Fatalf("%s merge child: %v (result found: %v)", mode, err, found)
	}
	// Not the child's rusage maxrss: Linux folds the spawning process's
	// peak RSS into it (exec keeps the larger of the old address space's
	// high-water mark, which a vfork-style spawn shares with the parent),
	// so a parent that generated the data would be charged to the merge.
	if res.MaxRSS == 0 {
		tb.Fatalf("%s merge child reported no peak RSS", mode)
	}
	res.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return res
}

// TestMergeBenchChild is the child side of BenchmarkMerge; it is skipped
// unless the benchmark started this process.
func TestMergeBenchChild(t *testing.T) {
	mode := os.Getenv("CERTLAKE_BENCH_CHILD")
	if mode == "" {
		t.Skip("run by BenchmarkMerge only")
	}
	ctx := context.Background()
	mainPath, stagingPath := os.Getenv("CERTLAKE_BENCH_CHILD_MAIN"), os.Getenv("CERTLAKE_BENCH_CHILD_STAGING")
	dbo := DBOptions{MemoryLimit: os.Getenv("CERTLAKE_BENCH_MEMORY")}
	dbo.Threads, _ = strconv.Atoi(os.Getenv("CERTLAKE_BENCH_THREADS"))
	var res childResult
	start := time.Now()
	switch mode {
	case "certlake":
		batchRows, _ := strconv.ParseInt(os.Getenv("CERTLAKE_BENCH_BATCH_ROWS"), 10, 64)
		var log *slog.Logger
		if os.Getenv("CERTLAKE_BENCH_DEBUG") != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			stop := sampleRSS(log)
			defer stop()
		}
		chunkRows, _ := strconv.ParseInt(os.Getenv("CERTLAKE_BENCH_COPY_CHUNK_ROWS"), 10, 64)
		r, err := Merge(ctx, mainPath, stagingPath, Options{BatchRows: batchRows, DB: dbo, Logger: log,
			GoWriter: os.Getenv("CERTLAKE_BENCH_GO_WRITER") == "1", CopyChunkRows: chunkRows})
		if err != nil {
			t.Fatal(err)
		}
		res.Totals, res.Batches = r.Totals, r.Batches
	case "reference":
		mt, err := lake.Open(ctx, mainPath, lake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := lake.Open(ctx, stagingPath, lake.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Totals, err = MergeReference(ctx, mt, st, dbo); err != nil {
			t.Fatal(err)
		}
		res.Batches = int((res.StagingRows + ReferenceBatchRows - 1) / ReferenceBatchRows)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	res.Seconds = time.Since(start).Seconds()
	hwm, err := laketest.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	res.MaxRSS = hwm
	b, _ := json.Marshal(res)
	fmt.Printf("BENCH-RESULT %s\n", b)
}

// mainDigest summarises a main table's content for comparison: rows,
// distinct keys, and an order-independent hash of (key, sha256).
type mainDigest struct {
	Rows, Keys int64
	Hash       string
}

func digestMain(tb testing.TB, path string) mainDigest {
	ctx := context.Background()
	t, err := lake.Open(ctx, path, lake.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var files []string
	for _, f := range lake.Files(snap) {
		files = append(files, f.LocalPath)
	}
	db, err := openDB(ctx, DBOptions{MemoryLimit: "2GB"})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var d mainDigest
	q := `SELECT count(*), count(DISTINCT (source_url, cert_index)), sum(hash(source_url, cert_index, sha256))::VARCHAR
		FROM read_parquet(` + sqlList(files) + `, union_by_name = true, hive_partitioning = false)`
	if err := db.QueryRowContext(ctx, q).Scan(&d.Rows, &d.Keys, &d.Hash); err != nil {
		tb.Fatal(err)
	}
	return d
}

// BenchmarkMerge compares certlake's merge with the original's approach on
// the same generated data; see the comment at the top of this file.
func BenchmarkMerge(b *testing.B) {
	s := benchSpecFromEnv()
	srcMain, srcStaging := ensureBenchData(b, s)
	b.Logf("machine: %d cores (GOMAXPROCS %d), %s; main %d rows before holes, staging %d rows + ~2%% duplicates",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), s.MainRows, s.StagingRows)
	for b.Loop() {
		run := func(mode string) (childResult, mainDigest) {
			dir, err := os.MkdirTemp(filepath.Dir(srcMain), "run-"+mode+"-")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
			m, st := filepath.Join(dir, "main"), filepath.Join(dir, "staging")
			if err := laketest.CloneTable(srcMain, m); err != nil {
				b.Fatal(err)
			}
			if err := laketest.CloneTable(srcStaging, st); err != nil {
				b.Fatal(err)
			}
			r := runChild(b, mode, m, st)
			return r, digestMain(b, m)
		}
		cl, clDigest := run("certlake")
		logNow(b, "certlake:  %.2f s (CPU %.2f s), peak RSS %.0f MiB, %d batches, staged %d, inserted %d, skipped %d; main %+v",
			cl.Seconds, cl.CPU, float64(cl.MaxRSS)/(1<<20), cl.Batches, cl.StagingRows, cl.Inserted, cl.Skipped, clDigest)
		b.ReportMetric(cl.Seconds, "certlake-s")
		b.ReportMetric(cl.CPU, "certlake-cpu-s")
		b.ReportMetric(float64(cl.MaxRSS)/(1<<20), "certlake-MiB")
		if cl.Inserted+cl.Skipped != cl.StagingRows {
			b.Errorf("certlake: inserted %d + skipped %d != staged %d", cl.Inserted, cl.Skipped, cl.StagingRows)
		}
		if clDigest.Rows != clDigest.Keys {
			b.Errorf("certlake: main has %d rows for %d keys", clDigest.Rows, clDigest.Keys)
		}
		if os.Getenv("CERTLAKE_BENCH_REFERENCE") == "0" {
			continue
		}
		ref, refDigest := run("reference")
		logNow(b, "reference: %.2f s (CPU %.2f s), peak RSS %.0f MiB, %d batches, staged %d, inserted %d, skipped %d; main %+v",
			ref.Seconds, ref.CPU, float64(ref.MaxRSS)/(1<<20), ref.Batches, ref.StagingRows, ref.Inserted, ref.Skipped, refDigest)
		b.Logf("ratio (reference / certlake): %.1fx time, %.1fx CPU, %.2fx peak RSS", ref.Seconds/cl.Seconds, ref.CPU/cl.CPU, float64(ref.MaxRSS)/float64(cl.MaxRSS))
		b.ReportMetric(ref.Seconds, "reference-s")
		b.ReportMetric(ref.CPU, "reference-cpu-s")
		b.ReportMetric(float64(ref.MaxRSS)/(1<<20), "reference-MiB")
		b.ReportMetric(ref.Seconds/cl.Seconds, "speedup")
		if clDigest != refDigest || cl.Totals != ref.Totals {
			b.Errorf("certlake main %+v totals %+v, reference main %+v totals %+v: want the same", clDigest, cl.Totals, refDigest, ref.Totals)
		}
	}
}

// sampleRSS logs the process's resident and peak resident memory every
// 250 ms until the returned func is called (CERTLAKE_BENCH_DEBUG), so the
// peak can be placed among the batch phases the debug log times.
func sampleRSS(log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := ""
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			data, err := os.ReadFile("/proc/self/status")
			if err != nil {
				return
			}
			var rss, hwm string
			for _, l := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
					rss = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
					hwm = strings.TrimSpace(v)
				}
			}
			if rss+hwm != last {
				log.Debug("rss", "rss", rss, "hwm", hwm)
				last = rss + hwm
			}
		}
	}()
	return func() { close(done) }
}

func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.Join(strings.Fields(line), " ")
}

// logNow logs to the benchmark and, at once, to stderr: a full-size run
// takes many minutes and benchmark logs appear only at its end.
func logNow(b *testing.B, format string, args ...any) {
	b.Helper()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	b.Logf(format, args...)
}
