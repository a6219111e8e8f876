package gaps

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// syntheticFiles returns, per log, the key sets of files files of a live
// ingester (file k holds the k-th slice of every log) with holes of 1, 37
// and 1000 indices, each ~1/267 of the indices, as the benchmark's mains.
func syntheticFiles(logs, files int, perFile uint64) map[string][]*roaring64.Bitmap {
	r := rand.New(rand.NewPCG(1, 2))
	out := map[string][]*roaring64.Bitmap{}
	for l := range logs {
		url := fmt.Sprintf("https://ct.example.com/logs/%02d", l)
		base := uint64(l) * 1_000_000_000
		for k := range files {
			bm := roaring64.New()
			lo, hi := base+uint64(k)*perFile, base+uint64(k+1)*perFile
			start := lo
			for i := lo; i < hi; {
				hole := uint64(0)
				switch x := r.IntN(267 * 3); {
				case x == 0:
					hole = 1
				case x == 1:
					hole = 37
				case x == 2 && r.IntN(30) == 0:
					hole = 1000
				}
				if hole == 0 {
					i++
					continue
				}
				if i > start {
					bm.AddRange(start, i)
				}
				i = min(hi, i+hole)
				start = i
			}
			if hi > start {
				bm.AddRange(start, hi)
			}
			bm.RunOptimize()
			out[url] = append(out[url], bm)
		}
	}
	return out
}

// BenchmarkDetectSetsParts compares walking each file's key set (parts)
// with walking their union, as DetectSets did before, on 20 logs x 200
// files of 50k keys (200M keys: a fifth of item 6's billion).
func BenchmarkDetectSetsParts(b *testing.B) {
	files := syntheticFiles(20, 200, 50_000)
	var logs []LogCeiling
	for u, parts := range files {
		logs = append(logs, LogCeiling{URL: u, Ceiling: parts[len(parts)-1].Maximum() + 10})
	}
	parts := func(_ context.Context, url string) ([]*roaring64.Bitmap, error) { return files[url], nil }
	union := func(_ context.Context, url string) ([]*roaring64.Bitmap, error) {
		return []*roaring64.Bitmap{roaring64.FastOr(files[url]...)}, nil
	}
	want, err := DetectSets(b.Context(), logs, union, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		keysOf KeysOf
	}{{"parts", parts}, {"union", union}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				got, err := DetectSets(b.Context(), logs, bc.keysOf, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != len(want) {
					b.Fatalf("%d ranges, want %d", len(got), len(want))
				}
			}
			b.ReportMetric(float64(len(want)), "ranges")
		})
	}
}
