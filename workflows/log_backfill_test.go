package workflows

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
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

// fetchAll is a FetchRange that stages every entry of its range.
func fetchAll(_ context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
	n := f.End - f.Start + 1
	return activities.FetchRangeResult{Rows: int64(n), Entries: n}, nil
}

// newEnv is a test environment with the workflows and activities
// registered, and a deadlock detector patient enough for -race.
func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	env.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillWorkflowName})
	env.RegisterWorkflowWithOptions(LogBackfillWorkflow, workflow.RegisterOptions{Name: LogBackfillWorkflowName})
	env.RegisterWorkflowWithOptions(MergeWorkflow, workflow.RegisterOptions{Name: MergeWorkflowName})
	var b *activities.Backfill
	var m *activities.Merge
	env.RegisterActivity(b)
	env.RegisterActivity(m)
	return env
}

func exampleLog() activities.LogTarget {
	return activities.LogTarget{URL: "https://ct.example.net/log", Name: "Example Log", Ceiling: 20_000_000}
}

// A 10M-entry plan runs as segments of at most 1000 activities, each
// starting where the last stopped: every index is fetched exactly once and
// the segments' totals add up.
func TestLogBackfillSegmentsCoverPlanOnce(t *testing.T) {
	const total = 10_000_000
	plan := []activities.Range{{Start: 0, End: 3_999_999}, {Start: 4_000_010, End: 10_000_009}}
	in := LogBackfillInput{Log: exampleLog(), PlanFile: "plan.jsonl", TablePath: "/lake/staging", Staging: true,
		RunKey: "bf", ChunkSize: 4_000, Window: 4, PlannedEntries: total}
	var mu sync.Mutex              // mocked activities run on their own goroutines
	covered := map[uint64]uint64{} // chunk start -> end, across all segments
	var a *activities.Backfill
	var rows int64
	segments := 0
	for done := false; !done; {
		if segments++; segments > 50 {
			t.Fatal("more than 50 segments")
		}
		env := newEnv(t)
		env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(planOf(plan))
		env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := covered[f.Start]; ok {
					t.Errorf("chunk [%d, %d] fetched twice (before: end %d)", f.Start, f.End, prev)
				}
				covered[f.Start] = f.End
				return fetchAll(ctx, f)
			})
		env.ExecuteWorkflow(LogBackfillWorkflowName, in)
		var res LogBackfillResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatalf("segment %d: %v", segments, err)
		}
		if res.Activities > 1000 {
			t.Fatalf("segment %d ran %d activities, want <= 1000", segments, res.Activities)
		}
		rows += res.Rows
		in.Cursor, done = res.Cursor, res.Done
	}
	var sum uint64
	for s, e := range covered {
		sum += e - s + 1
		if e-s+1 > 4_000 {
			t.Errorf("chunk [%d, %d] larger than chunk size", s, e)
		}
	}
	if sum != total || rows != total || segments != 3 {
		t.Fatalf("covered %d indices, %d rows in %d segments; want %d in 3 segments", sum, rows, segments, total)
	}
}

// A range that fails after its retries is reported, and the rest of the
// log's plan still runs.
func TestLogBackfillReportsFailedRanges(t *testing.T) {
	env := newEnv(t)
	var a *activities.Backfill
	env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(planOf([]activities.Range{{Start: 0, End: 299}}))
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
			if f.Start == 100 {
				return activities.FetchRangeResult{}, errors.New("GET https://ct.example.net/log/ct/v1/get-entries: 503 Service Unavailable")
			}
			return fetchAll(ctx, f)
		})
	env.ExecuteWorkflow(LogBackfillWorkflowName, LogBackfillInput{
		Log: exampleLog(), PlanFile: "p", RunKey: "bf", ChunkSize: 100, Window: 2, PlannedEntries: 300, FetchAttempts: 2,
	})
	var res LogBackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 200 || len(res.FailedRanges) != 1 || res.FailedRanges[0].Start != 100 || res.FailedRanges[0].End != 199 ||
		res.FailedEntries != 100 || !res.Done {
		t.Fatalf("result = %+v, want 200 rows and failed range [100, 199]", res)
	}
}

// A plan read that fails once is retried and the segment completes; the
// plan is read once per page, not again on every completion.
func TestLogBackfillPlanReadFailsOnceThenSucceeds(t *testing.T) {
	env := newEnv(t)
	var a *activities.Backfill
	var mu sync.Mutex
	reads := 0
	env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ReadPlanInput) (activities.ReadPlanResult, error) {
			mu.Lock()
			reads++
			n := reads
			mu.Unlock()
			if n == 1 {
				return activities.ReadPlanResult{}, errors.New("read plan: input/output error")
			}
			return planOf([]activities.Range{{Start: 0, End: 999}})(ctx, in)
		})
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(fetchAll)
	env.ExecuteWorkflow(LogBackfillWorkflowName, LogBackfillInput{
		Log: exampleLog(), PlanFile: "p", RunKey: "bf", ChunkSize: 100, Window: 3, PlannedEntries: 1000,
	})
	var res LogBackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 1000 || !res.Done || reads != 2 {
		t.Fatalf("result = %+v after %d plan reads; want 1000 rows, done, 2 reads", res, reads)
	}
}

// A plan that cannot be read fails the segment once its chunks in flight
// are done, with the rows it committed as the error's details; the read is
// not tried again on each completion.
func TestLogBackfillPlanReadFailureCarriesCommittedRows(t *testing.T) {
	env := newEnv(t)
	var a *activities.Backfill
	var mu sync.Mutex
	reads := 0
	env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ReadPlanInput) (activities.ReadPlanResult, error) {
			mu.Lock()
			reads++
			mu.Unlock()
			if in.Offset > 0 {
				return activities.ReadPlanResult{}, temporal.NewNonRetryableApplicationError("plan p: unexpected end of JSON input", activities.ErrTypeBadPlan, nil)
			}
			ranges := make([]activities.Range, planPage+1)
			for i := range ranges {
				ranges[i] = activities.Range{Start: uint64(i) * 10, End: uint64(i)*10 + 9}
			}
			return planOf(ranges)(ctx, in)
		})
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(fetchAll)
	env.ExecuteWorkflow(LogBackfillWorkflowName, LogBackfillInput{
		Log: exampleLog(), PlanFile: "p", RunKey: "bf", ChunkSize: 100, Window: 3, PlannedEntries: 5010,
	})
	err := env.GetWorkflowError()
	var res LogBackfillResult
	if err == nil || !failureDetails(err, &res) {
		t.Fatalf("error = %v, want a failure with details", err)
	}
	if res.Rows != planPage*10 || res.FetchedEntries != planPage*10 || reads != 2 {
		t.Fatalf("details = %+v after %d reads; want %d rows and 2 reads", res, reads, planPage*10)
	}
}
