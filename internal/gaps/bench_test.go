//go:build unix

package gaps

import (
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

const (
	benchLogs   = 20
	benchPerLog = 2_525_000 // indices per log; ~1% are holes, so ~50M keys in all
	benchFiles  = 4
)

// benchLake writes benchFiles Parquet files holding ~50M keys of benchLogs
// logs, deterministically. Each file covers a quarter of every log's range, as
// a live ingester's files do. Holes come in three sizes, each ~0.33% of the
// indices: single entries, runs of 37 and runs of 1000.
func benchLake(b *testing.B) (keys string, logs []LogCeiling, n int64) {
	b.Helper()
	db := openDB(b)
	dir := b.TempDir()
	start := time.Now()
	for f := range benchFiles {
		lo, hi := f*benchPerLog/benchFiles, (f+1)*benchPerLog/benchFiles
		q := fmt.Sprintf(`COPY (
	SELECT 'https://ct.example.com/logs/' || l AS source_url,
		(l * 1000003 + (l %% 3) * 1000000000 + i)::BIGINT AS cert_index
	FROM range(%d, %d) r(i), range(%d) t(l)
	WHERE hash(l, i // 1000) %% 300 <> 0 AND hash(l, i // 37, 1) %% 300 <> 0 AND hash(l, i, 2) %% 300 <> 0
) TO '%s' (FORMAT parquet, COMPRESSION zstd)`, lo, hi, benchLogs, filepath.Join(dir, fmt.Sprintf("part-%d.parquet", f)))
		if _, err := db.ExecContext(b.Context(), q); err != nil {
			b.Fatalf("write bench lake: %v", err)
		}
	}
	keys = "read_parquet('" + filepath.Join(dir, "*.parquet") + "')"
	if err := db.QueryRowContext(b.Context(), "SELECT count(*) FROM "+keys).Scan(&n); err != nil {
		b.Fatal(err)
	}
	for l := range benchLogs {
		base := uint64(l*1000003 + (l%3)*1000000000)
		logs = append(logs, LogCeiling{fmt.Sprintf("https://ct.example.com/logs/%d", l), base + benchPerLog})
	}
	b.Logf("bench lake: %d keys in %d files, written in %v", n, benchFiles, time.Since(start).Round(time.Millisecond))
	return keys, logs, n
}

// processCPU returns the CPU time the process used so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDetect50M compares Detect with the original's LEAD query
// (reference.Gaps, Original) on ~50M keys with ~1% holes. The ceilings lie
// above every key, so both plan the same ranges.
func BenchmarkDetect50M(b *testing.B) {
	keys, logs, n := benchLake(b)
	db := openDB(b)
	var detect, reference, detectCPU, referenceCPU time.Duration
	var ranges int
	for b.Loop() {
		t0, c0 := time.Now(), processCPU()
		got, err := Detect(b.Context(), db, keys, logs, Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), processCPU()
		want, err := detectReference(b.Context(), db, keys, logs, Options{}, true)
		if err != nil {
			b.Fatal(err)
		}
		detect += t1.Sub(t0)
		reference += time.Since(t1)
		detectCPU += c1 - c0
		referenceCPU += processCPU() - c1
		if !slices.Equal(got, want) {
			b.Fatalf("Detect = %d ranges, reference.Gaps = %d; first difference %s", len(got), len(want), firstDiff(got, want))
		}
		ranges = len(got)
	}
	loops := float64(b.N)
	b.ReportMetric(detect.Seconds()/loops, "detect-s")
	b.ReportMetric(reference.Seconds()/loops, "reference-s")
	b.ReportMetric(reference.Seconds()/detect.Seconds(), "speedup")
	// CPU seconds (all DuckDB threads) are less sensitive than wall time to
	// other processes sharing the machine.
	b.ReportMetric(detectCPU.Seconds()/loops, "detect-cpu-s")
	b.ReportMetric(referenceCPU.Seconds()/loops, "reference-cpu-s")
	b.ReportMetric(float64(n), "keys")
	b.ReportMetric(float64(ranges), "ranges")
}
