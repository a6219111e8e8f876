package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

const testStaging = "/lake/staging"

// fakeMerge mocks the merge activities for a plan of n batches; batch
// answers MergeBatch (nil: every batch merges 10 rows).
type fakeMerge struct {
	mu       sync.Mutex
	retired  int
	removed  int
	merged   map[int]int // batch -> times merged
	batchFor func(id int) (activities.MergeBatchResult, error)
	// batchDelay is how long each MergeBatch takes (workflow time).
	batchDelay time.Duration
}

func (f *fakeMerge) install(env testEnv, batches int, retireDelay time.Duration) {
	f.merged = map[int]int{}
	var a *activities.Merge
	env.OnActivity(a.PlanMerge, mock.Anything, mock.Anything).Return(activities.PlanMergeResult{
		StagingExists: true, PlanFile: "/plans/merge-plan.json", Batches: batches, StagingRows: int64(batches) * 10, Window: 2}, nil)
	env.OnActivity(a.IndexMain, mock.Anything, mock.Anything).Return(activities.IndexMainResult{}, nil)
	env.OnActivity(a.MergeBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MergeBatchInput) (activities.MergeBatchResult, error) {
			f.mu.Lock()
			f.merged[in.BatchID]++
			f.mu.Unlock()
			if f.batchFor != nil {
				return f.batchFor(in.BatchID)
			}
			return activities.MergeBatchResult{StagingRows: 10, Inserted: 10}, nil
		}).After(f.batchDelay)
	env.OnActivity(a.RetireStaging, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RetireStagingInput) (activities.RetireStagingResult, error) {
			f.mu.Lock()
			f.retired++
			f.mu.Unlock()
			return activities.RetireStagingResult{RemovedFiles: 7}, nil
		}).After(retireDelay)
	env.OnActivity(a.RemoveMergePlan, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RemovePlansInput) error {
			f.mu.Lock()
			f.removed++
			f.mu.Unlock()
			return nil
		})
}

func startMerge(env testEnv) {
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: MergeWorkflowID(testStaging)})
	env.ExecuteWorkflow(MergeWorkflowName, MergeInput{StagingPath: testStaging})
}

// Window 2 with one batch failing and one succeeding: the run fails naming
// the batch, staging is not retired and the plan is removed.
func TestMergeWindowTwoOneBatchFails(t *testing.T) {
	env := newEnv(t)
	f := &fakeMerge{batchFor: func(id int) (activities.MergeBatchResult, error) {
		if id == 1 {
			return activities.MergeBatchResult{}, temporal.NewNonRetryableApplicationError("main: disk full", "DiskFull", nil)
		}
		return activities.MergeBatchResult{StagingRows: 10, Inserted: 10}, nil
	}}
	f.install(env, 2, 0)
	startMerge(env)
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "merge batch 2 of 2") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error = %v, want batch 2 of 2 failed with disk full", err)
	}
	if f.retired != 0 || f.removed != 1 || f.merged[0] != 1 {
		t.Fatalf("retired %d, plans removed %d, merged %v; want no retire, plan removed, batch 0 merged", f.retired, f.removed, f.merged)
	}
}

// A batch that ends Canceled while the workflow is not canceled fails the
// run: it merged nothing, so staging must stay.
func TestMergeBatchCanceledAloneFailsTheRun(t *testing.T) {
	env := newEnv(t)
	f := &fakeMerge{batchFor: func(id int) (activities.MergeBatchResult, error) {
		if id == 0 {
			return activities.MergeBatchResult{}, temporal.NewCanceledError("worker shutting down")
		}
		return activities.MergeBatchResult{StagingRows: 10, Inserted: 10}, nil
	}}
	f.install(env, 3, 0)
	startMerge(env)
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != "BatchCanceled" || !strings.Contains(err.Error(), "canceled while the merge was not") {
		t.Fatalf("error = %v, want a failure naming the canceled batch", err)
	}
	if f.retired != 0 {
		t.Fatalf("staging retired %d times, want never", f.retired)
	}
}

// A cancel that arrives while staging is being retired waits for the
// retire and says so: the run completes with staging retired, never ends
// Canceled while files are still being deleted.
func TestMergeCancelDuringRetireWaitsAndSaysSo(t *testing.T) {
	env := newEnv(t)
	f := &fakeMerge{}
	f.install(env, 4, time.Minute)
	retireStarted := false
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "RetireStaging" && !retireStarted {
			retireStarted = true
			env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Second)
		}
	})
	startMerge(env)
	var res MergeResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("error = %v, want the completed merge", err)
	}
	if !retireStarted || f.retired != 1 || !res.StagingRetired || res.TotalInserted != 40 ||
		!strings.Contains(res.Note, "cancel requested while staging was being retired") {
		t.Fatalf("result = %+v, retired %d; want retired with the note", res, f.retired)
	}
}

// A cancel during the batches ends the run Canceled with staging kept and
// the plan removed.
func TestMergeCanceledDuringBatchesKeepsStaging(t *testing.T) {
	env := newEnv(t)
	f := &fakeMerge{batchDelay: time.Minute}
	f.install(env, 10, 0)
	env.RegisterDelayedCallback(env.CancelWorkflow, 150*time.Second)
	startMerge(env)
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("error = %v, want Canceled", err)
	}
	if f.retired != 0 || f.removed != 1 {
		t.Fatalf("retired %d, plans removed %d; want 0 and 1", f.retired, f.removed)
	}
}

// A MergeWorkflow started under another id (a schedule's run, one typed by
// hand) runs the merge as a child under the staging table's id.
func TestMergeUnderAnotherIDRunsUnderTheTablesID(t *testing.T) {
	env := newEnv(t)
	f := &fakeMerge{}
	f.install(env, 2, 0)
	var childID string
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		childID = info.WorkflowExecution.ID
	})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "nightly-merge-2026-12-06T02:00:00Z"})
	env.ExecuteWorkflow(MergeWorkflowName, MergeInput{StagingPath: testStaging})
	var res MergeResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if childID != MergeWorkflowID(testStaging) || !res.StagingRetired || res.TotalInserted != 20 {
		t.Fatalf("child id %q, result %+v; want the merge under %s", childID, res, MergeWorkflowID(testStaging))
	}
}

func TestMergeRejectsRelativeStagingPath(t *testing.T) {
	env := newEnv(t)
	env.ExecuteWorkflow(MergeWorkflowName, MergeInput{StagingPath: "lake/staging"})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidInput || !strings.Contains(err.Error(), "must be an absolute path") {
		t.Fatalf("error = %v, want InvalidInput naming the relative path", err)
	}
}

func clientOptions(id string) client.StartWorkflowOptions { return client.StartWorkflowOptions{ID: id} }
