package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

func twoLogs(static, rfc int) []scenario.LogSpec {
	return []scenario.LogSpec{
		{Name: "certlake Static Log", Static: true, Entries: static},
		{Name: "certlake RFC 6962 Log", Entries: rfc, MaxGetEntries: 16},
	}
}

func missingTotal(sc *scenario.Scenario) int64 {
	var n int64
	for _, l := range sc.Logs {
		n += int64(l.MissingCount())
	}
	return n
}

// The product's main job: a lake with holes is backfilled into staging with
// exactly the missing keys, then merged into a complete main table.
func TestBackfillThenMergeFillsEveryHoleOnce(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(3000, 2000)})
	want := missingTotal(e.sc)
	if want == 0 {
		t.Fatal("scenario has no holes")
	}
	res, err := e.backfill("backfill", workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if res.RecordsWritten != want || res.LogsTotal != 2 || res.LogsSucceeded != 2 || res.LogsFailed != 0 || len(res.FailedRanges) != 0 {
		t.Fatalf("backfill result = %+v, want %d records from 2 logs, no failure", res, want)
	}
	if err := e.sc.CheckStaging(e.keys(e.sc.StagingPath)); err != nil {
		t.Fatalf("staging after backfill: %v", err)
	}

	// A second backfill finds nothing left to do (AC2.2: fewer work items).
	res2, err := e.backfill("backfill-again", workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	if err != nil || res2.RecordsWritten != 0 || res2.PlannedEntries != 0 {
		t.Fatalf("second backfill = %+v, %v; want nothing planned", res2, err)
	}

	mr, err := e.merge("merge", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if mr.TotalStagingRows != want || mr.TotalInserted != want || mr.TotalSkipped != 0 || !mr.StagingRetired {
		t.Fatalf("merge result = %+v, want %d staged and inserted, staging retired", mr, want)
	}
	if err := e.sc.CheckComplete(e.keys(e.sc.MainPath)); err != nil {
		t.Fatalf("main after merge: %v", err)
	}
	if _, err := os.Stat(e.sc.StagingPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging directory after merge: stat err = %v, want not exist (AC3.4)", err)
	}
}

// AC5.1: without staging_path the backfill writes straight to main.
func TestBackfillWithoutStagingWritesMain(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(1200, 800)})
	res, err := e.backfill("backfill-main", workflows.BackfillInput{})
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if res.RecordsWritten != missingTotal(e.sc) {
		t.Fatalf("records written = %d, want %d", res.RecordsWritten, missingTotal(e.sc))
	}
	if err := e.sc.CheckComplete(e.keys(e.sc.MainPath)); err != nil {
		t.Fatalf("main: %v", err)
	}
	if _, err := os.Stat(e.sc.StagingPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging was created without staging_path")
	}
}

// Historical mode on an empty lake plans [from, ceiling-1] for every log.
func TestBackfillHistoricalModeFromEmptyLake(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(700, 500), NoMain: true})
	from := uint64(100)
	res, err := e.backfill("backfill-from", workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: &from})
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if res.RecordsWritten != 600+400 {
		t.Fatalf("records written = %d, want %d", res.RecordsWritten, 1000)
	}
	got := e.keys(e.sc.StagingPath)
	for _, l := range e.sc.Logs {
		m := got[l.Source.URL]
		if len(m) != int(l.Entries-from) {
			t.Errorf("%s: %d keys staged, want %d", l.Source.URL, len(m), l.Entries-from)
		}
		for i, n := range m {
			if i < from || i >= l.Entries || n != 1 {
				t.Errorf("%s: key %d held %d times", l.Source.URL, i, n)
			}
		}
	}
}

// Staging files use the fast codecs by default (as_der Snappy, hex digests
// plain) and main's, zstd on every column, with lake.compact_staging; the
// rows are the same either way.
func TestBackfillStagingCodecs(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact_staging=%v", compact), func(t *testing.T) {
			e := newWorld(t, scenario.Options{Logs: twoLogs(400, 300)}, "codecs")
			e.cfg.Lake.CompactStaging = compact
			e.startWorker()
			res, err := e.backfill("backfill-codecs", workflows.BackfillInput{StagingPath: e.sc.StagingPath})
			if err != nil {
				t.Fatalf("backfill: %v", err)
			}
			if err := e.sc.CheckStaging(e.keys(e.sc.StagingPath)); err != nil {
				t.Fatalf("staging: %v", err)
			}
			if res.RecordsWritten == 0 {
				t.Fatal("nothing was staged")
			}
			db, err := lake.OpenDB(t.Context(), lake.DBOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			want := map[string]string{"as_der": "SNAPPY", "sha256": "UNCOMPRESSED", "subject_aggregated": "ZSTD"}
			if compact {
				want = map[string]string{"as_der": "ZSTD", "sha256": "ZSTD", "subject_aggregated": "ZSTD"}
			}
			rows, err := db.QueryContext(t.Context(), `SELECT DISTINCT path_in_schema, compression FROM parquet_metadata(?)`,
				filepath.Join(e.sc.StagingPath, "*", "*.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]string{}
			for rows.Next() {
				var col, codec string
				if err := rows.Scan(&col, &codec); err != nil {
					t.Fatal(err)
				}
				if _, ok := want[col]; ok {
					if prev, seen := got[col]; seen && prev != codec {
						t.Errorf("column %s has codecs %s and %s", col, prev, codec)
					}
					got[col] = codec
				}
			}
			for col, w := range want {
				if got[col] != w {
					t.Errorf("staging column %s codec = %q, want %q", col, got[col], w)
				}
			}
		})
	}
}

// A cancel ends the run Canceled, keeps what was committed, and a rerun
// completes the rest without duplicates.
func TestBackfillCancelKeepsStagingAndRerunCompletes(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(6000, 3000), HoleEvery: 40})
	run := e.start("backfill-cancel", workflows.BackfillWorkflowName, workflows.BackfillInput{
		StagingPath: e.sc.StagingPath, ChunkSize: 100, Window: 1})
	deadline := time.Now().Add(time.Minute)
	for e.keys(e.sc.StagingPath).Total() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing staged within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := e.c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	err := run.Get(t.Context(), nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("backfill after cancel: err = %v, want Canceled", err)
	}
	partial := e.keys(e.sc.StagingPath)
	if d := partial.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicates after cancel: %v", d[:min(5, len(d))])
	}
	if partial.Total() >= int(missingTotal(e.sc)) {
		t.Fatalf("cancel came too late to test anything: %d of %d staged", partial.Total(), missingTotal(e.sc))
	}

	res, err := e.backfill("backfill-rerun", workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	if got, want := res.RecordsWritten+int64(partial.Total()), missingTotal(e.sc); got != want {
		t.Fatalf("rerun wrote %d after %d staged, want %d in all", res.RecordsWritten, partial.Total(), want)
	}
	if err := e.sc.CheckStaging(e.keys(e.sc.StagingPath)); err != nil {
		t.Fatalf("staging after rerun: %v", err)
	}
}
