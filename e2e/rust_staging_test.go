package e2e

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/rsstaging"
	"github.com/certlake/certlake/workflows"
)

// A staging table certstream-server-rust's --staging-path backfill wrote
// (delta-rs's log, no certlake marker) goes through gap detection (its rows
// count as present), a backfill that fills the rest into it, a refused
// merge that says how to adopt it, and a merge with adopt_staging that
// marks, merges and retires it: main then holds every entry once.
func TestRustStagingGapsAdoptionMerge(t *testing.T) {
	e := seedEnv(t)
	ctx := t.Context()
	e.write(e.sc.MainPath, lake.RoleMain, cat(span(0, 9), span(20, 29))...)
	rows, err := e.sc.Rows(ctx, e.sc.Logs[0], span(10, 14)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsstaging.Write(ctx, e.sc.StagingPath, rows[:2], rows[2:]); err != nil {
		t.Fatal(err)
	}

	if got := e.detectGaps(e.sc.StagingPath, 30, nil); !reflect.DeepEqual(got, ranges(r(15, 19))) {
		t.Fatalf("gaps = %v, want [15, 19] (10..14 are in the Rust staging table)", got)
	}
	// A backfill into it fills the rest: writing deletes nothing, so it
	// needs no adoption.
	bres, err := e.backfill("rust-staging-backfill", workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	if err != nil || bres.RecordsWritten != 5 {
		t.Fatalf("backfill into the Rust staging table = %+v, %v; want 5 records written", bres, err)
	}
	if got := e.indices(e.sc.StagingPath); !reflect.DeepEqual(got, span(10, 19)) {
		t.Fatalf("staging after the backfill = %v, want [10..19]", got)
	}

	_, err = e.merge("rust-staging-refused", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeNotStaging || !appErr.NonRetryable() ||
		!strings.Contains(appErr.Error(), `"adopt_staging": true`) {
		t.Fatalf("merge of an unmarked staging table = %v, want non-retryable %s saying how to adopt it", err, activities.ErrTypeNotStaging)
	}
	if got := e.indices(e.sc.StagingPath); !reflect.DeepEqual(got, span(10, 19)) {
		t.Fatalf("staging after the refused merge = %v, want [10..19] untouched", got)
	}

	res, err := e.merge("rust-staging-adopted", workflows.MergeInput{StagingPath: e.sc.StagingPath, AdoptStaging: true})
	if err != nil {
		t.Fatalf("merge with adopt_staging: %v", err)
	}
	if got, want := e.indices(e.sc.MainPath), span(0, 29); !reflect.DeepEqual(got, want) ||
		res.TotalInserted != 10 || res.TotalSkipped != 0 || !res.StagingRetired {
		t.Fatalf("main = %v, result %+v; want %v, 10 inserted, staging retired", got, res, want)
	}
	if _, err := os.Stat(e.sc.StagingPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging %s still exists after the merge: %v", e.sc.StagingPath, err)
	}
}
