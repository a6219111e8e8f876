package gaps

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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

// TestDetectSetsPartsMatchBruteForce: DetectSets plans the same ranges
// from a log's keys split into many parts (files in no order, overlapping
// spans, keys held by several parts, as a compacted main, a concurrent
// writer's files and staging give them) as the index-by-index definition.
func TestDetectSetsPartsMatchBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	urls := []string{logA, logB, logC}
	main, staging := randomKeys(r, urls, 5_000)
	all := slices.Concat(main, staging)
	parts := map[string][]*roaring64.Bitmap{}
	for _, u := range urls {
		for range 12 {
			parts[u] = append(parts[u], roaring64.New())
		}
	}
	for _, k := range all {
		p := parts[k.url]
		p[r.IntN(len(p))].Add(k.index)
		if r.IntN(5) == 0 { // the same key in a second part
			p[r.IntN(len(p))].Add(k.index)
		}
	}
	keysOf := func(_ context.Context, url string) ([]*roaring64.Bitmap, error) { return parts[url], nil }
	for round := range 12 {
		var logs []LogCeiling
		for _, u := range urls {
			logs = append(logs, LogCeiling{u, uint64(2_000 + r.IntN(20_000))})
		}
		opts := Options{IncludeFrontier: round%3 == 2}
		if round%2 == 1 {
			opts.From = from(uint64(r.IntN(10_000)))
		}
		want := bruteForce(all, logs, opts)
		got, err := DetectSets(t.Context(), logs, keysOf, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("round %d: DetectSets(%s) = %d ranges, want %d; first difference %s", round, optsString(opts), len(got), len(want), firstDiff(got, want))
		}
		if len(want) == 0 {
			t.Errorf("round %d: bruteForce planned nothing: the round tests nothing", round)
		}
	}
}
