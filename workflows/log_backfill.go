package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// LogBackfillInput is the input of LogBackfillWorkflow. Continue-as-new
// carries the progress in the same struct (Cursor and the totals).
type LogBackfillInput struct {
	Log       activities.LogTarget `json:"log"`
	PlanFile  string               `json:"plan_file"`  // the log's ranges (JSON Lines, inclusive)
	TablePath string               `json:"table_path"` // staging table; empty = main
	Staging   bool                 `json:"staging"`
	RunKey    string               `json:"run_key"`   // Delta txn key base (parent ID)
	ParentID  string               `json:"parent_id"` // receives progress signals; empty = none
	ChunkSize uint64               `json:"chunk_size"`
	Window    int                  `json:"window"`
	// MaxActivitiesPerRun bounds the history of one run; after that many
	// FetchRange activities the workflow continues as new. 0 means 1000.
	MaxActivitiesPerRun int    `json:"max_activities_per_run,omitempty"`
	PlannedEntries      uint64 `json:"planned_entries"`
	// HeartbeatTimeoutSeconds is FetchRange's heartbeat timeout; 0 = 60.
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds,omitempty"`
	// FetchAttempts is how often a FetchRange is tried; 0 = 8.
	FetchAttempts int `json:"fetch_attempts,omitempty"`

	// Progress carried across continue-as-new.
	Cursor PlanCursor        `json:"cursor"`
	Totals LogBackfillResult `json:"totals"`
	Runs   int               `json:"runs"` // completed runs before this one
}

// PlanCursor is a position in a plan: the next range to read from the plan
// file and, inside the pending ranges, the next index to schedule.
type PlanCursor struct {
	NextRange int                `json:"next_range"` // plan ranges consumed so far
	Pending   []activities.Range `json:"pending,omitempty"`
}

// LogBackfillResult is the outcome of one log's backfill.
type LogBackfillResult struct {
	SourceURL           string        `json:"source_url"`
	Rows                int64         `json:"rows"`
	FetchedEntries      uint64        `json:"fetched_entries"`
	BadEntries          int64         `json:"bad_entries"`
	FailedEntries       uint64        `json:"failed_entries"`
	FailedRanges        []FailedRange `json:"failed_ranges"`
	FailedRangesOmitted int           `json:"failed_ranges_omitted,omitempty"`
	// Unparseable samples the log's bad entries (at most maxUnparseable).
	Unparseable []UnparseableEntry `json:"unparseable,omitempty"`
	Runs        int                `json:"runs"`
}

// planPage is how many plan ranges one ReadPlan activity returns.
const planPage = 500

// LogBackfillWorkflow fetches one log's planned ranges with a sliding window
// of FetchRange activities, continuing as new before its history grows large.
func LogBackfillWorkflow(ctx workflow.Context, in LogBackfillInput) (LogBackfillResult, error) {
	logger := workflow.GetLogger(ctx)
	tot := in.Totals
	tot.SourceURL = in.Log.URL
	if in.ChunkSize == 0 || in.Window <= 0 {
		return tot, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("chunk_size and window must be positive (got %d, %d)", in.ChunkSize, in.Window),
			activities.ErrTypeInvalidInput, nil)
	}
	maxPerRun := in.MaxActivitiesPerRun
	if maxPerRun <= 0 {
		maxPerRun = 1000
	}
	started := workflow.Now(ctx)
	progress := func(state string) LogProgress {
		return LogProgress{SourceURL: in.Log.URL, Name: in.Log.Name, State: state,
			PlannedEntries: in.PlannedEntries, FetchedEntries: tot.FetchedEntries, Rows: tot.Rows,
			BadEntries: tot.BadEntries, FailedEntries: tot.FailedEntries,
			FailedRanges: len(tot.FailedRanges) + tot.FailedRangesOmitted,
			LastFailure:  lastFailure(tot.FailedRanges),
			StartedAt:    started, UpdatedAt: workflow.Now(ctx)}
	}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (LogProgress, error) {
		return progress("running"), nil
	}); err != nil {
		return tot, fmt.Errorf("register progress query: %w", err)
	}
	var lastReport time.Time
	report := func(state string, force bool) {
		p := progress(state)
		workflow.SetCurrentDetails(ctx, renderLogDetails(p))
		if in.ParentID == "" || (!force && workflow.Now(ctx).Sub(lastReport) < 5*time.Second) {
			return
		}
		lastReport = workflow.Now(ctx)
		// Progress is best effort and not awaited: a lost signal only
		// delays the parent's table.
		workflow.SignalExternalWorkflow(ctx, in.ParentID, "", progressSignal, p)
	}
	report("running", true)

	var a *activities.Backfill
	cur := in.Cursor
	planDone := false
	// next returns the next chunk to schedule, reading plan pages as needed.
	next := func() (activities.Range, bool, error) {
		for len(cur.Pending) == 0 && !planDone {
			var page activities.ReadPlanResult
			err := workflow.ExecuteActivity(quickOptions(ctx), a.ReadPlan, activities.ReadPlanInput{
				PlanFile: in.PlanFile, Offset: cur.NextRange, Limit: planPage,
			}).Get(ctx, &page)
			if err != nil {
				return activities.Range{}, false, fail(fmt.Sprintf("read plan %s at %d", in.PlanFile, cur.NextRange), err)
			}
			cur.NextRange += len(page.Ranges)
			cur.Pending = append(cur.Pending, page.Ranges...)
			planDone = !page.More
		}
		if len(cur.Pending) == 0 {
			return activities.Range{}, false, nil
		}
		r := cur.Pending[0]
		c := activities.Range{Start: r.Start, End: r.End}
		if r.End-r.Start >= in.ChunkSize {
			c.End = r.Start + in.ChunkSize - 1
			cur.Pending[0].Start = c.End + 1
		} else {
			cur.Pending = cur.Pending[1:]
		}
		return c, true, nil
	}

	sel := workflow.NewSelector(ctx)
	inFlight, scheduled := 0, 0
	var schedErr error
	for {
		// Fill the window, unless this run has done its share.
		for inFlight < in.Window && scheduled < maxPerRun && ctx.Err() == nil && !continueSuggested(ctx) {
			c, ok, err := next()
			if err != nil {
				schedErr = err
				break
			}
			if !ok {
				break
			}
			actx := longOptions(ctx, fmt.Sprintf("%s [%d..%d]", in.Log.Name, c.Start, c.End), in.HeartbeatTimeoutSeconds, fetchAttempts(in.FetchAttempts))
			f := workflow.ExecuteActivity(actx, a.FetchRange, activities.FetchRangeInput{
				Log: in.Log, Start: c.Start, End: c.End, TablePath: in.TablePath,
				Staging: in.Staging, RunKey: in.RunKey,
			})
			inFlight++
			scheduled++
			sel.AddFuture(f, func(f workflow.Future) {
				inFlight--
				var r activities.FetchRangeResult
				err := f.Get(ctx, &r)
				switch {
				case err != nil && temporal.IsCanceledError(err):
				case err != nil:
					logger.Error("range failed", "log", in.Log.URL, "start", c.Start, "end", c.End, "err", err)
					tot.FailedEntries += c.End - c.Start + 1
					if len(tot.FailedRanges) < maxFailedRanges {
						tot.FailedRanges = append(tot.FailedRanges, FailedRange{
							SourceURL: in.Log.URL, Start: c.Start, End: c.End, Error: rootMessage(err)})
					} else {
						tot.FailedRangesOmitted++
					}
				default:
					tot.Rows += r.Rows
					tot.BadEntries += r.BadEntries
					for _, b := range r.BadSample {
						if len(tot.Unparseable) < maxUnparseable {
							tot.Unparseable = append(tot.Unparseable, UnparseableEntry{SourceURL: in.Log.URL, Index: b.Index, Error: b.Error})
						}
					}
					tot.FetchedEntries += c.End - c.Start + 1
				}
				report("running", false)
			})
		}
		if inFlight == 0 {
			break
		}
		sel.Select(ctx)
	}
	if ctx.Err() != nil {
		report("canceled", true)
		return tot, temporal.NewCanceledError("log backfill canceled")
	}
	if schedErr != nil {
		return tot, schedErr
	}
	if len(cur.Pending) > 0 || !planDone {
		// History budget reached with work left: continue as new with the
		// cursor (every in-flight activity has finished, so nothing is lost).
		in.Cursor, in.Totals, in.Runs = cur, tot, in.Runs+1
		report("running", true)
		return tot, workflow.NewContinueAsNewError(ctx, LogBackfillWorkflowName, in)
	}
	tot.Runs = in.Runs + 1
	state := "done"
	if len(tot.FailedRanges) > 0 {
		state = "failed"
	}
	report(state, true)
	logger.Info("log backfill complete", "log", in.Log.URL, "rows", tot.Rows, "runs", tot.Runs,
		"failed_ranges", len(tot.FailedRanges)+tot.FailedRangesOmitted)
	return tot, nil
}

func fetchAttempts(n int) int32 {
	if n <= 0 {
		return 8
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
