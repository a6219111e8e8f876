package lake

import (
	"syscall"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/record"
)

// benchRows is the number of rows one benchmark iteration appends.
const benchRows = 1_000_000

// benchPool returns distinct realistic rows that the benchmarks cycle
// through (renumbering cert_index), so generating 1M rows is not measured.
func benchPool(b *testing.B) []record.Row {
	b.Helper()
	return laketest.New(7, "https://ct.example.net/log").Rows(0, 1<<14, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
}

// BenchmarkWriteFiles measures Parquet encoding alone (no Delta commit).
func BenchmarkWriteFiles(b *testing.B) {
	pool := benchPool(b)
	cpu := cpuTime()
	for b.Loop() {
		dir := b.TempDir()
		tbl := &Table{path: dir, layout: layout{asDERBinary: true}}
		w := tbl.NewWriter(WriterOptions{CompressionLevel: benchLevel})
		for i := range benchRows {
			r := pool[i%len(pool)]
			r.CertIndex = uint64(i)
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.finish(); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, cpu)
}

// reportRows reports wall-clock rows/s and process CPU time per row; the
// latter predicts throughput on an idle machine when the benchmark host
// is shared.
func reportRows(b *testing.B, cpu0 time.Duration) {
	n := float64(benchRows) * float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/n, "cpu-ns/row")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchLevel = 0
