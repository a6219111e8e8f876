// Package activities implements certlake's Temporal activities. They are thin:
// each checks its input, calls the engine in internal/, heartbeats progress and
// classifies errors (errors.go). The structs hold their dependencies; the
// worker builds them once and registers them, and workflows call the methods
// through a nil pointer.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/certlake/certlake/internal/allowed"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/planning"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/storage"
)

// LakeSettings locate and tune the tables.
type LakeSettings struct {
	MainPath           string         // the main table (shared with the live ingester)
	PlanDir            string         // where plans are written (path or URI); must be shared by all workers
	CheckpointInterval int            // commits between Delta checkpoints; 0 = 100
	AsDERBinary        bool           // as_der type of tables certlake creates
	CompactStaging     bool           // zstd on every staging column (lake.CompressionSpec)
	DB                 lake.DBOptions // DuckDB limits
	// Scratch is this worker's own local scratch (worker.scratch_dir):
	// uploads to and downloads from remote tables; nil = the OS temp dir.
	Scratch *lake.Scratch
	// Storage opens table and plan locations (local paths, file:// and
	// s3:// URIs); nil opens local paths and s3 with the AWS defaults.
	Storage *storage.Opener
	// Allowed are the locations under which a workflow input may name a
	// table to create, write or delete (lake.allowed_locations).
	Allowed *allowed.List
	// Buffers is the Parquet writers' buffer pool shared by every table
	// the activities open, so a FetchRange starts with warm buffers
	// instead of growing its own; nil gives each table its own.
	Buffers *lake.BufferPool
}

// LogSettings say where logs come from and how to read them (the catalog,
// per-log overrides and the state file, shared with `starter gaps`).
type LogSettings = planning.Logs

// BackfillSettings are the defaults of a backfill run.
type BackfillSettings struct {
	ChunkSize      uint64        // entries per FetchRange
	Window         int           // FetchRange in flight per log
	StageBatchRows int           // rows per staging commit
	FlushInterval  time.Duration // a staging commit at least this often
	Ceiling        string        // "state_file" or "tree_size" when the input names none
	FetchAttempts  int           // tries of a FetchRange before its range is failed; 0 = 8
	// HeartbeatTimeout bounds the silence of a FetchRange: a dead worker is
	// noticed this fast.
	HeartbeatTimeout time.Duration
}

// MergeSettings are the defaults of a merge run.
type MergeSettings struct {
	BatchRows        int64         // staging rows per MergeBatch
	Window           int           // MergeBatch in flight
	HeartbeatTimeout time.Duration // silence after which a MergeBatch is retried
}

// Backfill holds the dependencies of the backfill activities.
type Backfill struct {
	Lake     LakeSettings
	Logs     LogSettings
	Defaults BackfillSettings
	Logger   *slog.Logger
	Metrics  Metrics

	mu      sync.Mutex
	plans   map[string][]gaps.Range // recently read plan files
	builder record.Builder          // caches the chain JSON of repeated issuers
	tables  tableCache              // tables FetchRange writes, kept open
}

// Merge holds the dependencies of the merge activities.
type Merge struct {
	Lake     LakeSettings
	Defaults MergeSettings
	Logger   *slog.Logger
	Metrics  Metrics
}

// Metrics receives certlake's counters; NopMetrics ignores them.
type Metrics interface {
	EntriesFetched(log string, n int)
	RowsStaged(log string, n int64)
	BadEntries(log string, n int)
	FailedRange(log string)
	RowsMerged(n int64)
}

// NopMetrics is a Metrics that records nothing.
type NopMetrics struct{}

func (NopMetrics) EntriesFetched(string, int) {}
func (NopMetrics) RowsStaged(string, int64)   {}
func (NopMetrics) BadEntries(string, int)     {}
func (NopMetrics) FailedRange(string)         {}
func (NopMetrics) RowsMerged(int64)           {}

// tableOptions completes o with the storage and scratch of the settings.
func (l LakeSettings) tableOptions(o lake.Options) lake.Options {
	o.Storage = l.opener()
	o.Scratch = l.Scratch
	return o
}

// mergeDB is the DuckDB of merge steps: it spills under lake.duckdb.temp_dir
// or else under this worker's scratch (worker.scratch_dir), never into a
// directory shared with other workers.
func (l LakeSettings) mergeDB() lake.DBOptions {
	o := l.DB
	if o.TempDir == "" {
		o.TempDir = l.Scratch.SpillDir()
	}
	return o
}

// opener is the Opener of the settings, or a default one.
func (l LakeSettings) opener() *storage.Opener {
	if l.Storage != nil {
		return l.Storage
	}
	return &storage.Opener{}
}

// planStore opens lake.plan_dir/<safe plan key> and returns the store with
// the location it names (for plan file references in payloads).
func (l LakeSettings) planStore(ctx context.Context, planKey string) (storage.Store, storage.Location, error) {
	loc, err := storage.ParseLocation("lake.plan_dir", l.PlanDir)
	if err != nil {
		return nil, loc, err
	}
	loc = loc.Child(safeName(planKey))
	s, err := l.opener().Open(ctx, loc)
	return s, loc, err
}

// checkTableDir refuses to create a table in a directory that already holds
// something else: certlake must never write into, or later delete, a
// directory of the user's files that was named by mistake.
func checkTableDir(path, what string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !fi.IsDir() {
		return fatalf(ErrTypeInvalidInput, "%s %s is a file, not a table directory", what, path)
	}
	// One listing decides: a _delta_log in it is a table, or one a
	// concurrent activity is creating right now (checking for _delta_log
	// first and listing after raced with that creation).
	ents, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.Name() == "_delta_log" }) {
		return nil
	}
	if len(ents) > 0 {
		return fatalf(ErrTypeNotStaging, "%s %s is a directory with %d entries (e.g. %q) but no Delta table; "+
			"name a new or empty directory", what, path, len(ents), ents[0].Name())
	}
	return nil
}
