package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/certlake/certlake/workflows"
)

func backfillSnapshot(at time.Time) snapshot {
	start := at.Add(-10 * time.Second)
	return snapshot{at: at, backfill: &workflows.BackfillProgress{Phase: "fetching", Logs: []workflows.LogProgress{
		{SourceURL: "https://b.example/", Name: "log b", State: "running", PlannedEntries: 4000, FetchedEntries: 1000,
			Rows: 990, BadEntries: 10, StartedAt: start, UpdatedAt: at},
		{SourceURL: "https://a.example/", State: "done", PlannedEntries: 500, FetchedEntries: 500, Rows: 500,
			FailedEntries: 0, StartedAt: start, UpdatedAt: start.Add(5 * time.Second)},
	}}}
}

func TestPlainViewLines(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	var out bytes.Buffer
	v := &plainView{w: &out, id: "bf-1"}
	v.show(backfillSnapshot(at))
	v.show(backfillSnapshot(at.Add(time.Second))) // unchanged apart from the clock: not printed again
	want := "01:02:03 backfill bf-1: fetching, 2 logs, fetched 1500/4500 (33.3%), rows 1490, failed 0\n" +
		"01:02:03   https://a.example/ done: fetched 500/500 (100.0%), rows 500, failed 0, rate 100/s, ETA -\n" +
		"01:02:03   log b running: fetched 1000/4000 (25.0%), rows 990, failed 0, rate 100/s, ETA 30s\n"
	if out.String() != want {
		t.Errorf("plain view printed\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	v.show(snapshot{at: at, merge: &workflows.MergeProgress{Phase: "merging", BatchesDone: 2,
		MergeResult: workflows.MergeResult{Batches: 5, TotalStagingRows: 900, TotalInserted: 400, TotalSkipped: 7}}})
	if want := "01:02:03 merge bf-1: merging, batches 2/5, staging rows 900, inserted 400, skipped 7\n"; out.String() != want {
		t.Errorf("plain view printed %q, want %q", out.String(), want)
	}
}

// TestLiveViewDraws draws through mpb as on a terminal and checks the
// table's cells.
func TestLiveViewDraws(t *testing.T) {
	var out syncBuffer
	v := newLiveView(&out, "bf-1", mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithWidth(140))
	v.show(backfillSnapshot(time.Now()))
	time.Sleep(600 * time.Millisecond) // a few refreshes
	v.close()
	text := out.String()
	for _, want := range []string{"backfill: fetching", "log b", "running", "1000/4000  25.0%", "rows 990", "failed 0", "100/s", "ETA 30s",
		"https://a.example/", "done", "500/500 100.0%"} {
		if !strings.Contains(text, want) {
			t.Errorf("live view lacks %q:\n%s", want, text)
		}
	}
	var mout syncBuffer
	m := newLiveView(&mout, "merge-1", mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithWidth(140))
	m.show(snapshot{at: time.Now(), merge: &workflows.MergeProgress{Phase: "done", BatchesDone: 5,
		MergeResult: workflows.MergeResult{Batches: 5, TotalStagingRows: 900, TotalInserted: 893, TotalSkipped: 7}}})
	m.close()
	for _, want := range []string{"merge: done", "batches", "5/5  staging rows 900  inserted 893  skipped 7"} {
		if !strings.Contains(mout.String(), want) {
			t.Errorf("live merge view lacks %q:\n%s", want, mout.String())
		}
	}
}
