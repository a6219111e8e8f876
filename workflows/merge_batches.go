package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// mergeBatches merges the plan's batches from NextBatch on in a sliding
// window. It returns a continue-as-new error once this run has started
// maxBatchesPerRun batches (or the server suggests it) with some left.
func (m *merge) mergeBatches(ctx workflow.Context) error {
	m.setPhase(ctx, "merging")
	var firstErr error
	started := 0
	slidingWindow{size: m.st.Window, start: func() (workflow.Future, func(workflow.Future), bool) {
		if m.st.NextBatch >= m.st.Plan.Batches || firstErr != nil || ctx.Err() != nil ||
			started >= maxBatchesPerRun || continueSuggested(ctx) {
			return nil, nil, false
		}
		id := m.st.NextBatch
		m.st.NextBatch++
		started++
		return m.startBatch(ctx, id), func(f workflow.Future) {
			if err := m.batchDone(ctx, id, f); err != nil && firstErr == nil {
				firstErr = err
			}
		}, true
	}}.run(ctx)
	switch {
	case ctx.Err() != nil:
		m.setPhase(ctx, "canceled (staging kept)")
		return temporal.NewCanceledError("merge canceled; staging kept")
	case firstErr != nil:
		m.setPhase(ctx, "failed (staging kept)")
		return firstErr
	case m.st.NextBatch < m.st.Plan.Batches:
		m.st.Runs++
		in := m.in
		in.State = m.st
		return workflow.NewContinueAsNewError(ctx, MergeWorkflowName, in)
	}
	return nil
}

func (m *merge) startBatch(ctx workflow.Context, id int) workflow.Future {
	var a *activities.Merge
	actx := longOptions(ctx, fmt.Sprintf("batch %d of %d", id+1, m.st.Plan.Batches), m.st.HeartbeatTimeoutSeconds, 5)
	return workflow.ExecuteActivity(actx, a.MergeBatch, activities.MergeBatchInput{
		StagingPath: m.in.StagingPath, PlanFile: m.st.Plan.File, BatchID: id,
	})
}

// batchDone adds a merged batch to the totals. A batch that failed, or was
// canceled while the workflow was not, is an error: staging stays.
func (m *merge) batchDone(ctx workflow.Context, id int, f workflow.Future) error {
	var br activities.MergeBatchResult
	err := f.Get(ctx, &br)
	switch {
	case err != nil && temporal.IsCanceledError(err) && ctx.Err() != nil:
		return nil // the workflow is being canceled; reported by the caller
	case err != nil && temporal.IsCanceledError(err):
		// Not wrapped: the run failed, it was not canceled.
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("merge batch %d of %d was canceled while the merge was not (%v); staging kept", id+1, m.st.Plan.Batches, err),
			"BatchCanceled", nil)
	case err != nil:
		return fail(fmt.Sprintf("merge batch %d of %d", id+1, m.st.Plan.Batches), err)
	}
	m.st.BatchesDone++
	r := &m.st.Result
	r.TotalStagingRows += br.StagingRows
	r.TotalInserted += br.Inserted
	r.TotalSkipped += br.Skipped
	m.show(ctx)
	return nil
}

// retire removes the merged files from staging. It runs on a disconnected
// context and is always awaited: a cancel that arrives now cannot stop a
// deletion under way, so the run waits for it and reports what happened
// instead of ending Canceled while staging is still being deleted.
func (m *merge) retire(ctx workflow.Context) error {
	m.setPhase(ctx, "retiring staging")
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var a *activities.Merge
	var rr activities.RetireStagingResult
	err := workflow.ExecuteActivity(quickOptions(dctx), a.RetireStaging, activities.RetireStagingInput{
		StagingPath: m.in.StagingPath, PlanFile: m.st.Plan.File,
	}).Get(dctx, &rr)
	if err != nil {
		m.setPhase(ctx, "failed: every batch merged, staging not retired")
		m.removePlan(ctx)
		return fail("every batch merged, but retiring staging "+m.in.StagingPath+" failed (rerun the merge: it skips what main has)", err)
	}
	m.st.Result.StagingRetired = true
	if ctx.Err() != nil {
		m.st.Result.Note = fmt.Sprintf("cancel requested while staging was being retired; every batch had merged, "+
			"so the retire was finished (%d staging files removed) and the merge completed", rr.RemovedFiles)
		workflow.GetLogger(ctx).Warn("cancel arrived during retire; merge completed", "removed_files", rr.RemovedFiles)
	}
	m.setPhase(ctx, "done")
	return nil
}

// removePlan deletes the run's plan file (RetireStaging does it on
// success), on a disconnected context so that a canceled run cleans up too.
func (m *merge) removePlan(ctx workflow.Context) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var a *activities.Merge
	err := workflow.ExecuteActivity(quickOptions(dctx), a.RemoveMergePlan, activities.RemovePlansInput{PlanKey: m.st.PlanKey}).Get(dctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("merge plan not removed; table vacuum removes it after the retention", "plan_key", m.st.PlanKey, "err", err)
	}
}
