package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/reference"
)

// gapTimes is one side-by-side gap detection.
type gapTimes struct {
	detect, reference time.Duration
	// CPU time of all threads (DuckDB's too), less sensitive than wall time
	// to other processes on the machine; the minimum over the runs.
	detectCPU, referenceCPU time.Duration
	keys                    int64
	ranges                  int
	missing                 uint64
}

// measureGaps runs Detect and reference.Gaps over main UNION ALL staging of
// d in one DuckDB, twice each (the faster run counts: the first may pay for
// reading the files into the page cache), and checks they agree.
func (b *bench) measureGaps(ctx context.Context, d dataset, withReference bool) (gapTimes, error) {
	var g gapTimes
	files := func(path string) ([]lake.FileInfo, error) {
		t, err := lake.Open(ctx, path, lake.Options{})
		if err != nil {
			return nil, err
		}
		snap, err := t.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		return lake.Files(snap), nil
	}
	mf, err := files(d.mainPath)
	if err != nil {
		return g, err
	}
	sf, err := files(d.stagingPath)
	if err != nil {
		return g, err
	}
	keys, err := lake.UnionKeysSQL(mf, sf)
	if err != nil {
		return g, err
	}
	db, err := lake.OpenDB(ctx, lake.DBOptions{MemoryLimit: "4GB", TempDir: b.dir + "/duckdb-tmp"})
	if err != nil {
		return g, err
	}
	defer db.Close()
	g.keys = d.mainRows + d.stagingRows
	var got, want []gaps.Range
	inf := time.Duration(1 << 62)
	g.detect, g.reference, g.detectCPU, g.referenceCPU = inf, inf, inf, inf
	for range 2 {
		t0, c0 := time.Now(), cpuSelf()
		if got, err = gaps.Detect(ctx, db, keys, d.logs, gaps.Options{}); err != nil {
			return g, fmt.Errorf("detect: %w", err)
		}
		g.detect, g.detectCPU = min(g.detect, time.Since(t0)), min(g.detectCPU, cpuSelf()-c0)
		if !withReference {
			continue
		}
		t0, c0 = time.Now(), cpuSelf()
		if want, err = reference.Gaps(ctx, db, keys, d.logs, reference.GapsOptions{Original: true}); err != nil {
			return g, fmt.Errorf("reference: %w", err)
		}
		g.reference, g.referenceCPU = min(g.reference, time.Since(t0)), min(g.referenceCPU, cpuSelf()-c0)
	}
	g.ranges = len(got)
	for _, r := range got {
		g.missing += r.Len()
	}
	if withReference && !slices.Equal(got, want) {
		return g, fmt.Errorf("%w: Detect planned %d ranges, reference.Gaps %d; first difference: %s",
			errAssertion, len(got), len(want), firstDiff(got, want))
	}
	if len(got) == 0 {
		return g, fmt.Errorf("%w: no gaps planned in a lake generated with holes", errAssertion)
	}
	return g, nil
}

func firstDiff(a, b []gaps.Range) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("#%d %+v vs %+v", i, a[i], b[i])
		}
	}
	if len(a) > len(b) {
		return fmt.Sprintf("extra %+v", a[len(b)])
	}
	if len(b) > len(a) {
		return fmt.Sprintf("missing %+v", b[len(a)])
	}
	return "none"
}

// gapsItem is item 1: gap detection at 1x main.
func (b *bench) gapsItem(ctx context.Context) error {
	d, err := b.ensure(ctx, 1)
	if err != nil {
		return err
	}
	g, err := b.measureGaps(ctx, d, true)
	if err != nil {
		b.table.add(row{what: "gap detection: same ranges as reference", result: "FAIL"})
		return err
	}
	b.gaps1x = &g
	ratio := g.reference.Seconds() / g.detect.Seconds()
	b.table.add(row{
		what:     fmt.Sprintf("gap detection, %s main + %s staging keys, %d logs", count(d.mainRows), count(d.stagingRows), len(d.logs)),
		certlake: secs(g.detect), reference: secs(g.reference), ratio: times(ratio),
		target: ">= 5x faster", result: passIf(ratio >= 5),
	})
	b.table.add(row{
		what:     "gap detection: CPU time (all threads)",
		certlake: secs(g.detectCPU), reference: secs(g.referenceCPU), ratio: times(g.referenceCPU.Seconds() / g.detectCPU.Seconds()),
	})
	b.table.add(row{
		what:     "gap detection: identical output",
		certlake: fmt.Sprintf("%d ranges, %s missing", g.ranges, count(int64(g.missing))), reference: "same",
		result: "ok",
	})
	return nil
}
