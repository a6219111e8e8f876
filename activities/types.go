package activities

// Inputs and outputs of certlake's activities. Each activity takes one input
// struct and returns one output struct, with snake_case JSON keys, so that new
// fields stay backward compatible. Payloads carry paths, ranges and counts,
// never rows: a plan too big for a payload lives in a file and travels by path.

// LogTarget is one log a backfill works on, with its exclusive ceiling.
type LogTarget struct {
	URL     string `json:"url"`     // normalized log URL (source_url)
	Name    string `json:"name"`    // description (source_name)
	Static  bool   `json:"static"`  // static-ct-api log (URL is the monitoring prefix)
	Ceiling uint64 `json:"ceiling"` // exclusive: nothing at or above is planned
	Window  int    `json:"window"`  // FetchRange activities in flight; 0 = default
}

// SkippedLog is a log left out of a run, with the reason.
type SkippedLog struct {
	SourceURL string `json:"source_url"`
	Reason    string `json:"reason"`
}

// ResolveLogsInput selects the logs of a backfill.
type ResolveLogsInput struct {
	Logs    string  `json:"logs,omitempty"`    // filter: comma-separated substrings
	Ceiling string  `json:"ceiling,omitempty"` // "state_file" (default) or "tree_size"
	From    *uint64 `json:"from,omitempty"`    // historical mode start, checked against ceilings
}

// ResolveLogsResult lists the logs to backfill and the worker's defaults.
type ResolveLogsResult struct {
	Logs      []LogTarget  `json:"logs"`
	Skipped   []SkippedLog `json:"skipped,omitempty"`
	ChunkSize uint64       `json:"chunk_size"` // default entries per FetchRange
	Window    int          `json:"window"`     // default FetchRange in flight per log
	// HeartbeatTimeoutSeconds is the FetchRange heartbeat timeout.
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds"`
	// FetchAttempts is how often a FetchRange is tried before its range is
	// reported failed.
	FetchAttempts int `json:"fetch_attempts"`
}

// LogCeiling is a log and its exclusive ceiling, as DetectGaps needs them.
type LogCeiling struct {
	URL     string `json:"url"`
	Ceiling uint64 `json:"ceiling"`
}

// DetectGapsInput asks for the missing ranges of the lake.
type DetectGapsInput struct {
	StagingPath     string       `json:"staging_path,omitempty"` // empty: main only
	From            *uint64      `json:"from,omitempty"`
	IncludeFrontier bool         `json:"include_frontier,omitempty"`
	Logs            []LogCeiling `json:"logs"`
	PlanKey         string       `json:"plan_key"` // names the plan directory (the workflow run)
}

// LogPlan summarizes one log's share of a plan.
type LogPlan struct {
	URL      string `json:"url"`
	PlanFile string `json:"plan_file"` // JSON Lines of inclusive ranges; empty when no ranges
	Ranges   int    `json:"ranges"`
	Entries  uint64 `json:"entries"`
}

// DetectGapsResult is the plan, by reference.
type DetectGapsResult struct {
	PlanDir string    `json:"plan_dir"`
	Logs    []LogPlan `json:"logs"`
	Ranges  int       `json:"ranges"`
	Entries uint64    `json:"entries"`
}

// ReadPlanInput pages through one log's plan file.
type ReadPlanInput struct {
	PlanFile string `json:"plan_file"`
	Offset   int    `json:"offset"` // index of the first range to return
	Limit    int    `json:"limit"`  // at most this many ranges
}

// Range is an inclusive range of log indices.
type Range struct {
	Start uint64 `json:"start"` // inclusive
	End   uint64 `json:"end"`   // inclusive
}

// ReadPlanResult is one page of a plan.
type ReadPlanResult struct {
	Ranges []Range `json:"ranges"`
	More   bool    `json:"more"`
}

// FetchRangeInput asks for one range of one log to be fetched and staged.
type FetchRangeInput struct {
	Log       LogTarget `json:"log"`
	Start     uint64    `json:"start"` // inclusive
	End       uint64    `json:"end"`   // inclusive
	TablePath string    `json:"table_path"`
	// Staging says TablePath is a staging table (created with the staging
	// marker); false writes to the main table.
	Staging bool `json:"staging"`
	// RunKey makes the Delta txn appId unique to this backfill (the parent
	// workflow ID): retries of the same range share it, other runs do not.
	RunKey string `json:"run_key"`
}

// FetchProgress is FetchRange's heartbeat: everything below NextIndex is
// committed to the table.
type FetchProgress struct {
	NextIndex     uint64 `json:"next_index"`
	RowsCommitted int64  `json:"rows_committed"`
}

// BadEntry is an entry that could not be parsed into a row.
type BadEntry struct {
	Index uint64 `json:"index"`
	Error string `json:"error"`
}

// FetchRangeResult reports one staged range.
type FetchRangeResult struct {
	Rows       int64      `json:"rows"`        // rows committed by this activity (all attempts)
	Entries    uint64     `json:"entries"`     // indices covered (rows + bad)
	BadEntries int64      `json:"bad_entries"` // entries that could not be parsed
	BadSample  []BadEntry `json:"bad_sample,omitempty"`
}

// PlanMergeInput asks for a merge plan of a staging table.
type PlanMergeInput struct {
	StagingPath string `json:"staging_path"`
	BatchRows   int64  `json:"batch_rows,omitempty"` // 0 = worker default
	PlanKey     string `json:"plan_key"`
	// AdoptStaging marks a staging table without certlake's marker (one
	// certstream-server-rust wrote) after proving it is not main.
	AdoptStaging bool `json:"adopt_staging,omitempty"`
}

// PlanMergeResult describes the plan; the batches live in PlanFile.
type PlanMergeResult struct {
	StagingExists  bool   `json:"staging_exists"`
	PlanFile       string `json:"plan_file,omitempty"`
	StagingVersion int64  `json:"staging_version"`
	StagingTableID string `json:"staging_table_id"`
	Batches        int    `json:"batches"`
	StagingRows    int64  `json:"staging_rows"`
	StagingFiles   int    `json:"staging_files"`
	Window         int    `json:"window"` // default MergeBatch in flight
	// HeartbeatTimeoutSeconds is the MergeBatch heartbeat timeout.
	HeartbeatTimeoutSeconds int `json:"heartbeat_timeout_seconds"`
}

// IndexMainInput asks to bring main's key index up to date before the
// batches of a merge run.
type IndexMainInput struct {
	StagingPath string `json:"staging_path"` // the merge's staging table, for the record
}

// IndexMainResult counts main's data files by key index state. It is also
// the activity's heartbeat (Indexed of ToIndex so far).
type IndexMainResult struct {
	Files      int    `json:"files"`             // live data files of main holding rows
	Known      int    `json:"already_indexed"`   // of those, indexed by an earlier merge
	ToIndex    int    `json:"to_index"`          // not indexed before this step
	Indexed    int    `json:"indexed"`           // indexed by this step
	Unreadable int    `json:"unreadable"`        // could not be read; left unindexed
	Rows       int64  `json:"rows_read"`         // rows read to index them
	Warning    string `json:"warning,omitempty"` // why the index was not updated
}

// MergeBatchInput names one batch of a plan.
type MergeBatchInput struct {
	StagingPath string `json:"staging_path"`
	PlanFile    string `json:"plan_file"`
	BatchID     int    `json:"batch_id"`
}

// MergeBatchResult reports one merged batch.
type MergeBatchResult struct {
	StagingRows      int64 `json:"staging_rows"`
	Inserted         int64 `json:"inserted"`
	Skipped          int64 `json:"skipped"`
	MainVersion      int64 `json:"main_version"`
	AlreadyCommitted bool  `json:"already_committed"`
	// Attempts counts the redos after a concurrent writer took some of the
	// batch's keys (1 = no redo).
	Attempts int `json:"attempts"`
}

// RetireStagingInput retires the merged files of a plan.
type RetireStagingInput struct {
	StagingPath string `json:"staging_path"`
	PlanFile    string `json:"plan_file"`
}

// RetireStagingResult reports what was retired.
type RetireStagingResult struct {
	RemovedFiles     int  `json:"removed_files"`
	DirectoryDeleted bool `json:"directory_deleted"`
}
