package workflows

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// Real-size runs in the time-skipping test environment, activities mocked:
// weeks of workflow time in seconds of test time. History length is not
// tracked by the test environment, so the bounds are asserted on what makes
// the history: child segments per parent run (eventsPerSegment each),
// activities per child or merge run (at most 6 events each).

// A historical backfill of 40 logs x 2 billion entries at 2,000 entries/s
// per log (11.6 days of workflow time): every index planned and fetched
// exactly once, exact totals, every run's history bounded, and the progress
// query answering throughout with every log.
func TestRealSizeHistoricalBackfill(t *testing.T) {
	t.Parallel()
	const (
		logs       = 40
		perLog     = 2_000_000_000
		chunk      = 2_000_000
		window     = 4
		perLogRate = 2_000 // entries/s
	)
	chunkTime := time.Duration(chunk*window/perLogRate) * time.Second // window chunks share the log's rate
	plans := map[string][]activities.Range{}
	for i := range logs {
		plans[fmt.Sprintf("https://log%02d.example/ct", i)] = []activities.Range{{Start: 0, End: perLog - 1}}
	}
	lake := newFakeLake(plans)
	var mu sync.Mutex
	covered := map[string][]activities.Range{}
	in := BackfillInput{StagingPath: "/lake/staging", From: new(uint64)}
	var queries, runs int
	var lastFetched uint64
	var wall = time.Now()
	for {
		if runs++; runs > 60 {
			t.Fatal("more than 60 parent runs")
		}
		env := newEnv(t)
		lake.install(env, chunk, window)
		var a *activities.Backfill
		env.OnActivity(a.FetchRange, mock.Anything, mock.Anything).Return(
			func(ctx context.Context, f activities.FetchRangeInput) (activities.FetchRangeResult, error) {
				mu.Lock()
				covered[f.Log.URL] = append(covered[f.Log.URL], activities.Range{Start: f.Start, End: f.End})
				mu.Unlock()
				return fetchAll(ctx, f)
			}).After(chunkTime)
		segments, maxActivities := 0, 0
		env.SetOnChildWorkflowStartedListener(func(*workflow.Info, workflow.Context, converter.EncodedValues) { segments++ })
		env.SetOnChildWorkflowCompletedListener(func(_ *workflow.Info, v converter.EncodedValue, err error) {
			var r LogBackfillResult
			if err == nil && v.Get(&r) == nil {
				maxActivities = max(maxActivities, r.Activities)
			}
		})
		for h := 1; h <= 48; h++ {
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(ProgressQuery)
				var p BackfillProgress
				if err != nil || v.Get(&p) != nil {
					t.Errorf("progress query at %dh of run %d: %v", h, runs, err)
					return
				}
				var fetched uint64
				for _, l := range p.Logs {
					fetched += l.FetchedEntries
				}
				if len(p.Logs) != logs || fetched < lastFetched {
					t.Errorf("progress at %dh of run %d: %d logs, %d fetched (before: %d)", h, runs, len(p.Logs), fetched, lastFetched)
				}
				lastFetched = fetched
				queries++
			}, time.Duration(h)*time.Hour)
		}
		env.ExecuteWorkflow(BackfillWorkflowName, in)
		if ev := 30 + eventsPerSegment*segments + 2*logs; ev >= 10_000 {
			t.Fatalf("parent run %d: %d segments, about %d events, want < 10,000", runs, segments, ev)
		}
		if ev := 20 + 6*maxActivities; ev >= 10_000 {
			t.Fatalf("parent run %d: a segment ran %d activities, about %d events", runs, maxActivities, ev)
		}
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			in = BackfillInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var res BackfillResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.RecordsWritten != logs*perLog || res.LogsFailed != 0 || res.LogsSucceeded != logs || res.PlannedEntries != logs*perLog {
			t.Fatalf("result = %+v", res)
		}
		break
	}
	checkCoveredOnce(t, covered, logs, perLog)
	if runs < 2 || queries < 100 || len(lake.removed) != 1 {
		t.Fatalf("%d parent runs, %d progress queries answered, plans removed %v", runs, queries, lake.removed)
	}
	t.Logf("40 logs x 2B entries: %d parent runs, %d progress queries, %s of test time", runs, queries, time.Since(wall).Round(time.Millisecond))
}

// checkCoveredOnce checks that the fetched chunks of each log tile [0, n).
func checkCoveredOnce(t *testing.T, covered map[string][]activities.Range, logs int, n uint64) {
	t.Helper()
	if len(covered) != logs {
		t.Fatalf("%d logs fetched, want %d", len(covered), logs)
	}
	for url, rs := range covered {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
		next := uint64(0)
		for _, r := range rs {
			if r.Start != next {
				t.Fatalf("%s: chunk [%d, %d] after %d (gap or overlap)", url, r.Start, r.End, next)
			}
			next = r.End + 1
		}
		if next != n {
			t.Fatalf("%s: fetched up to %d, want %d", url, next, n)
		}
	}
}

// A merge of 10,000 batches continues as new every maxBatchesPerRun
// batches, merges every batch exactly once, retires staging once at the
// end, and answers its progress query throughout.
func TestRealSizeMerge(t *testing.T) {
	t.Parallel()
	const batches = 10_000
	f := &fakeMerge{batchDelay: 30 * time.Second}
	in := MergeInput{StagingPath: testStaging}
	var runs, queries int
	var lastRows int64
	merged := map[int]int{}
	for {
		if runs++; runs > 20 {
			t.Fatal("more than 20 runs")
		}
		env := newEnv(t)
		f.install(env, batches, 0)
		for m := 1; m <= 200; m++ {
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(ProgressQuery)
				var p MergeResult
				if err != nil || v.Get(&p) != nil || p.TotalStagingRows < lastRows || p.Batches != batches {
					t.Errorf("progress query at %d min of run %d = %+v, %v", m, runs, p, err)
					return
				}
				lastRows = p.TotalStagingRows
				queries++
			}, time.Duration(m)*time.Minute)
		}
		env.SetStartWorkflowOptions(clientOptions(MergeWorkflowID(testStaging)))
		env.ExecuteWorkflow(MergeWorkflowName, in)
		n := 0
		for id, c := range f.merged {
			merged[id] += c
			n += c
		}
		if ev := 30 + 6*n; ev >= 10_000 {
			t.Fatalf("run %d merged %d batches, about %d events", runs, n, ev)
		}
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			in = MergeInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var res MergeResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.TotalInserted != batches*10 || res.TotalStagingRows != batches*10 || !res.StagingRetired || f.retired != 1 {
			t.Fatalf("result = %+v, retired %d", res, f.retired)
		}
		break
	}
	for id := range batches {
		if merged[id] != 1 {
			t.Fatalf("batch %d merged %d times", id, merged[id])
		}
	}
	if runs != batches/maxBatchesPerRun || queries < 100 {
		t.Fatalf("%d runs, %d queries answered", runs, queries)
	}
}
