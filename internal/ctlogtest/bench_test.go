package ctlogtest

import (
	"testing"
)

// The benchmarks report entries/s; b.N is the number of entries, so run
// them with e.g. -benchtime=5000x (HTTP) or -benchtime=200000x (bulk).

func BenchmarkGeneratorIssue(b *testing.B) {
	gen := newGen(b, GeneratorOptions{})
	for b.Loop() {
		if _, err := gen.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func benchLogs(b *testing.B, run func(b *testing.B, l *Log, gen *Generator)) {
	for _, kind := range []string{"static", "rfc6962"} {
		b.Run(kind, func(b *testing.B) {
			l := newLogTB(b, kind == "static")
			gen := newGen(b, GeneratorOptions{})
			b.ResetTimer()
			run(b, l, gen)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			if size, err := l.TreeSize(b.Context()); err != nil || size != uint64(b.N) {
				b.Fatalf("TreeSize() = %d, %v, want %d", size, err, b.N)
			}
		})
	}
}

// BenchmarkAddCertificates measures add-chain/add-pre-chain over HTTP,
// certificate generation included.
func BenchmarkAddCertificates(b *testing.B) {
	benchLogs(b, func(b *testing.B, l *Log, gen *Generator) {
		if _, err := l.AddCertificates(b.Context(), b.N, gen); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkAddBulk measures the in-process path, generation included.
func BenchmarkAddBulk(b *testing.B) {
	benchLogs(b, func(b *testing.B, l *Log, gen *Generator) {
		if err := l.AddBulk(b.Context(), b.N, gen, nil); err != nil {
			b.Fatal(err)
		}
	})
}
