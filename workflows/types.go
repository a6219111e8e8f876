// Package workflows defines certlake's Temporal workflows: BackfillWorkflow
// (find the gaps of the lake and fill them into staging), LogBackfillWorkflow
// (one log's share, as a child) and MergeWorkflow (staging into main). Only
// deterministic code lives here; every disk and network access is an activity.
package workflows

// TaskQueue is the default task queue of certlake workers and workflows.
const TaskQueue = "certlake"

// Workflow type names, part of the public API (temporal workflow start --type).
const (
	BackfillWorkflowName    = "BackfillWorkflow"
	LogBackfillWorkflowName = "LogBackfillWorkflow"
	MergeWorkflowName       = "MergeWorkflow"
)

// Ceiling modes of BackfillInput.Ceiling.
const (
	CeilingStateFile = "state_file" // current_index of the live ingester's state file
	CeilingTreeSize  = "tree_size"  // the log's current tree size
)

// BackfillInput is the single input of BackfillWorkflow. It is one struct,
// not several arguments, so new fields stay backward compatible. JSON keys are
// snake_case so that `temporal workflow start --input '{...}'` works by hand.
type BackfillInput struct {
	// StagingPath is the staging Delta table to fill. Empty writes straight
	// to the main table (the original's behaviour without --staging-path).
	StagingPath string `json:"staging_path,omitempty"`
	// From switches to historical mode: plan every missing index from From
	// up. Nil is catch-up mode (only holes inside what the lake already has).
	From *uint64 `json:"from,omitempty"`
	// Logs filters the logs: case-insensitive substrings of a log's
	// description or URL, comma separated. Empty means every known log.
	Logs string `json:"logs,omitempty"`
	// Ceiling says where each log's exclusive upper bound comes from:
	// "state_file" (default) or "tree_size".
	Ceiling string `json:"ceiling,omitempty"`
	// IncludeFrontier also plans [max+1, ceiling-1] per log. Only safe while
	// the live ingester is stopped (its unflushed buffer would race us).
	IncludeFrontier bool `json:"include_frontier,omitempty"`
	// MergeAfter starts MergeWorkflow as a child once every log is done.
	MergeAfter bool `json:"merge_after,omitempty"`
	// ChunkSize is the number of indices per FetchRange activity; 0 means
	// the worker's configured default.
	ChunkSize uint64 `json:"chunk_size,omitempty"`
	// Window is the number of FetchRange activities in flight per log; 0
	// means the worker's configured default.
	Window int `json:"window,omitempty"`
	// SegmentActivities bounds the FetchRange activities of one segment of
	// a log (one child run); 0 means 1000. MaxSegmentsPerRun is how many
	// segments a run of the workflow starts before it continues as new; 0
	// means 500. Both bound history sizes: lower them only to see the
	// segments and continue-as-new on a small backfill.
	SegmentActivities int `json:"segment_activities,omitempty"`
	MaxSegmentsPerRun int `json:"max_segments_per_run,omitempty"`
	// State is set by the workflow itself when it continues as new (the
	// logs' cursors and the result so far); leave it out when starting.
	State *BackfillState `json:"state,omitempty"`

	decodeProblem string // an unknown field seen when decoding (strict.go)
}

// FailedRange is an inclusive range of one log that could not be fetched.
type FailedRange struct {
	SourceURL string `json:"source_url"`
	Start     uint64 `json:"start"` // inclusive
	End       uint64 `json:"end"`   // inclusive
	Error     string `json:"error"`
}

// BackfillResult is the outcome of BackfillWorkflow.
type BackfillResult struct {
	RecordsWritten int64         `json:"records_written"`
	LogsTotal      int           `json:"logs_total"`
	LogsSucceeded  int           `json:"logs_succeeded"`
	LogsFailed     int           `json:"logs_failed"`
	LogsSkipped    []SkippedLog  `json:"logs_skipped,omitempty"`
	FailedRanges   []FailedRange `json:"failed_ranges"`
	// FailedRangesOmitted counts failed ranges left out of FailedRanges to
	// keep the result small (they are in the worker's log).
	FailedRangesOmitted int   `json:"failed_ranges_omitted,omitempty"`
	BadEntries          int64 `json:"bad_entries"`
	// Unparseable names entries the logs served but certlake could not
	// decode into a row (at most maxUnparseable per log and in all; the
	// others are counted in BadEntries and logged by the worker). They are
	// not in the lake, so a later run plans them again.
	Unparseable    []UnparseableEntry `json:"unparseable,omitempty"`
	StagingPath    string             `json:"staging_path"`
	PlannedEntries uint64             `json:"planned_entries"`
	PlannedRanges  int                `json:"planned_ranges"`
	Merge          *MergeResult       `json:"merge,omitempty"`
	// MergeSkipped says why merge_after did not merge (a merge of the
	// staging table was already running), naming that run.
	MergeSkipped string `json:"merge_skipped,omitempty"`
	// FailedLogs are the logs whose backfill stopped on an error (a plan
	// that could not be read, say), with the rows they committed before.
	FailedLogs []FailedLog `json:"failed_logs,omitempty"`
}

// FailedLog is a log whose backfill stopped on an error.
type FailedLog struct {
	SourceURL string `json:"source_url"`
	Error     string `json:"error"`
	Rows      int64  `json:"rows"` // committed before the error, counted in RecordsWritten
}

// UnparseableEntry is one log entry that could not become a row.
type UnparseableEntry struct {
	SourceURL string `json:"source_url"`
	Index     uint64 `json:"index"`
	Error     string `json:"error"`
}

// SkippedLog is a log left out of a run, with the reason.
type SkippedLog struct {
	SourceURL string `json:"source_url"`
	Reason    string `json:"reason"`
}

// MergeInput is the single input of MergeWorkflow.
type MergeInput struct {
	// StagingPath is the staging table to merge into the worker's main
	// table. Required.
	StagingPath string `json:"staging_path"`
	// BatchRows caps the staging rows per MergeBatch activity; 0 means the
	// worker's configured default.
	BatchRows int64 `json:"batch_rows,omitempty"`
	// Window is the number of MergeBatch activities in flight; 0 means the
	// worker's configured default.
	Window int `json:"window,omitempty"`
	// AdoptStaging merges a staging table that lacks certlake's
	// certlake.role=staging marker (one certstream-server-rust's
	// --staging-path backfill wrote): the worker first proves it is not the
	// main table (not its location, not inside it, not its table id) and
	// commits the marker. Without it such a table is refused, saying so.
	AdoptStaging bool `json:"adopt_staging,omitempty"`
	// State is set by the workflow itself when it continues as new (the
	// plan and the batches merged so far); leave it out when starting.
	State *MergeState `json:"state,omitempty"`

	decodeProblem string // an unknown field seen when decoding (strict.go)
}

// MergeResult is the outcome of MergeWorkflow. TotalInserted+TotalSkipped
// equals TotalStagingRows.
type MergeResult struct {
	TotalStagingRows int64 `json:"total_staging_rows"`
	TotalInserted    int64 `json:"total_inserted"`
	TotalSkipped     int64 `json:"total_skipped"`
	Batches          int   `json:"batches"`
	StagingRetired   bool  `json:"staging_retired"`
	StagingVersion   int64 `json:"staging_version"`
	// Skipped says why this run merged nothing: another merge of the
	// staging table was running (named here).
	Skipped string `json:"skipped,omitempty"`
	// Note says what happened when a cancel arrived too late to stop the
	// merge (while staging was being retired).
	Note string `json:"note,omitempty"`
}
