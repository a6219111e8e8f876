package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// planOf serves a plan held in memory through the ReadPlan activity.
func planOf(ranges []activities.Range) func(context.Context, activities.ReadPlanInput) (activities.ReadPlanResult, error) {
	return func(_ context.Context, in activities.ReadPlanInput) (activities.ReadPlanResult, error) {
		end := min(in.Offset+in.Limit, len(ranges))
		return activities.ReadPlanResult{Ranges: ranges[in.Offset:end], More: end < len(ranges)}, nil
	}
}

// A 10M-entry plan continues as new with bounded history per run, covers
// every index exactly once across the runs, and ends with the right totals.
func TestLogBackfillContinuesAsNewOnLargePlan(t *testing.T) {
	const total = 10_000_000
	plan := []activities.Range{{Start: 0, End: 3_999_999}, {Start: 4_000_010, End: 10_000_009}}
	in := LogBackfillInput{
		Log:      activities.LogTarget{URL: "https://ct.example.net/log", Name: "Example Log", Ceiling: 20_000_000},
		PlanFile: "plan.jsonl", TablePath: "/lake/staging", Staging: true, RunKey: "bf",
		ChunkSize: 4_000, Window: 4, PlannedEntries: total,
	}
	var mu sync.Mutex              // mocked activities run on their own goroutines
	covered := map[uint64]uint64{} // chunk start -> end, across all runs
	var runs, maxActivities int
	var a *activities.Backfill
	for {
		runs++
		if runs > 50 {
			t.Fatal("more than 50 runs")
		}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		// The mocks run inside the workflow's turn; under -race they are slow
		// enough to trip the 1 s deadlock detector.
		env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
		env.RegisterWorkflowWithOptions(LogBackfillWorkflow, workflow.RegisterOptions{Name: LogBackfillWorkflowName})
		env.RegisterActivity(a)
		activitiesThisRun := 0
		env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(planOf(plan))
		env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(
			func(_ context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
				mu.Lock()
				defer mu.Unlock()
				activitiesThisRun++
				if prev, ok := covered[f.Start]; ok {
					t.Errorf("chunk [%d, %d] fetched twice (before: end %d)", f.Start, f.End, prev)
				}
				covered[f.Start] = f.End
				n := f.End - f.Start + 1
				return activities.FetchRangeResult{Rows: int64(n), Entries: n}, nil
			})
		env.ExecuteWorkflow(LogBackfillWorkflowName, in)
		mu.Lock()
		maxActivities = max(maxActivities, activitiesThisRun)
		mu.Unlock()
		// Events per run: 3 per activity (scheduled, started, completed)
		// plus at most one workflow task (3 events) per completion.
		if ev := 6*activitiesThisRun + 20; ev >= 10_000 {
			t.Fatalf("run %d: %d activities, about %d history events, want < 10k", runs, activitiesThisRun, ev)
		}
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			if err := env.GetWorkflowResult(nil); err == nil {
				t.Fatal("continue-as-new without error")
			}
			var next LogBackfillInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatalf("decode continue-as-new input: %v", err)
			}
			in = next
			continue
		}
		if err != nil {
			t.Fatalf("run %d: %v", runs, err)
		}
		var res LogBackfillResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.Rows != total || res.FetchedEntries != total || res.Runs != runs || len(res.FailedRanges) != 0 {
			t.Fatalf("result = %+v, want %d rows over %d runs", res, total, runs)
		}
		break
	}
	if runs < 2 {
		t.Fatalf("runs = %d, want continue-as-new", runs)
	}
	var sum uint64
	for s, e := range covered {
		sum += e - s + 1
		if e-s+1 > 4_000 {
			t.Errorf("chunk [%d, %d] larger than chunk size", s, e)
		}
	}
	if sum != total {
		t.Fatalf("covered %d indices, want %d", sum, total)
	}
	t.Logf("10M-entry plan: %d runs, at most %d FetchRange activities per run", runs, maxActivities)
}

// A range that fails after its retries is reported, and the rest of the
// log's plan still runs.
func TestLogBackfillReportsFailedRanges(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(LogBackfillWorkflow, workflow.RegisterOptions{Name: LogBackfillWorkflowName})
	var a *activities.Backfill
	env.RegisterActivity(a)
	env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(planOf([]activities.Range{{Start: 0, End: 299}}))
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(
		func(_ context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
			if f.Start == 100 {
				return activities.FetchRangeResult{}, errors.New("GET https://ct.example.net/log/ct/v1/get-entries: 503 Service Unavailable")
			}
			return activities.FetchRangeResult{Rows: int64(f.End - f.Start + 1)}, nil
		})
	env.ExecuteWorkflow(LogBackfillWorkflowName, LogBackfillInput{
		Log: activities.LogTarget{URL: "https://ct.example.net/log", Name: "Example"}, PlanFile: "p",
		RunKey: "bf", ChunkSize: 100, Window: 2, PlannedEntries: 300,
	})
	var res LogBackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 200 || len(res.FailedRanges) != 1 || res.FailedRanges[0].Start != 100 || res.FailedRanges[0].End != 199 ||
		res.FailedEntries != 100 {
		t.Fatalf("result = %+v, want 200 rows and failed range [100, 199]", res)
	}
}
