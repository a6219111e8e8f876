package workflows

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// ProgressQuery is the query type that returns a run's progress as JSON.
const ProgressQuery = "progress"

// progressSignal carries a child's progress to its parent.
const progressSignal = "log-progress"

// LogProgress is one log's progress, as the progress query and the Web UI's
// current details show it.
type LogProgress struct {
	SourceURL      string `json:"source_url"`
	Name           string `json:"name"`
	State          string `json:"state"` // planned, running, done, failed, canceled
	PlannedEntries uint64 `json:"planned_entries"`
	PlannedRanges  int    `json:"planned_ranges"`
	FetchedEntries uint64 `json:"fetched_entries"` // indices covered by finished chunks
	Rows           int64  `json:"rows"`            // rows committed
	BadEntries     int64  `json:"bad_entries"`
	FailedEntries  uint64 `json:"failed_entries"`
	FailedRanges   int    `json:"failed_ranges"`
	// LastFailure is the range and reason of the latest failed range
	// (e.g. "[0, 499] verification: ..."), shortened.
	LastFailure string    `json:"last_failure,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// BackfillProgress is what the progress query of BackfillWorkflow returns.
type BackfillProgress struct {
	Phase string        `json:"phase"` // resolving, planning, fetching, merging, done
	Logs  []LogProgress `json:"logs"`
}

// BackfillWorkflow finds every missing (source_url, cert_index) range of the
// lake and fills it, one LogBackfillWorkflow child per log.
func BackfillWorkflow(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
	logger := workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	res := BackfillResult{StagingPath: in.StagingPath, FailedRanges: []FailedRange{}}
	if err := in.validate(); err != nil {
		return res, err
	}

	prog := &BackfillProgress{Phase: "resolving"}
	byURL := map[string]*LogProgress{}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (BackfillProgress, error) {
		return *prog, nil
	}); err != nil {
		return res, fmt.Errorf("register progress query: %w", err)
	}
	refresh := func() { workflow.SetCurrentDetails(ctx, renderBackfillDetails(in, prog)) }
	refresh()

	var a *activities.Backfill
	var resolved activities.ResolveLogsResult
	err := workflow.ExecuteActivity(quickOptions(ctx), a.ResolveLogs, activities.ResolveLogsInput{
		Logs: in.Logs, Ceiling: in.Ceiling, From: in.From,
	}).Get(ctx, &resolved)
	if err != nil {
		return res, fail("resolve logs", err)
	}
	for _, s := range resolved.Skipped {
		res.LogsSkipped = append(res.LogsSkipped, SkippedLog{SourceURL: s.SourceURL, Reason: s.Reason})
		logger.Warn("log skipped", "log", s.SourceURL, "reason", s.Reason)
	}

	prog.Phase = "planning"
	refresh()
	gapsIn := activities.DetectGapsInput{
		StagingPath: in.StagingPath, From: in.From, IncludeFrontier: in.IncludeFrontier,
		PlanKey: info.WorkflowExecution.ID + "-" + info.WorkflowExecution.RunID,
	}
	for _, l := range resolved.Logs {
		gapsIn.Logs = append(gapsIn.Logs, activities.LogCeiling{URL: l.URL, Ceiling: l.Ceiling})
	}
	var plan activities.DetectGapsResult
	if err := workflow.ExecuteActivity(quickOptions(ctx), a.DetectGaps, gapsIn).Get(ctx, &plan); err != nil {
		return res, fail("detect gaps", err)
	}
	res.PlannedEntries, res.PlannedRanges = plan.Entries, plan.Ranges
	plans := map[string]activities.LogPlan{}
	for _, p := range plan.Logs {
		plans[p.URL] = p
	}

	chunk := in.ChunkSize
	if chunk == 0 {
		chunk = resolved.ChunkSize
	}
	now := workflow.Now(ctx)
	type child struct {
		log    activities.LogTarget
		future workflow.ChildWorkflowFuture
	}
	var children []child
	for _, l := range resolved.Logs {
		p := plans[l.URL]
		lp := &LogProgress{SourceURL: l.URL, Name: l.Name, State: "planned",
			PlannedEntries: p.Entries, PlannedRanges: p.Ranges, StartedAt: now, UpdatedAt: now}
		prog.Logs = append(prog.Logs, *lp)
		byURL[l.URL] = lp
		if p.Ranges == 0 {
			lp.State = "done"
			continue
		}
		window := in.Window
		if window == 0 {
			window = l.Window
		}
		if window == 0 {
			window = resolved.Window
		}
		cin := LogBackfillInput{
			Log: l, PlanFile: p.PlanFile, TablePath: in.StagingPath, Staging: in.StagingPath != "",
			RunKey: info.WorkflowExecution.ID, ChunkSize: chunk, Window: window,
			ParentID: info.WorkflowExecution.ID, PlannedEntries: p.Entries,
			HeartbeatTimeoutSeconds: resolved.HeartbeatTimeoutSeconds,
			FetchAttempts:           resolved.FetchAttempts,
		}
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            childID(info.WorkflowExecution.ID, l.URL),
			StaticSummary:         fmt.Sprintf("%s: %d entries in %d ranges", l.Name, p.Entries, p.Ranges),
			WaitForCancellation:   true,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		})
		lp.State = "running"
		children = append(children, child{log: l, future: workflow.ExecuteChildWorkflow(cctx, LogBackfillWorkflowName, cin)})
	}
	syncProgress := func() {
		prog.Logs = prog.Logs[:0]
		for _, l := range resolved.Logs {
			prog.Logs = append(prog.Logs, *byURL[l.URL])
		}
		refresh()
	}
	syncProgress()
	prog.Phase = "fetching"

	// Children report progress by signal; the parent keeps the table that
	// the Web UI shows.
	sigCh := workflow.GetSignalChannel(ctx, progressSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var p LogProgress
			if !sigCh.Receive(gctx, &p) {
				return
			}
			if lp, ok := byURL[p.SourceURL]; ok {
				p.Name, p.StartedAt = lp.Name, lp.StartedAt
				*lp = p
				syncProgress()
			}
		}
	})

	var canceled bool
	for _, c := range children {
		var cr LogBackfillResult
		err := c.future.Get(ctx, &cr)
		lp := byURL[c.log.URL]
		switch {
		case err != nil && temporal.IsCanceledError(err):
			canceled = true
			lp.State = "canceled"
		case err != nil:
			res.LogsFailed++
			lp.State = "failed"
			res.FailedRanges = append(res.FailedRanges, FailedRange{SourceURL: c.log.URL, Start: 0, End: 0,
				Error: "log backfill failed: " + err.Error()})
		default:
			res.RecordsWritten += cr.Rows
			res.BadEntries += cr.BadEntries
			for _, u := range cr.Unparseable {
				if len(res.Unparseable) < maxUnparseable {
					res.Unparseable = append(res.Unparseable, u)
				}
			}
			res.FailedRanges = append(res.FailedRanges, cr.FailedRanges...)
			res.FailedRangesOmitted += cr.FailedRangesOmitted
			lp.Rows, lp.BadEntries, lp.FetchedEntries = cr.Rows, cr.BadEntries, cr.FetchedEntries
			lp.FailedRanges = len(cr.FailedRanges) + cr.FailedRangesOmitted
			lp.FailedEntries = cr.FailedEntries
			lp.LastFailure = lastFailure(cr.FailedRanges)
			if lp.FailedRanges > 0 {
				res.LogsFailed++
				lp.State = "failed"
			} else {
				lp.State = "done"
			}
		}
		lp.UpdatedAt = workflow.Now(ctx)
		syncProgress()
	}
	res.LogsTotal = len(resolved.Logs)
	res.LogsSucceeded = res.LogsTotal - res.LogsFailed
	if canceled || ctx.Err() != nil {
		return res, temporal.NewCanceledError("backfill canceled")
	}
	if len(res.FailedRanges) > maxFailedRanges {
		res.FailedRangesOmitted += len(res.FailedRanges) - maxFailedRanges
		res.FailedRanges = res.FailedRanges[:maxFailedRanges]
	}

	if in.MergeAfter && in.StagingPath != "" && res.LogsFailed == 0 {
		prog.Phase = "merging"
		refresh()
		mctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:          info.WorkflowExecution.ID + "/merge",
			StaticSummary:       "merge " + in.StagingPath,
			WaitForCancellation: true,
		})
		var mr MergeResult
		if err := workflow.ExecuteChildWorkflow(mctx, MergeWorkflowName, MergeInput{StagingPath: in.StagingPath}).Get(ctx, &mr); err != nil {
			return res, fail("merge after backfill", err)
		}
		res.Merge = &mr
	}
	prog.Phase = "done"
	refresh()
	logger.Info("backfill complete", "rows", res.RecordsWritten, "logs_failed", res.LogsFailed,
		"failed_ranges", len(res.FailedRanges)+res.FailedRangesOmitted)
	return res, nil
}

// maxFailedRanges caps the failed ranges a result carries (payload size).
const maxFailedRanges = 1000

// maxUnparseable caps the unparseable entries a result names, per log and
// in all (payload size; BadEntries counts them all).
const maxUnparseable = 100

func (in BackfillInput) validate() error {
	bad := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeInvalidInput, nil)
	}
	if err := inputProblem(BackfillWorkflowName, in.decodeProblem, []string{"staging_path", "from", "logs",
		"ceiling", "include_frontier", "merge_after", "chunk_size", "window"}); err != nil {
		return err
	}
	switch in.Ceiling {
	case "", CeilingStateFile, CeilingTreeSize:
	default:
		return bad("ceiling must be %q or %q, got %q", CeilingStateFile, CeilingTreeSize, in.Ceiling)
	}
	if in.Window < 0 {
		return bad("window must be positive, got %d", in.Window)
	}
	if in.MergeAfter && in.StagingPath == "" {
		return bad("merge_after needs staging_path (without it the backfill writes to main directly)")
	}
	return nil
}

// childID derives a stable child workflow ID from the parent's ID and the log.
func childID(parentID, logURL string) string {
	u := logURL
	if p, err := url.Parse(logURL); err == nil && p.Host != "" {
		u = p.Host + p.Path
	}
	return parentID + "/log/" + strings.Trim(u, "/")
}

// renderBackfillDetails renders the progress table the Web UI shows on the
// run's User Metadata tab (markdown).
func renderBackfillDetails(in BackfillInput, p *BackfillProgress) string {
	var b strings.Builder
	target := in.StagingPath
	if target == "" {
		target = "main table"
	}
	fmt.Fprintf(&b, "**certlake backfill** into `%s`: %s\n\n", target, p.Phase)
	if len(p.Logs) == 0 {
		return b.String()
	}
	b.WriteString("| log | state | planned | fetched | rows | failed | rate/s | ETA | last failure |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---|\n")
	logs := append([]LogProgress(nil), p.Logs...)
	sort.SliceStable(logs, func(i, j int) bool { return logs[i].Name < logs[j].Name })
	for _, l := range logs {
		rate, eta := "", ""
		if el := l.UpdatedAt.Sub(l.StartedAt).Seconds(); el > 0 && l.FetchedEntries > 0 {
			r := float64(l.FetchedEntries) / el
			rate = fmt.Sprintf("%.0f", r)
			if l.State == "running" && l.PlannedEntries > l.FetchedEntries {
				eta = (time.Duration(float64(l.PlannedEntries-l.FetchedEntries)/r) * time.Second).Round(time.Second).String()
			}
		}
		name := l.Name
		if name == "" {
			name = l.SourceURL
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", name, l.State,
			l.PlannedEntries, l.FetchedEntries, l.Rows, l.FailedEntries, rate, eta,
			strings.ReplaceAll(l.LastFailure, "|", "\\|"))
	}
	// The Web UI sizes its markdown iframe without the page margins; an
	// invisible last paragraph takes the clipped pixels instead of a row.
	b.WriteString("\n\u00a0\n")
	return b.String()
}
