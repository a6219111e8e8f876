package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// AC4.1: a merge with nothing staged (a nightly run on a quiet day) ends
// green with zero counts.
func TestMergeWithNothingStagedSucceeds(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(300, 0)[:1]})
	res, err := e.merge("merge-empty", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if res != (workflows.MergeResult{}) {
		t.Fatalf("merge result = %+v, want zero counts", res)
	}
}

// AC4.5: an empty staging_path fails at once, non-retryable, with a clear
// message.
func TestMergeRequiresStagingPath(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(100, 0)[:1]})
	_, err := e.merge("merge-no-path", workflows.MergeInput{})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidInput || !appErr.NonRetryable() ||
		!strings.Contains(appErr.Error(), "merge requires staging_path") {
		t.Fatalf("merge without staging_path: err = %v, want non-retryable %s 'merge requires staging_path'", err, activities.ErrTypeInvalidInput)
	}
}

// One merge per staging table, whoever starts it: while a workflow holds
// the table's merge id, a MergeWorkflow started under another id (as a
// schedule's run or `temporal workflow start` would be) and a backfill's
// merge_after both merge nothing and name the holder; staging is untouched.
func TestSecondMergeOfOneStagingIsSkipped(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(400, 0)[:1]})
	id := workflows.MergeWorkflowID(e.sc.StagingPath)
	// The holder: a run under the table's merge id on a queue no worker
	// polls, so it stays running.
	holder, err := e.c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: e.queue + "-nobody"},
		workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), id, holder.GetRunID(), "test over") })

	res, err := e.merge("by-hand", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil || !strings.Contains(res.Skipped, id) || res.TotalInserted != 0 {
		t.Fatalf("merge under another id = %+v, %v; want skipped naming %s", res, err, id)
	}
	br, err := e.backfill("bf-merge-after", workflows.BackfillInput{StagingPath: e.sc.StagingPath, MergeAfter: true})
	if err != nil || br.Merge != nil || !strings.Contains(br.MergeSkipped, id) || br.RecordsWritten != missingTotal(e.sc) {
		t.Fatalf("backfill with merge_after = %+v, %v; want %d rows staged and the merge skipped naming %s", br, err, missingTotal(e.sc), id)
	}
	var staged int64
	for _, byIndex := range e.keys(e.sc.StagingPath) {
		for _, n := range byIndex {
			staged += int64(n)
		}
	}
	if staged != missingTotal(e.sc) {
		t.Fatalf("staging holds %d rows, want %d (nothing merged or retired)", staged, missingTotal(e.sc))
	}
	entries, _ := os.ReadDir(e.sc.PlanDir)
	if len(entries) != 0 {
		t.Fatalf("plan dir holds %d entries after the runs, want none", len(entries))
	}
}
