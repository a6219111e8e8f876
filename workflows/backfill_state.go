package workflows

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// BackfillState is what BackfillWorkflow carries across continue-as-new:
// each log's place in its plan and progress, and the result so far.
type BackfillState struct {
	PlanKey string         `json:"plan_key"` // names the plan directory (the first run)
	Logs    []LogState     `json:"logs"`
	Result  BackfillResult `json:"result"`
	Runs    int            `json:"runs"` // runs before this one
}

// LogState is one log's place in a backfill.
type LogState struct {
	Input    LogBackfillInput `json:"input"` // the next segment's input (its cursor)
	Segments int              `json:"segments"`
	Progress LogProgress      `json:"progress"`
}

// LogProgress is one log's progress, as the progress query and the Web UI's
// current details show it. The parent refreshes it when a segment ends; the
// log's own run (WorkflowID) answers the same query live.
type LogProgress struct {
	SourceURL      string `json:"source_url"`
	Name           string `json:"name"`
	WorkflowID     string `json:"workflow_id"` // the log's segments run under this id, one after the other
	State          string `json:"state"`       // running, done, failed, canceled
	PlannedEntries uint64 `json:"planned_entries"`
	PlannedRanges  int    `json:"planned_ranges"`
	FetchedEntries uint64 `json:"fetched_entries"` // indices covered by finished chunks
	Rows           int64  `json:"rows"`            // rows committed
	BadEntries     int64  `json:"bad_entries"`
	FailedEntries  uint64 `json:"failed_entries"`
	FailedRanges   int    `json:"failed_ranges"`
	Segments       int    `json:"segments"`
	// LastFailure is the range and reason of the latest failed range
	// (e.g. "[0, 499] verification: ..."), shortened.
	LastFailure string    `json:"last_failure,omitempty"`
	Error       string    `json:"error,omitempty"` // why the log's backfill failed, if it did
	StartedAt   time.Time `json:"started_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// BackfillProgress is what the progress query of BackfillWorkflow returns.
type BackfillProgress struct {
	Phase string        `json:"phase"` // resolving, planning, fetching, merging, done, canceled
	Logs  []LogProgress `json:"logs"`
}

// renderBackfillDetails renders the progress table the Web UI shows on the
// run's User Metadata tab (markdown).
func renderBackfillDetails(in BackfillInput, p BackfillProgress) string {
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
