package e2e

// Reliability: load. A historical backfill of 16 logs from 0 into an empty
// lake with every window at its default, then the merge, on a worker
// process whose peak RSS is measured; twice, at two sizes, to show that
// memory does not grow with the size of the ranges.

import (
	"fmt"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// loadLogs is 16 logs sharing total entries: 12 static-ct-api logs and 4
// RFC 6962 logs answering 256 entries per get-entries (as DigiCert's do).
func loadLogs(total int) []scenario.LogSpec {
	var out []scenario.LogSpec
	for i := range 16 {
		s := scenario.LogSpec{Name: fmt.Sprintf("certlake Load Log %02d", i), Static: i%4 != 3, Entries: total / 16}
		if !s.Static {
			s.MaxGetEntries = 256
		}
		out = append(out, s)
	}
	return out
}

type loadFigures struct {
	entries     int
	populate    time.Duration
	backfill    time.Duration
	merge       time.Duration
	peakMiB     float64 // after the merge
	backfillMiB float64 // after the backfill
	longestHist int64
	runs        int
}

func TestReliabilityLoad(t *testing.T) {
	t.Parallel()
	o := report(t)
	// Memory is bounded by windows x chunk (backfill) and by merge
	// batch_rows, so the sizes compared must both be above those caps: with
	// the defaults (16 logs x window 4 x stage_batch_rows 10000, batch_rows 1M) that
	// takes a million entries, the full mode. The default mode scales the
	// caps down (chunk and staging batch 250, batch_rows 12000) to show
	// the same at a size that runs in a minute.
	sizes := []int{24_000, 96_000}
	scaled := true
	if fullMode() {
		sizes = []int{1_000_000, 2_000_000}
		scaled = false
	}
	var figs []loadFigures
	for _, n := range sizes {
		t.Run(fmt.Sprintf("%d_entries", n), func(t *testing.T) {
			begin := time.Now()
			e := newProcEnv(t, scenario.Options{Logs: loadLogs(n), NoMain: true, HoleEvery: -1})
			f := loadFigures{entries: n, populate: time.Since(begin)}
			e.cfg = defaultConfig(e.sc, e.queue)
			if scaled {
				e.cfg.Backfill.ChunkSize = 250
				e.cfg.Backfill.StageBatchRows = 250
				e.cfg.Merge.BatchRows = 12000
			}
			w := startWorkerProc(t, "worker", writeConfig(t, e.cfg))
			want := map[string]uint64{}
			for _, l := range e.sc.Logs {
				want[record.NormalizeURL(l.URL)] = l.Entries
			}

			from := uint64(0)
			begin = time.Now()
			res, err := e.backfill("load", workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: &from})
			if err != nil {
				t.Fatalf("backfill: %v", err)
			}
			f.backfill = time.Since(begin)
			f.backfillMiB = w.peakRSS()
			if res.RecordsWritten != int64(n) || res.LogsFailed != 0 || res.LogsTotal != 16 {
				t.Fatalf("backfill result = %+v, want %d rows from 16 logs", res, n)
			}
			begin = time.Now()
			mr, err := e.merge("load-merge", workflows.MergeInput{StagingPath: e.sc.StagingPath})
			if err != nil {
				t.Fatalf("merge: %v", err)
			}
			f.merge = time.Since(begin)
			f.peakMiB = w.peakRSS()
			f.longestHist, f.runs = maxHistory(t, e.c, e.queue)
			if mr.TotalInserted != int64(n) || !mr.StagingRetired {
				t.Fatalf("merge result = %+v, want %d inserted, staging retired", mr, n)
			}
			if err := checkAll(e.keys(e.sc.MainPath), want); err != nil {
				t.Fatalf("main: %v", err)
			}
			o.check("%d entries of 16 logs: backfill from 0 and merge, every entry once in main, staging retired", n)
			caps := "defaults"
			if scaled {
				caps = "chunk 250, stage_batch_rows 250, batch_rows 12000, other defaults"
			}
			o.figure("%d entries (%s): logs filled in %.0f s; backfill %.1f s (%.0f entries/s), worker peak RSS %.0f MiB; merge %.1f s (%d batches), peak RSS %.0f MiB; longest history %d events over %d runs",
				n, caps, f.populate.Seconds(), f.backfill.Seconds(), float64(n)/f.backfill.Seconds(), f.backfillMiB,
				f.merge.Seconds(), mr.Batches, f.peakMiB, f.longestHist, f.runs)
			figs = append(figs, f)
		})
	}
	if len(figs) == 2 {
		x := figs[1].entries / figs[0].entries
		bg, mg := figs[1].backfillMiB/figs[0].backfillMiB, figs[1].peakMiB/figs[0].peakMiB
		o.figure("peak RSS x%.2f after the backfill, x%.2f after the merge, for x%d entries", bg, mg, x)
		// Bounded: the worker's memory is set by windows and batch sizes,
		// not by how many entries a run covers. Linear growth would be x4;
		// Go's heap pacing and caches leave some slack.
		if bg > 2 || mg > 2 {
			t.Errorf("peak RSS grew x%.2f (backfill, %.0f -> %.0f MiB) and x%.2f (merge, %.0f -> %.0f MiB) for x%d entries: memory is not bounded",
				bg, figs[0].backfillMiB, figs[1].backfillMiB, mg, figs[0].peakMiB, figs[1].peakMiB, x)
		} else {
			o.check("memory bounded (growth <= x2 for x%d entries): peak RSS x%.2f (backfill) and x%.2f (merge)", x, bg, mg)
			if bg > 1.25 || mg > 1.25 {
				o.note("peak RSS still grows x%.2f (backfill) / x%.2f (merge) for x%d entries with saturated windows: something held per run grows with its size", bg, mg, x)
			}
		}
	}
}
