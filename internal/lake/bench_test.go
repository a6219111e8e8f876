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

// BenchmarkAppend appends 1M realistic rows (~900-byte DER, two ~1.5 KB
// chain elements, 1-5 domains) to a new table through a Writer and one
// Delta commit, as a backfill or merge does.
func BenchmarkAppend(b *testing.B) {
	pool := benchPool(b)
	cpu := cpuTime()
	var bytes int64
	for b.Loop() {
		tbl, err := OpenOrCreate(b.Context(), b.TempDir()+"/t", Options{Role: RoleStaging, AsDERBinary: true})
		if err != nil {
			b.Fatal(err)
		}
		w := tbl.NewWriter(WriterOptions{})
		for i := range benchRows {
			r := pool[i%len(pool)]
			r.CertIndex = uint64(i)
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		res, err := w.Commit(b.Context(), CommitOptions{})
		if err != nil || res.Rows != benchRows {
			b.Fatalf("Commit = %+v, %v", res, err)
		}
		snap, err := tbl.Snapshot(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range tbl.Files(snap) {
			bytes += f.Size
		}
	}
	reportRows(b, cpu)
	b.ReportMetric(float64(bytes)/float64(benchRows)/float64(b.N), "file-bytes/row")
}

// BenchmarkWriteFiles measures Parquet encoding alone (no Delta commit), of
// a staging table whose as_der is binary and of one whose as_der is base64
// text (main's default type, which staging follows).
func BenchmarkWriteFiles(b *testing.B) {
	pool := benchPool(b)
	for _, bb := range []struct {
		name   string
		binary bool
	}{{"binary", true}, {"base64", false}} {
		b.Run(bb.name, func(b *testing.B) {
			bufs := NewBufferPool() // as a table keeps between Writers
			cpu := cpuTime()
			for b.Loop() {
				dir := b.TempDir()
				tbl := &Table{path: dir, layout: layout{asDERBinary: bb.binary}, bufs: bufs}
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
		})
	}
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

// BenchmarkCheckUTF8 is the cost Writer.Write pays per realistic row to
// refuse strings that are not UTF-8 (every string column and list element;
// strings that repeat from row to row are checked once). cpu-ns/row is
// process CPU time, which a loaded machine does not inflate as it does
// ns/op.
func BenchmarkCheckUTF8(b *testing.B) {
	pool := benchPool(b)
	w := &Writer{}
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		if err := w.checkUTF8(&pool[i%len(pool)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/row")
}
