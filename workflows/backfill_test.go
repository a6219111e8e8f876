package workflows

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/certlake/certlake/activities"
)

// fakeLake plans the given ranges per log and serves them, through mocked
// activities.
type fakeLake struct {
	logs    []activities.LogTarget
	plans   map[string][]activities.Range // by plan file
	mu      sync.Mutex
	removed []string // plan keys removed
	// readErr, when set, fails the ReadPlan calls it returns an error for.
	readErr func(activities.ReadPlanInput) error
}

func newFakeLake(plans map[string][]activities.Range) *fakeLake {
	f := &fakeLake{plans: map[string][]activities.Range{}}
	for i, url := range sortedKeys(plans) {
		f.logs = append(f.logs, activities.LogTarget{URL: url, Name: fmt.Sprintf("log %d", i)})
		f.plans[url+".jsonl"] = plans[url]
	}
	return f
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// install mocks ResolveLogs, DetectGaps, ReadPlan and RemovePlans.
func (f *fakeLake) install(env testEnv, chunk uint64, window int) {
	var a *activities.Backfill
	env.OnActivity(a.ResolveLogs, mock.Anything, mock.Anything).Return(activities.ResolveLogsResult{
		Logs: f.logs, ChunkSize: chunk, Window: window, FetchAttempts: 2}, nil)
	env.OnActivity(a.DetectGaps, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DetectGapsInput) (activities.DetectGapsResult, error) {
			res := activities.DetectGapsResult{PlanDir: "/plans/" + in.PlanKey}
			for _, l := range in.Logs {
				p := activities.LogPlan{URL: l.URL, PlanFile: l.URL + ".jsonl", Ranges: len(f.plans[l.URL+".jsonl"])}
				for _, r := range f.plans[p.PlanFile] {
					p.Entries += r.End - r.Start + 1
				}
				res.Logs, res.Ranges, res.Entries = append(res.Logs, p), res.Ranges+p.Ranges, res.Entries+p.Entries
			}
			return res, nil
		})
	env.OnActivity(a.ReadPlan, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ReadPlanInput) (activities.ReadPlanResult, error) {
			if f.readErr != nil {
				if err := f.readErr(in); err != nil {
					return activities.ReadPlanResult{}, err
				}
			}
			return planOf(f.plans[in.PlanFile])(ctx, in)
		})
	env.OnActivity(a.RemovePlans, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RemovePlansInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.removed = append(f.removed, in.PlanKey)
			return nil
		})
}

// Window 2, one range failing and its neighbour succeeding: the log is
// failed with the range named, the other log is done, rows are exact and
// the plans are removed.
func TestBackfillWindowTwoOneRangeFails(t *testing.T) {
	env := newEnv(t)
	lake := newFakeLake(map[string][]activities.Range{
		"https://a.example/log": {{Start: 0, End: 199}},
		"https://b.example/log": {{Start: 0, End: 199}},
	})
	lake.install(env, 100, 2)
	var a *activities.Backfill
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
			if f.Log.URL == "https://a.example/log" && f.Start == 0 {
				return activities.FetchRangeResult{}, temporal.NewNonRetryableApplicationError("get-entries: 404 Not Found", "HTTP", nil)
			}
			return fetchAll(ctx, f)
		})
	env.ExecuteWorkflow(BackfillWorkflowName, BackfillInput{StagingPath: "/lake/staging"})
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.RecordsWritten != 300 || res.LogsTotal != 2 || res.LogsFailed != 1 || res.LogsSucceeded != 1 ||
		len(res.FailedRanges) != 1 || res.FailedRanges[0].Start != 0 || res.FailedRanges[0].End != 99 ||
		!strings.Contains(res.FailedRanges[0].Error, "404") || len(res.FailedLogs) != 0 {
		t.Fatalf("result = %+v; want 300 rows, log a failed on [0, 99] with the 404", res)
	}
	if len(lake.removed) != 1 {
		t.Fatalf("plans removed %v, want once", lake.removed)
	}
}

// A log whose backfill fails after committing rows: its rows are counted,
// the log is failed with its error in a field of its own, and no failed
// range is invented for it.
func TestBackfillChildFailsAfterCommittingRows(t *testing.T) {
	env := newEnv(t)
	bad := make([]activities.Range, planPage+1)
	for i := range bad {
		bad[i] = activities.Range{Start: uint64(i) * 10, End: uint64(i)*10 + 9}
	}
	lake := newFakeLake(map[string][]activities.Range{
		"https://a.example/log": bad,
		"https://b.example/log": {{Start: 0, End: 999}},
	})
	lake.readErr = func(in activities.ReadPlanInput) error {
		if in.PlanFile == "https://a.example/log.jsonl" && in.Offset > 0 {
			return temporal.NewNonRetryableApplicationError("plan: unexpected end of JSON input", activities.ErrTypeBadPlan, nil)
		}
		return nil
	}
	lake.install(env, 100, 2)
	var a *activities.Backfill
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(fetchAll)
	env.ExecuteWorkflow(BackfillWorkflowName, BackfillInput{StagingPath: "/lake/staging"})
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := int64(planPage*10 + 1000)
	if res.RecordsWritten != want || res.LogsFailed != 1 || len(res.FailedRanges) != 0 || len(res.FailedLogs) != 1 ||
		res.FailedLogs[0].SourceURL != "https://a.example/log" || res.FailedLogs[0].Rows != planPage*10 ||
		!strings.Contains(res.FailedLogs[0].Error, "unexpected end of JSON input") {
		t.Fatalf("result = %+v; want %d rows, log a failed with its plan error and %d rows", res, want, planPage*10)
	}
	var p BackfillProgress
	v, err := env.QueryWorkflow(ProgressQuery)
	if err != nil || v.Get(&p) != nil {
		t.Fatalf("progress query: %v", err)
	}
	if p.Logs[0].State != "failed" || p.Logs[0].Error == "" || p.Logs[1].State != "done" {
		t.Fatalf("progress = %+v", p)
	}
}

// A canceled backfill still removes its plans and reports Canceled.
func TestBackfillCanceledRemovesPlans(t *testing.T) {
	env := newEnv(t)
	lake := newFakeLake(map[string][]activities.Range{"https://a.example/log": {{Start: 0, End: 9999}}})
	lake.install(env, 100, 2)
	var a *activities.Backfill
	env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(fetchAll).After(minute)
	env.RegisterDelayedCallback(env.CancelWorkflow, 3*minute)
	env.ExecuteWorkflow(BackfillWorkflowName, BackfillInput{StagingPath: "/lake/staging"})
	err := env.GetWorkflowError()
	var res BackfillResult
	if !temporal.IsCanceledError(err) || !failureDetails(err, &res) {
		t.Fatalf("error = %v, want Canceled with the result", err)
	}
	if res.RecordsWritten == 0 || res.RecordsWritten%100 != 0 || len(lake.removed) != 1 {
		t.Fatalf("canceled result = %+v, plans removed %v; want whole chunks counted and plans removed", res, lake.removed)
	}
}

type testEnv = *testsuite.TestWorkflowEnvironment

const minute = time.Minute
