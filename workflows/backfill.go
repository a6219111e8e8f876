package workflows

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// ProgressQuery is the query type that returns a run's progress as JSON.
const ProgressQuery = "progress"

// BackfillWorkflow finds every missing (source_url, cert_index) range of the
// lake and fills it, each log as a sequence of LogBackfillWorkflow segments.
//
// Its history is bounded by design: no child signals it. A log's row of the
// progress table is refreshed when one of its segments ends (after 15 s,
// 1 min, 4 min, 16 min, then every 30 min; the segment's own query and
// details are live), and when the history grows long the run asks its
// segments to wrap up and continues as new with the state it carries
// (BackfillInput.State), so no run passes ~10,000 events however long the
// backfill takes.
func BackfillWorkflow(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
	if err := in.validate(); err != nil {
		return BackfillResult{StagingPath: in.StagingPath, FailedRanges: []FailedRange{}}, err
	}
	b, err := newBackfill(ctx, in)
	if err != nil {
		return b.st.Result, err
	}
	if in.State == nil {
		err = b.plan(ctx)
	}
	if err == nil {
		err = b.fetch(ctx)
	}
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		return b.st.Result, err
	}
	b.removePlans(ctx)
	if err != nil {
		return b.st.Result, err
	}
	if in.MergeAfter && in.StagingPath != "" && b.st.Result.LogsFailed == 0 {
		if err := b.mergeAfter(ctx); err != nil {
			return b.st.Result, err
		}
	}
	b.setPhase(ctx, "done")
	res := b.st.Result
	workflow.GetLogger(ctx).Info("backfill complete", "rows", res.RecordsWritten, "logs_failed", res.LogsFailed,
		"failed_ranges", len(res.FailedRanges)+res.FailedRangesOmitted, "runs", b.st.Runs+1)
	return res, nil
}

// backfill is the state of one BackfillWorkflow run.
type backfill struct {
	in    BackfillInput
	st    *BackfillState
	phase string
	// segments counts the segments this run started (its history budget).
	segments int
}

func newBackfill(ctx workflow.Context, in BackfillInput) (*backfill, error) {
	b := &backfill{in: in, st: in.State, phase: "fetching"}
	if b.st == nil {
		info := workflow.GetInfo(ctx)
		b.phase = "resolving"
		b.st = &BackfillState{PlanKey: info.WorkflowExecution.ID + "-" + info.WorkflowExecution.RunID,
			Result: BackfillResult{StagingPath: in.StagingPath, FailedRanges: []FailedRange{}}}
	}
	err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (BackfillProgress, error) {
		return b.progress(), nil
	})
	if err != nil {
		return b, fmt.Errorf("register progress query: %w", err)
	}
	b.show(ctx)
	return b, nil
}

func (b *backfill) setPhase(ctx workflow.Context, phase string) {
	b.phase = phase
	b.show(ctx)
}

// show publishes the progress table as the run's current details (the Web
// UI's User Metadata tab, `temporal workflow metadata`); no history event.
func (b *backfill) show(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, renderBackfillDetails(b.in, b.progress()))
}

func (b *backfill) progress() BackfillProgress {
	p := BackfillProgress{Phase: b.phase, Logs: make([]LogProgress, 0, len(b.st.Logs))}
	for _, l := range b.st.Logs {
		p.Logs = append(p.Logs, l.Progress)
	}
	return p
}

// plan resolves the logs and writes the plan of their missing ranges.
func (b *backfill) plan(ctx workflow.Context) error {
	var a *activities.Backfill
	var resolved activities.ResolveLogsResult
	err := workflow.ExecuteActivity(quickOptions(ctx), a.ResolveLogs, activities.ResolveLogsInput{
		Logs: b.in.Logs, Ceiling: b.in.Ceiling, From: b.in.From,
	}).Get(ctx, &resolved)
	if err != nil {
		return fail("resolve logs", err)
	}
	res := &b.st.Result
	for _, s := range resolved.Skipped {
		res.LogsSkipped = append(res.LogsSkipped, SkippedLog{SourceURL: s.SourceURL, Reason: s.Reason})
		workflow.GetLogger(ctx).Warn("log skipped", "log", s.SourceURL, "reason", s.Reason)
	}
	b.setPhase(ctx, "planning")
	gapsIn := activities.DetectGapsInput{
		StagingPath: b.in.StagingPath, From: b.in.From, IncludeFrontier: b.in.IncludeFrontier, PlanKey: b.st.PlanKey,
	}
	for _, l := range resolved.Logs {
		gapsIn.Logs = append(gapsIn.Logs, activities.LogCeiling{URL: l.URL, Ceiling: l.Ceiling})
	}
	var plan activities.DetectGapsResult
	if err := workflow.ExecuteActivity(quickOptions(ctx), a.DetectGaps, gapsIn).Get(ctx, &plan); err != nil {
		return fail("detect gaps", err)
	}
	res.PlannedEntries, res.PlannedRanges, res.LogsTotal = plan.Entries, plan.Ranges, len(resolved.Logs)
	plans := map[string]activities.LogPlan{}
	for _, p := range plan.Logs {
		plans[p.URL] = p
	}
	for _, l := range resolved.Logs {
		b.st.Logs = append(b.st.Logs, b.logState(ctx, resolved, l, plans[l.URL]))
	}
	return nil
}

// logState is a log's starting state: its first segment's input and its
// row of the progress table.
func (b *backfill) logState(ctx workflow.Context, resolved activities.ResolveLogsResult, l activities.LogTarget, p activities.LogPlan) LogState {
	parentID := workflow.GetInfo(ctx).WorkflowExecution.ID
	chunk, window := b.in.ChunkSize, b.in.Window
	if chunk == 0 {
		chunk = resolved.ChunkSize
	}
	for _, w := range []int{l.Window, resolved.Window, 1} {
		if window <= 0 {
			window = w
		}
	}
	now := workflow.Now(ctx)
	ls := LogState{
		Input: LogBackfillInput{
			Log: l, PlanFile: p.PlanFile, TablePath: b.in.StagingPath, Staging: b.in.StagingPath != "",
			RunKey: parentID, ChunkSize: chunk, Window: window, PlannedEntries: p.Entries, MaxActivities: b.in.SegmentActivities,
			HeartbeatTimeoutSeconds: resolved.HeartbeatTimeoutSeconds, FetchAttempts: resolved.FetchAttempts,
		},
		Progress: LogProgress{SourceURL: l.URL, Name: l.Name, State: "running", WorkflowID: childID(parentID, l.URL),
			PlannedEntries: p.Entries, PlannedRanges: p.Ranges, StartedAt: now, UpdatedAt: now},
	}
	if p.Ranges == 0 {
		ls.Progress.State = "done"
	}
	return ls
}

// removePlans deletes the run's plan files, whatever its outcome. It runs
// on a disconnected context so that a canceled run still cleans up.
func (b *backfill) removePlans(ctx workflow.Context) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var a *activities.Backfill
	err := workflow.ExecuteActivity(quickOptions(dctx), a.RemovePlans, activities.RemovePlansInput{PlanKey: b.st.PlanKey}).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("plan files not removed; table vacuum removes them after the retention", "plan_key", b.st.PlanKey, "err", err)
	}
}

// mergeAfter merges staging once every log is done, under the staging
// table's merge workflow id (one merge per staging table at a time).
func (b *backfill) mergeAfter(ctx workflow.Context) error {
	b.setPhase(ctx, "merging")
	id := MergeWorkflowID(b.in.StagingPath)
	mctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:          id,
		StaticSummary:       "merge " + b.in.StagingPath,
		WaitForCancellation: true,
	})
	var mr MergeResult
	err := workflow.ExecuteChildWorkflow(mctx, MergeWorkflowName, MergeInput{StagingPath: b.in.StagingPath}).Get(ctx, &mr)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		b.st.Result.MergeSkipped = fmt.Sprintf("a merge of %s is already running as workflow %s; "+
			"it merges what was staged when it started, so merge again once it ends", b.in.StagingPath, id)
		workflow.GetLogger(ctx).Warn("merge after backfill skipped", "reason", b.st.Result.MergeSkipped)
		return nil
	}
	if err != nil {
		return fail("merge after backfill", err)
	}
	b.st.Result.Merge = &mr
	return nil
}

func (in BackfillInput) validate() error {
	bad := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeInvalidInput, nil)
	}
	if err := inputProblem(BackfillWorkflowName, in.decodeProblem, []string{"staging_path", "from", "logs",
		"ceiling", "include_frontier", "merge_after", "chunk_size", "window", "segment_activities", "max_segments_per_run", "state"}); err != nil {
		return err
	}
	switch in.Ceiling {
	case "", CeilingStateFile, CeilingTreeSize:
	default:
		return bad("ceiling must be %q or %q, got %q", CeilingStateFile, CeilingTreeSize, in.Ceiling)
	}
	if in.Window < 0 || in.SegmentActivities < 0 || in.MaxSegmentsPerRun < 0 {
		return bad("window, segment_activities and max_segments_per_run must not be negative (got %d, %d, %d)",
			in.Window, in.SegmentActivities, in.MaxSegmentsPerRun)
	}
	if in.MergeAfter && in.StagingPath == "" {
		return bad("merge_after needs staging_path (without it the backfill writes to main directly)")
	}
	return nil
}

// childID derives a stable child workflow ID from the parent's ID and the
// log; every segment of the log uses it in turn.
func childID(parentID, logURL string) string {
	u := logURL
	if p, err := url.Parse(logURL); err == nil && p.Host != "" {
		u = p.Host + p.Path
	}
	return parentID + "/log/" + strings.Trim(u, "/")
}

// segmentSeconds is how long a log's segment k keeps starting activities:
// short at first, so the progress table fills in quickly, then 30 minutes,
// so a long backfill adds a few events per log and hour to the parent.
func segmentSeconds(k int) int {
	s := 15
	for ; k > 0 && s < 1800; k-- {
		s *= 4
	}
	return min(s, 1800)
}
