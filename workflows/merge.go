package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// MergeProgress is what the progress query of MergeWorkflow returns: the
// result so far (its fields at the top level, as before), the phase
// (planning, indexing main, merging, retiring staging, ...) and the
// batches done.
type MergeProgress struct {
	MergeResult
	Phase       string `json:"phase"`
	BatchesDone int    `json:"batches_done"`
}

// MergeWorkflow merges a staging table into the worker's main table: plan
// key-disjoint batches from a snapshot of staging, merge them in a bounded
// window, and retire the merged staging files only when every batch
// succeeded. A failed or canceled run leaves staging intact for a rerun.
func MergeWorkflow(ctx workflow.Context, in MergeInput) (MergeResult, error) {
	logger := workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	var res MergeResult
	if err := inputProblem(MergeWorkflowName, in.decodeProblem, []string{"staging_path", "batch_rows", "window"}); err != nil {
		return res, err
	}
	if in.StagingPath == "" {
		return res, temporal.NewNonRetryableApplicationError("merge requires staging_path", activities.ErrTypeInvalidInput, nil)
	}
	if in.BatchRows < 0 || in.Window < 0 {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("batch_rows and window must not be negative (got %d, %d)", in.BatchRows, in.Window),
			activities.ErrTypeInvalidInput, nil)
	}
	phase := "planning"
	done := 0
	refresh := func() {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf(
			"**certlake merge** of `%s`: %s\n\n| batches | done | staging rows | inserted | skipped | staging retired |\n|---:|---:|---:|---:|---:|---|\n| %d | %d | %d | %d | %d | %t |\n",
			in.StagingPath, phase, res.Batches, done, res.TotalStagingRows, res.TotalInserted, res.TotalSkipped, res.StagingRetired))
	}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (MergeProgress, error) {
		return MergeProgress{MergeResult: res, Phase: phase, BatchesDone: done}, nil
	}); err != nil {
		return res, fmt.Errorf("register progress query: %w", err)
	}
	refresh()

	var a *activities.Merge
	var plan activities.PlanMergeResult
	err := workflow.ExecuteActivity(quickOptions(ctx), a.PlanMerge, activities.PlanMergeInput{
		StagingPath: in.StagingPath, BatchRows: in.BatchRows,
		PlanKey: info.WorkflowExecution.ID + "-" + info.WorkflowExecution.RunID,
	}).Get(ctx, &plan)
	if err != nil {
		return res, fail("plan merge of "+in.StagingPath, err)
	}
	res.Batches, res.StagingVersion = plan.Batches, plan.StagingVersion
	if !plan.StagingExists || plan.Batches == 0 {
		phase = "nothing staged"
		refresh()
		logger.Info("merge complete: nothing staged", "staging_path", in.StagingPath,
			"total_inserted", 0, "total_skipped", 0, "total_staging_rows", 0)
		return res, nil
	}

	// Index the main files added since the last merge, so each batch
	// reads only the main files that can hold its keys. Best effort: the
	// activity reports a problem as a warning, never as a failure.
	phase = "indexing main"
	refresh()
	var ix activities.IndexMainResult
	if err := workflow.ExecuteActivity(longOptions(ctx, "index main's keys", plan.HeartbeatTimeoutSeconds, 3),
		a.IndexMain, activities.IndexMainInput{StagingPath: in.StagingPath}).Get(ctx, &ix); err != nil {
		if ctx.Err() != nil {
			phase = "canceled (staging kept)"
			refresh()
			return res, temporal.NewCanceledError("merge canceled; staging kept")
		}
		logger.Warn("main's key index not updated; batches read main by stats alone", "err", err)
	}

	window := in.Window
	if window == 0 {
		window = plan.Window
	}
	if window <= 0 {
		window = 1
	}
	phase = "merging"
	refresh()
	sel := workflow.NewSelector(ctx)
	var firstErr error
	inFlight, nextBatch := 0, 0
	for {
		for inFlight < window && nextBatch < plan.Batches && firstErr == nil && ctx.Err() == nil {
			id := nextBatch
			nextBatch++
			actx := longOptions(ctx, fmt.Sprintf("batch %d of %d", id+1, plan.Batches), plan.HeartbeatTimeoutSeconds, 5)
			f := workflow.ExecuteActivity(actx, a.MergeBatch, activities.MergeBatchInput{
				StagingPath: in.StagingPath, PlanFile: plan.PlanFile, BatchID: id,
			})
			inFlight++
			sel.AddFuture(f, func(f workflow.Future) {
				inFlight--
				var br activities.MergeBatchResult
				if err := f.Get(ctx, &br); err != nil {
					if firstErr == nil && !temporal.IsCanceledError(err) {
						firstErr = fail(fmt.Sprintf("merge batch %d of %d", id+1, plan.Batches), err)
					}
					return
				}
				done++
				res.TotalStagingRows += br.StagingRows
				res.TotalInserted += br.Inserted
				res.TotalSkipped += br.Skipped
				refresh()
			})
		}
		if inFlight == 0 {
			break
		}
		sel.Select(ctx)
	}
	if ctx.Err() != nil {
		phase = "canceled (staging kept)"
		refresh()
		return res, temporal.NewCanceledError("merge canceled; staging kept")
	}
	if firstErr != nil {
		phase = "failed (staging kept)"
		refresh()
		return res, firstErr
	}

	phase = "retiring staging"
	refresh()
	var rr activities.RetireStagingResult
	if err := workflow.ExecuteActivity(quickOptions(ctx), a.RetireStaging, activities.RetireStagingInput{
		StagingPath: in.StagingPath, PlanFile: plan.PlanFile,
	}).Get(ctx, &rr); err != nil {
		return res, fail("retire staging "+in.StagingPath, err)
	}
	res.StagingRetired = true
	phase = "done"
	refresh()
	logger.Info("merge complete", "staging_path", in.StagingPath, "total_inserted", res.TotalInserted,
		"total_skipped", res.TotalSkipped, "total_staging_rows", res.TotalStagingRows,
		"batches", res.Batches, "staging_directory_deleted", rr.DirectoryDeleted)
	return res, nil
}
