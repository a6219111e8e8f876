package record

import (
	"testing"
	"time"
)

// realEntries returns every real captured entry available to the tests:
// scanner.FourEntries (with chains), tesseract's 256 precerts and the 1,034
// navigli2025h2 precerts (whose chains are fingerprints only).
func realEntries(tb testing.TB) []Entry {
	tb.Helper()
	var out []Entry
	for i, e := range fourEntries(tb) {
		typ, cert, chain, err := DecodeRFC6962(e.LeafInput, e.ExtraData)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, Entry{Index: uint64(i), Type: typ, Cert: cert, Chain: chain})
	}
	add := func(body []byte) {
		leaves, err := DecodeTile(body)
		if err != nil {
			tb.Fatal(err)
		}
		for i, l := range leaves {
			out = append(out, Entry{Index: uint64(i), Type: l.Type, Cert: l.Cert})
		}
	}
	add(tesseractTile())
	for _, tile := range navigliTiles(tb) {
		add(tile.body)
	}
	return out
}

// reportRate reports rows per second of wall time and per CPU-second of the
// whole process (GC included): "rows/cpu-s" is the rows-per-core figure.
func reportRate(b *testing.B, start time.Time, cpuStart time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	if cpu := processCPUTime() - cpuStart; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "rows/cpu-s")
	}
}

// BenchmarkBuild measures rows per second per core over all real entries.
func BenchmarkBuild(b *testing.B) {
	entries := realEntries(b)
	src := Source{URL: "https://ct.example.net/log", Name: "Example Log"}
	seen := time.Now()
	run := func(b *testing.B, build func(Entry, Source) (Row, error)) {
		b.ReportAllocs()
		b.ResetTimer()
		start, cpuStart := time.Now(), processCPUTime()
		for i := 0; i < b.N; i++ {
			e := entries[i%len(entries)]
			e.Seen = seen
			if _, err := build(e, src); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, start, cpuStart)
	}
	b.Run("Build", func(b *testing.B) { run(b, Build) })
	b.Run("Builder", func(b *testing.B) { run(b, new(Builder).Build) })
}

// BenchmarkBuildWithChain measures entries that carry a two-certificate
// chain (scanner.FourEntries entry 0), with and without the chain cache.
func BenchmarkBuildWithChain(b *testing.B) {
	e := fourEntry(b, 0, 0, time.Now())
	src := Source{URL: "https://ct.example.net/log", Name: "Example Log"}
	for _, bb := range []struct {
		name  string
		build func(Entry, Source) (Row, error)
	}{{"Build", Build}, {"Builder", new(Builder).Build}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			start, cpuStart := time.Now(), processCPUTime()
			for i := 0; i < b.N; i++ {
				if _, err := bb.build(e, src); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, start, cpuStart)
		})
	}
}
