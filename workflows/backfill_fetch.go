package workflows

import (
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// fetcher runs the logs' segments: one segment per log at a time, the next
// started when the last ends, until every log is done or the run's history
// budget is spent (then the running segments are asked to wrap up).
type fetcher struct {
	b        *backfill
	sel      workflow.Selector
	running  map[int]workflow.ChildWorkflowFuture
	draining bool
}

// fetch runs every unfinished log to its end, or continues as new.
func (b *backfill) fetch(ctx workflow.Context) error {
	b.setPhase(ctx, "fetching")
	f := &fetcher{b: b, sel: workflow.NewSelector(ctx), running: map[int]workflow.ChildWorkflowFuture{}}
	for i := range b.st.Logs {
		f.start(ctx, i)
	}
	for len(f.running) > 0 {
		f.sel.Select(ctx)
		if !f.draining && ctx.Err() == nil && b.shouldContinueAsNew(ctx) {
			f.draining = true
			// In log order: the commands must be the same on replay.
			for i := range b.st.Logs {
				if c, ok := f.running[i]; ok {
					c.SignalChildWorkflow(ctx, wrapUpSignal, nil)
				}
			}
		}
	}
	res := &b.st.Result
	if ctx.Err() != nil {
		b.setPhase(ctx, "canceled")
		return temporal.NewCanceledError(*res)
	}
	for _, l := range b.st.Logs {
		if l.Progress.State == "running" {
			b.st.Runs++
			in := b.in
			in.State = b.st
			return workflow.NewContinueAsNewError(ctx, BackfillWorkflowName, in)
		}
	}
	res.LogsFailed = 0
	for _, l := range b.st.Logs {
		if l.Progress.State == "failed" {
			res.LogsFailed++
		}
	}
	res.LogsSucceeded = res.LogsTotal - res.LogsFailed
	return nil
}

// shouldContinueAsNew reports whether this run's history is long enough to
// hand over to a new run.
func (b *backfill) shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	limit := b.in.MaxSegmentsPerRun
	if limit <= 0 {
		limit = maxSegmentsPerRun
	}
	return b.segments >= limit || info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > maxHistoryEvents
}

// start starts log i's next segment, unless the log is finished or the run
// is winding down.
func (f *fetcher) start(ctx workflow.Context, i int) {
	ls := &f.b.st.Logs[i]
	if ls.Progress.State != "running" || f.draining || ctx.Err() != nil {
		return
	}
	in := ls.Input
	in.MaxSeconds = segmentSeconds(ls.Segments)
	in.Before = ls.Progress
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: ls.Progress.WorkflowID,
		StaticSummary: fmt.Sprintf("%s: segment %d from range %d (+%d) of %d ranges",
			in.Log.Name, ls.Segments+1, in.Cursor.NextRange, in.Cursor.Offset, ls.Progress.PlannedRanges),
		WaitForCancellation:   true,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	c := workflow.ExecuteChildWorkflow(cctx, LogBackfillWorkflowName, in)
	f.b.segments++
	f.running[i] = c
	f.sel.AddFuture(c, func(fut workflow.Future) {
		delete(f.running, i)
		f.b.segmentDone(ctx, i, fut)
		f.start(ctx, i)
	})
}

// segmentDone adds a finished segment to its log's state and the result.
func (b *backfill) segmentDone(ctx workflow.Context, i int, fut workflow.Future) {
	ls := &b.st.Logs[i]
	var r LogBackfillResult
	err := fut.Get(ctx, &r)
	if err != nil {
		// A failed or canceled segment reports what it committed.
		r = LogBackfillResult{}
		failureDetails(err, &r)
	}
	ls.Segments++
	addSegment(&ls.Progress, r)
	ls.Progress.Segments = ls.Segments
	ls.Progress.UpdatedAt = workflow.Now(ctx)
	b.addResult(r)
	switch {
	case err != nil && ctx.Err() != nil:
		ls.Progress.State = "canceled"
	case err != nil:
		ls.Progress.State, ls.Progress.Error = "failed", rootMessage(err)
		b.st.Result.FailedLogs = append(b.st.Result.FailedLogs, FailedLog{
			SourceURL: ls.Progress.SourceURL, Error: ls.Progress.Error, Rows: ls.Progress.Rows})
		workflow.GetLogger(ctx).Error("log backfill failed", "log", ls.Progress.SourceURL, "err", err)
	case r.Done && ls.Progress.FailedRanges > 0:
		ls.Progress.State = "failed"
	case r.Done:
		ls.Progress.State = "done"
	default:
		ls.Input.Cursor = r.Cursor
	}
	b.show(ctx)
}

// addResult adds a segment's counts and samples to the workflow's result.
func (b *backfill) addResult(r LogBackfillResult) {
	res := &b.st.Result
	res.RecordsWritten += r.Rows
	res.BadEntries += r.BadEntries
	for _, u := range r.Unparseable {
		if len(res.Unparseable) < maxUnparseable {
			res.Unparseable = append(res.Unparseable, u)
		}
	}
	for _, fr := range r.FailedRanges {
		if len(res.FailedRanges) < maxFailedRanges {
			res.FailedRanges = append(res.FailedRanges, fr)
		} else {
			res.FailedRangesOmitted++
		}
	}
	res.FailedRangesOmitted += r.FailedRangesOmitted
}
