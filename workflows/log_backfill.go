package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// LogBackfillInput is the input of LogBackfillWorkflow: one segment of one
// log's plan. The parent runs a log as a sequence of segments, each a child
// run that starts at Cursor and returns where it stopped, so neither the
// child's history nor the parent's grows with the log's size or the time it
// takes (see BackfillWorkflow).
type LogBackfillInput struct {
	Log       activities.LogTarget `json:"log"`
	PlanFile  string               `json:"plan_file"`  // the log's ranges (JSON Lines, inclusive)
	TablePath string               `json:"table_path"` // staging table; empty = main
	Staging   bool                 `json:"staging"`
	RunKey    string               `json:"run_key"` // Delta txn key base (parent ID)
	ChunkSize uint64               `json:"chunk_size"`
	Window    int                  `json:"window"`
	// MaxActivities bounds the FetchRange activities of one segment (its
	// history: about 6 events each). 0 means 1000.
	MaxActivities int `json:"max_activities,omitempty"`
	// MaxSeconds stops a segment from starting activities after this long,
	// so the parent hears of its progress; 0 means no time bound.
	MaxSeconds     int    `json:"max_seconds,omitempty"`
	PlannedEntries uint64 `json:"planned_entries"`
	// HeartbeatTimeoutSeconds is FetchRange's heartbeat timeout; 0 = 60.
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds,omitempty"`
	// FetchAttempts is how often a FetchRange is tried; 0 = 8.
	FetchAttempts int `json:"fetch_attempts,omitempty"`

	// Cursor is where this segment starts in the plan.
	Cursor PlanCursor `json:"cursor"`
	// Before is the log's progress before this segment (the parent's row),
	// so the segment's own query and details show the log's totals.
	Before LogProgress `json:"before"`
}

// PlanCursor is a position in a plan: the first range not yet fully
// scheduled, and how many of its indices were.
type PlanCursor struct {
	NextRange int    `json:"next_range"`
	Offset    uint64 `json:"offset"`
}

// LogBackfillResult is the outcome of one segment. A segment that fails or
// is canceled carries it as its error's details, so the rows it committed
// are still counted.
type LogBackfillResult struct {
	SourceURL           string        `json:"source_url"`
	Rows                int64         `json:"rows"`
	FetchedEntries      uint64        `json:"fetched_entries"`
	BadEntries          int64         `json:"bad_entries"`
	FailedEntries       uint64        `json:"failed_entries"`
	FailedRanges        []FailedRange `json:"failed_ranges"`
	FailedRangesOmitted int           `json:"failed_ranges_omitted,omitempty"`
	// Unparseable samples the segment's bad entries (at most maxUnparseable).
	Unparseable []UnparseableEntry `json:"unparseable,omitempty"`
	Activities  int                `json:"activities"`
	// Cursor is where the next segment starts; Done says the plan is
	// finished (nothing left to schedule).
	Cursor PlanCursor `json:"cursor"`
	Done   bool       `json:"done"`
}

// wrapUpSignal asks a segment to start nothing more and return (the parent
// is about to continue as new).
const wrapUpSignal = "wrap-up"

// LogBackfillWorkflow fetches one segment of a log's plan with a sliding
// window of FetchRange activities and returns where it stopped.
func LogBackfillWorkflow(ctx workflow.Context, in LogBackfillInput) (LogBackfillResult, error) {
	if in.ChunkSize == 0 || in.Window <= 0 {
		return LogBackfillResult{SourceURL: in.Log.URL}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("chunk_size and window must be positive (got %d, %d)", in.ChunkSize, in.Window),
			activities.ErrTypeInvalidInput, nil)
	}
	s := newSegment(ctx, in)
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (LogProgress, error) {
		return s.progress(ctx), nil
	}); err != nil {
		return s.res, fmt.Errorf("register progress query: %w", err)
	}
	s.show(ctx)
	slidingWindow{size: in.Window, start: func() (workflow.Future, func(workflow.Future), bool) {
		return s.startNext(ctx)
	}}.run(ctx)
	return s.finish(ctx)
}

// segment is the state of one LogBackfillWorkflow run.
type segment struct {
	in      LogBackfillInput
	plan    *planReader
	res     LogBackfillResult
	started time.Time
	wrapUp  workflow.ReceiveChannel
	stopped bool
}

func newSegment(ctx workflow.Context, in LogBackfillInput) *segment {
	if in.MaxActivities <= 0 {
		in.MaxActivities = defaultSegmentActivities
	}
	return &segment{
		in:      in,
		plan:    &planReader{file: in.PlanFile, chunk: in.ChunkSize, pos: in.Cursor},
		res:     LogBackfillResult{SourceURL: in.Log.URL, FailedRanges: []FailedRange{}},
		started: workflow.Now(ctx),
		wrapUp:  workflow.GetSignalChannel(ctx, wrapUpSignal),
	}
}

// startNext starts the next chunk's FetchRange, unless the segment is done.
func (s *segment) startNext(ctx workflow.Context) (workflow.Future, func(workflow.Future), bool) {
	if s.wrapUp.ReceiveAsync(nil) {
		s.stopped = true
	}
	if s.stopped || ctx.Err() != nil || s.res.Activities >= s.in.MaxActivities || continueSuggested(ctx) ||
		(s.in.MaxSeconds > 0 && s.res.Activities > 0 && workflow.Now(ctx).Sub(s.started) >= time.Duration(s.in.MaxSeconds)*time.Second) {
		return nil, nil, false
	}
	c, ok := s.plan.next(ctx)
	if !ok {
		return nil, nil, false
	}
	s.res.Activities++
	actx := longOptions(ctx, fmt.Sprintf("%s [%d..%d]", s.in.Log.Name, c.Start, c.End), s.in.HeartbeatTimeoutSeconds, fetchAttempts(s.in.FetchAttempts))
	var a *activities.Backfill
	f := workflow.ExecuteActivity(actx, a.FetchRange, activities.FetchRangeInput{
		Log: s.in.Log, Start: c.Start, End: c.End, TablePath: s.in.TablePath,
		Staging: s.in.Staging, RunKey: s.in.RunKey,
	})
	return f, func(f workflow.Future) { s.record(ctx, c, f); s.show(ctx) }, true
}

// record adds one finished chunk to the segment's totals.
func (s *segment) record(ctx workflow.Context, c activities.Range, f workflow.Future) {
	var r activities.FetchRangeResult
	err := f.Get(ctx, &r)
	switch {
	case err != nil && temporal.IsCanceledError(err) && ctx.Err() != nil:
		// The segment is being canceled; the range is simply not done.
	case err != nil:
		workflow.GetLogger(ctx).Error("range failed", "log", s.in.Log.URL, "start", c.Start, "end", c.End, "err", err)
		s.res.FailedEntries += c.End - c.Start + 1
		if len(s.res.FailedRanges) < maxFailedRanges {
			s.res.FailedRanges = append(s.res.FailedRanges, FailedRange{
				SourceURL: s.in.Log.URL, Start: c.Start, End: c.End, Error: rootMessage(err)})
		} else {
			s.res.FailedRangesOmitted++
		}
	default:
		s.res.Rows += r.Rows
		s.res.BadEntries += r.BadEntries
		for _, b := range r.BadSample {
			if len(s.res.Unparseable) < maxUnparseable {
				s.res.Unparseable = append(s.res.Unparseable, UnparseableEntry{SourceURL: s.in.Log.URL, Index: b.Index, Error: b.Error})
			}
		}
		s.res.FetchedEntries += c.End - c.Start + 1
	}
}

// finish returns the segment's outcome: its totals and where the next
// segment starts, or its error with the totals as details.
func (s *segment) finish(ctx workflow.Context) (LogBackfillResult, error) {
	s.res.Cursor, s.res.Done = s.plan.pos, s.plan.done()
	if ctx.Err() != nil {
		return s.res, temporal.NewCanceledError(s.res)
	}
	if s.plan.err != nil {
		return s.res, failWith(s.plan.err, s.res)
	}
	workflow.GetLogger(ctx).Info("log backfill segment complete", "log", s.in.Log.URL, "rows", s.res.Rows,
		"activities", s.res.Activities, "done", s.res.Done, "failed_ranges", len(s.res.FailedRanges)+s.res.FailedRangesOmitted)
	return s.res, nil
}

// progress is the log's progress including this segment.
func (s *segment) progress(ctx workflow.Context) LogProgress {
	p := s.in.Before
	p.SourceURL, p.Name, p.State, p.PlannedEntries = s.in.Log.URL, s.in.Log.Name, "running", s.in.PlannedEntries
	if p.StartedAt.IsZero() {
		p.StartedAt = s.started
	}
	addSegment(&p, s.res)
	p.UpdatedAt = workflow.Now(ctx)
	return p
}

// show publishes the log's progress as the run's current details (no
// history event).
func (s *segment) show(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, renderLogDetails(s.progress(ctx)))
}

// addSegment adds a segment's counts to a log's progress.
func addSegment(p *LogProgress, r LogBackfillResult) {
	p.FetchedEntries += r.FetchedEntries
	p.Rows += r.Rows
	p.BadEntries += r.BadEntries
	p.FailedEntries += r.FailedEntries
	p.FailedRanges += len(r.FailedRanges) + r.FailedRangesOmitted
	if len(r.FailedRanges) > 0 {
		p.LastFailure = lastFailure(r.FailedRanges)
	}
}

// planReader hands out a log's plan in chunks from pos on, reading pages of
// ranges as needed. A failed read is kept: the segment then starts nothing
// more and fails once its chunks in flight are done.
type planReader struct {
	file  string
	chunk uint64
	pos   PlanCursor
	page  []activities.Range // ranges from pos.NextRange on
	read  bool               // a page was read
	more  bool               // the plan has ranges after page
	err   error
}

func (p *planReader) next(ctx workflow.Context) (activities.Range, bool) {
	if p.err != nil {
		return activities.Range{}, false
	}
	if len(p.page) == 0 {
		if p.read && !p.more {
			return activities.Range{}, false
		}
		var page activities.ReadPlanResult
		var a *activities.Backfill
		err := workflow.ExecuteActivity(quickOptions(ctx), a.ReadPlan, activities.ReadPlanInput{
			PlanFile: p.file, Offset: p.pos.NextRange, Limit: planPage,
		}).Get(ctx, &page)
		if err != nil {
			p.err = fmt.Errorf("read plan %s at range %d: %w", p.file, p.pos.NextRange, err)
			return activities.Range{}, false
		}
		p.page, p.more, p.read = page.Ranges, page.More, true
		if len(p.page) == 0 {
			return activities.Range{}, false
		}
	}
	r := p.page[0]
	c := activities.Range{Start: r.Start + p.pos.Offset, End: r.End}
	if c.End-c.Start >= p.chunk {
		c.End = c.Start + p.chunk - 1
		p.pos.Offset += p.chunk
	} else {
		p.page = p.page[1:]
		p.pos = PlanCursor{NextRange: p.pos.NextRange + 1}
	}
	return c, true
}

// done reports whether the whole plan has been handed out.
func (p *planReader) done() bool {
	return p.err == nil && p.read && len(p.page) == 0 && !p.more
}

func fetchAttempts(n int) int32 {
	if n <= 0 {
		return defaultFetchAttempts
	}
	return int32(n)
}

// continueSuggested reports whether the server asks this run to continue as
// new (its history is getting long).
func continueSuggested(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > 8000
}

// rootMessage returns the innermost message of an activity failure, which
// names the cause (HTTP status, parse error) rather than the retry wrapper.
func rootMessage(err error) string {
	var appErr *temporal.ApplicationError
	msg := err.Error()
	for e := err; e != nil; {
		if ae, ok := e.(*temporal.ApplicationError); ok {
			appErr = ae
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	if appErr != nil {
		msg = appErr.Error()
	}
	return msg
}

func renderLogDetails(p LogProgress) string {
	return fmt.Sprintf("**%s** (`%s`): %s\n\n| planned | fetched | rows | bad | failed |\n|---:|---:|---:|---:|---:|\n| %d | %d | %d | %d | %d |\n",
		p.Name, p.SourceURL, p.State, p.PlannedEntries, p.FetchedEntries, p.Rows, p.BadEntries, p.FailedEntries)
}

// lastFailure shows the latest failed range and its reason, cut to fit a
// table cell.
func lastFailure(rs []FailedRange) string {
	if len(rs) == 0 {
		return ""
	}
	r := rs[len(rs)-1]
	s := fmt.Sprintf("[%d, %d] %s", r.Start, r.End, r.Error)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
