package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// A multi-log historical backfill lasting minutes against throttled logs:
// the parent's history grows with the number of logs, not with time (at
// most 100 + 25 x logs events), and the backfill is exact.
func TestReliabilityLongBackfillHistory(t *testing.T) {
	logs, entries, rate := 3, 2500, 2.0 // ~40 s per log at 64 entries/s
	if fullMode() {
		logs, entries = 4, 12_000 // ~3 min
	}
	specs := make([]scenario.LogSpec, logs)
	for i := range specs {
		specs[i] = scenario.LogSpec{Name: fmt.Sprintf("Throttled Log %d", i), Static: i%2 == 0, Entries: entries}
	}
	o := report(t)
	e := newWorld(t, scenario.Options{Logs: specs, NoMain: true}, "certlake-hist")
	e.cfg.CT.RateLimit = rate
	e.cfg.CT.Burst = 1
	e.startWorker()
	began := time.Now()
	run := e.start("long-backfill", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: new(uint64)})
	firstRun := run.GetRunID() // GetRunID follows continue-as-new once Get has
	var res workflows.BackfillResult
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	took := time.Since(began)
	if want := int64(logs * entries); res.RecordsWritten != want || res.LogsFailed != 0 {
		t.Fatalf("backfill = %+v, want %d records and no failed log", res, want)
	}
	o.check("records_written = %d (every entry of %d logs), no failed log", res.RecordsWritten, logs)
	runs := runChain(t, e.c, run.GetID(), firstRun)
	total, longest := 0, 0
	for _, h := range runs {
		total += len(h.Events)
		longest = max(longest, len(h.Events))
	}
	if bound := 100 + 25*logs; took < 10*time.Minute && total > bound {
		t.Fatalf("parent history: %d events over %d runs in %s; want <= %d (100 + 25 x %d logs)", total, len(runs), took.Round(time.Second), bound, logs)
	}
	o.check("parent history <= 100 + 25 x logs = %d events", 100+25*logs)
	o.figure("%d logs x %d entries at %.0f requests/s per log (32 entries each): backfill took %s; parent history %d events in %d run(s) (%.1f per log); longest run %d events",
		logs, entries, rate, took.Round(time.Second), total, len(runs), float64(total)/float64(logs), longest)
}

// runChain returns the histories of a workflow's runs, following
// continue-as-new from the first run.
func runChain(t *testing.T, c client.Client, id, runID string) []*historypb.History {
	t.Helper()
	var out []*historypb.History
	for runID != "" {
		h := history(t, c, id, runID)
		out = append(out, h)
		runID = ""
		if last := h.Events[len(h.Events)-1]; last.GetWorkflowExecutionContinuedAsNewEventAttributes() != nil {
			runID = last.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
	}
	return out
}

func history(t *testing.T, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(t.Context(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s/%s: %v", id, runID, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

// historiesDir is where the recorded histories live; workflows/replay_test.go
// replays every one of them.
const historiesDir = "../workflows/testdata/histories"

// TestRecordWorkflowHistories records the histories the replay test checks
// every workflow change against: a backfill whose logs run in several
// segments and whose parent continues as new, with merge_after; a merge
// started under another id (run as a child under the table's id); a merge
// skipped because another holds the table; a canceled backfill. Run it with
// CERTLAKE_RECORD_HISTORIES=1 after a deliberate, versioned change (see the
// README's "Deploying a new worker version"), and commit the files.
func TestRecordWorkflowHistories(t *testing.T) {
	if os.Getenv("CERTLAKE_RECORD_HISTORIES") != "1" {
		t.Skip("set CERTLAKE_RECORD_HISTORIES=1 to record workflows/testdata/histories")
	}
	if err := os.MkdirAll(historiesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("backfill", recordBackfill)
	t.Run("merge", recordMerges)
	t.Run("cancel", recordCanceledBackfill)
}

func recordBackfill(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(900, 700), NoMain: true})
	run := e.start("rec-backfill", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: e.sc.StagingPath,
		From: new(uint64), ChunkSize: 60, Window: 2, SegmentActivities: 3, MaxSegmentsPerRun: 4, MergeAfter: true})
	firstRun := run.GetRunID() // GetRunID follows continue-as-new once Get has
	var res workflows.BackfillResult
	if err := run.Get(t.Context(), &res); err != nil || res.Merge == nil || !res.Merge.StagingRetired {
		t.Fatalf("backfill = %+v, %v", res, err)
	}
	runs := runChain(t, e.c, run.GetID(), firstRun)
	if len(runs) < 3 {
		t.Fatalf("backfill ran %d runs, want continue-as-new; result %+v", len(runs), res)
	}
	for i, h := range runs {
		if i == 0 || i == len(runs)-1 {
			save(t, fmt.Sprintf("backfill-run-%d-of-%d", i+1, len(runs)), h)
		}
	}
	children := childRuns(runs[0])
	for i, ch := range children[:min(2, len(children))] {
		save(t, fmt.Sprintf("log-backfill-segment-%d", i+1), history(t, e.c, ch[0], ch[1]))
	}
	last := childRuns(runs[len(runs)-1])
	merge := last[len(last)-1]
	save(t, "merge-after-backfill", history(t, e.c, merge[0], merge[1]))
}

func recordMerges(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(600, 0)[:1], NoMain: true})
	if _, err := e.backfill("rec-stage", workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: new(uint64)}); err != nil {
		t.Fatal(err)
	}
	run := e.start("rec-merge-by-hand", workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: e.sc.StagingPath, BatchRows: 100})
	var res workflows.MergeResult
	if err := run.Get(t.Context(), &res); err != nil || !res.StagingRetired || res.Batches < 2 {
		t.Fatalf("merge = %+v, %v", res, err)
	}
	wrapper := history(t, e.c, run.GetID(), run.GetRunID())
	save(t, "merge-under-another-id", wrapper)
	child := childRuns(wrapper)[0]
	save(t, "merge", history(t, e.c, child[0], child[1]))

	id := workflows.MergeWorkflowID(e.sc.StagingPath)
	holder, err := e.c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: e.queue + "-nobody"},
		workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.c.TerminateWorkflow(context.Background(), id, holder.GetRunID(), "recorded") }()
	run = e.start("rec-merge-skipped", workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err := run.Get(t.Context(), &res); err != nil || res.Skipped == "" {
		t.Fatalf("merge while held = %+v, %v", res, err)
	}
	save(t, "merge-skipped", history(t, e.c, run.GetID(), run.GetRunID()))
}

func recordCanceledBackfill(t *testing.T) {
	e := newWorld(t, scenario.Options{Logs: twoLogs(3000, 0)[:1]}, "certlake-rec")
	e.cfg.CT.RateLimit, e.cfg.CT.Burst = 2, 1
	e.startWorker()
	run := e.start("rec-cancel", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	waitFor(t, time.Minute, "a segment running", func() bool {
		return len(childRuns(history(t, e.c, run.GetID(), run.GetRunID()))) > 0
	})
	time.Sleep(3 * time.Second)
	if err := e.c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatal(err)
	}
	var canceled *temporal.CanceledError
	if err := run.Get(t.Context(), nil); !errors.As(err, &canceled) {
		t.Fatalf("canceled backfill: %v", err)
	}
	h := history(t, e.c, run.GetID(), run.GetRunID())
	save(t, "backfill-canceled", h)
	ch := childRuns(h)[0]
	save(t, "log-backfill-segment-canceled", history(t, e.c, ch[0], ch[1]))
}

// childRuns lists the child runs a history started, as (workflow id, run id).
func childRuns(h *historypb.History) [][2]string {
	var out [][2]string
	for _, ev := range h.Events {
		if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
			out = append(out, [2]string{a.GetWorkflowExecution().GetWorkflowId(), a.GetWorkflowExecution().GetRunId()})
		}
	}
	return out
}

func save(t *testing.T, name string, h *historypb.History) {
	t.Helper()
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(historiesDir, name+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d events)", p, len(h.Events))
}
