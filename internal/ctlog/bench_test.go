package ctlog

import (
	"testing"
	"time"

	"github.com/certlake/certlake/internal/record"
)

// BenchmarkStaticEntries measures fetch throughput (no row parsing) from an
// in-process static-ct-api log with pre-built tiles and no rate limit.
func BenchmarkStaticEntries(b *testing.B) {
	const tiles = 64
	const size = tiles * 256
	s := &staticServer{size: size}
	u := s.start(b)
	for t := range uint64(tiles) { // build the tiles before timing
		s.tile(record.TilePath(t))
	}
	for _, conc := range []int{1, 4} {
		b.Run(map[int]string{1: "concurrency1", 4: "concurrency4"}[conc], func(b *testing.B) {
			cfg := Config{DefaultRateLimit: -1, DefaultConcurrency: conc, RequestTimeout: time.Minute}
			r := New(Log{URL: u, Static: true}, cfg)
			if _, err := r.TreeSize(b.Context()); err != nil {
				b.Fatal(err)
			}
			n := 0
			b.ResetTimer()
			for b.Loop() {
				err := r.Entries(b.Context(), 0, size-1, func(bt Batch) error { n += len(bt.Entries); return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkRFC6962Entries does the same over get-entries (256 per answer,
// answers encoded once and replayed).
func BenchmarkRFC6962Entries(b *testing.B) {
	const size = 16384
	s := &rfcServer{size: size, cache: true}
	srvURL := s.start(b)
	for _, conc := range []int{1, 4} {
		b.Run(map[int]string{1: "concurrency1", 4: "concurrency4"}[conc], func(b *testing.B) {
			cfg := Config{DefaultRateLimit: -1, DefaultConcurrency: conc, RequestTimeout: time.Minute}
			r := New(Log{URL: srvURL}, cfg)
			n := 0
			// Warm the server's answer cache outside the timing.
			if err := r.Entries(b.Context(), 0, size-1, func(Batch) error { return nil }); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				err := r.Entries(b.Context(), 0, size-1, func(bt Batch) error { n += len(bt.Entries); return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
