package merge

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/certlake/certlake/internal/lake"
)

// Options tune Merge.
type Options struct {
	// BatchRows is PlanOptions.BatchRows.
	BatchRows int64
	// DB bounds each step's DuckDB.
	DB DBOptions
	// Writer tunes the Parquet files written to main.
	Writer lake.WriterOptions
	// CopyChunkRows and CopyChunkBytes are BatchOptions'.
	CopyChunkRows, CopyChunkBytes int64
	// Table is used to open (or create) the tables; Role is set here.
	Table lake.Options
	// AdoptStaging merges a staging table without certlake's marker (one
	// certstream-server-rust wrote) after AdoptStaging proved it is not
	// main and marked it. Without it such a table is refused.
	AdoptStaging bool
	// Logger receives the "merge complete" line and progress; nil discards.
	Logger *slog.Logger
}

// Result is the outcome of Merge.
type Result struct {
	Totals
	Batches        int          `json:"batches"`
	StagingRetired bool         `json:"staging_retired"` // staging's merged files were retired
	Plan           Plan         `json:"-"`
	Retire         RetireResult `json:"retire"`
	Index          IndexResult  `json:"index"`
}

// Merge runs a whole merge in this process, batch after batch: the
// sequence the merge workflow spreads over activities (PlanMerge, each
// MergeBatch, Retire). A missing or empty staging table is a success with
// zero counts (AC4.1); a missing main table is created (AC4.2). On a batch
// failure it returns at once, naming the batch, and staging is left intact.
func Merge(ctx context.Context, mainPath, stagingPath string, opts Options) (Result, error) {
	var res Result
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	staging, err := OpenStaging(ctx, mainPath, stagingPath, opts.AdoptStaging, opts.Table)
	if err != nil {
		return res, err
	}
	if staging == nil {
		log.InfoContext(ctx, "nothing to merge: no staging table", "staging", stagingPath)
		return res, nil
	}
	plan, err := PlanMerge(ctx, staging, PlanOptions{MainPath: mainPath, BatchRows: opts.BatchRows, DB: opts.DB})
	if err != nil {
		return res, err
	}
	res.Plan = plan
	res.Batches = len(plan.Batches)
	if plan.Empty() {
		log.InfoContext(ctx, "nothing to merge: staging is empty", "staging", stagingPath, "version", plan.StagingVersion)
		return res, nil
	}
	main, err := OpenMain(ctx, mainPath, opts.Table)
	if err != nil {
		return res, err
	}
	ir, err := IndexMain(ctx, main, IndexOptions{DB: opts.DB, Logger: log})
	if err != nil {
		// A cache: without it the batches read main by stats alone.
		log.WarnContext(ctx, "main's key index not updated", "err", err)
	}
	res.Index = ir
	for _, b := range plan.Batches {
		br, err := MergeBatch(ctx, main, staging, plan.Ref(), b, BatchOptions{DB: opts.DB, Writer: opts.Writer, CopyChunkRows: opts.CopyChunkRows, CopyChunkBytes: opts.CopyChunkBytes, Logger: log})
		if err != nil {
			return res, err
		}
		res.StagingRows += br.StagingRows
		res.Inserted += br.Inserted
		res.Skipped += br.Skipped
	}
	rr, err := Retire(ctx, main, staging, plan, RetireOptions{Logger: log})
	if err != nil {
		return res, fmt.Errorf("merge of %s: every batch merged, retiring staging: %w", stagingPath, err)
	}
	res.Retire = rr
	res.StagingRetired = true
	log.InfoContext(ctx, "merge complete",
		"total_inserted", res.Inserted, "total_skipped", res.Skipped, "total_staging_rows", res.StagingRows,
		"batches", res.Batches, "staging_directory_deleted", rr.DirectoryDeleted)
	return res, nil
}
