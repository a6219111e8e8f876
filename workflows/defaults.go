package workflows

import "time"

// The workflows' defaults and bounds, in one place. The run's settings
// (chunk size, windows, heartbeat timeouts, attempts) come from the worker's
// configuration through ResolveLogs and PlanMerge; the fallbacks below apply
// only when those leave a value zero, and equal the configuration's defaults
// (TestDefaultsMatchConfig).
const (
	// defaultFetchAttempts is backfill.fetch_attempts' default.
	defaultFetchAttempts = 8
	// defaultHeartbeat is backfill.heartbeat_timeout's default.
	defaultHeartbeat = time.Minute
	// defaultSegmentActivities is how many FetchRange activities one
	// segment of a log (one LogBackfillWorkflow run) starts when
	// BackfillInput.SegmentActivities is 0 (about 6 history events each).
	defaultSegmentActivities = 1000

	// maxSegmentsPerRun is how many segments one run of BackfillWorkflow
	// starts before it continues as new: about 4,500 events, leaving room
	// for the wrap-up of the segments still running.
	maxSegmentsPerRun = 500
	// eventsPerSegment bounds the parent's history events for one segment:
	// child initiated, started and completed, and up to two workflow tasks.
	eventsPerSegment = 9
	// maxHistoryEvents is the history length after which a backfill run
	// continues as new even if the server does not suggest it yet.
	maxHistoryEvents = 5000
	// maxBatchesPerRun is how many MergeBatch activities one run starts
	// before it continues as new (about 6 history events each).
	maxBatchesPerRun = 1000
	// planPage is how many plan ranges one ReadPlan activity returns.
	planPage = 500

	// maxFailedRanges caps the failed ranges a result carries (payload
	// size).
	maxFailedRanges = 1000
	// maxUnparseable caps the unparseable entries a result names, per log
	// and in all (payload size; BadEntries counts them all).
	maxUnparseable = 100
)
