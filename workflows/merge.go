package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// MergeState is what MergeWorkflow carries across continue-as-new.
type MergeState struct {
	PlanKey                 string      `json:"plan_key"`
	Plan                    mergePlan   `json:"plan"`
	NextBatch               int         `json:"next_batch"` // every batch below has merged
	BatchesDone             int         `json:"batches_done"`
	Result                  MergeResult `json:"result"`
	Runs                    int         `json:"runs"` // runs before this one
	HeartbeatTimeoutSeconds int         `json:"heartbeat_timeout_seconds"`
	Window                  int         `json:"window"`
}

// mergePlan is the part of PlanMerge's answer the batches need.
type mergePlan struct {
	File    string `json:"file"`
	Batches int    `json:"batches"`
}

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
// window (continuing as new every maxBatchesPerRun batches), and retire the
// merged staging files only when every batch succeeded. A failed or
// canceled run leaves staging intact for a rerun.
func MergeWorkflow(ctx workflow.Context, in MergeInput) (MergeResult, error) {
	if err := in.validate(); err != nil {
		return MergeResult{}, err
	}
	if id := MergeWorkflowID(in.StagingPath); workflow.GetInfo(ctx).WorkflowExecution.ID != id {
		return mergeUnder(ctx, id, in)
	}
	m, err := newMerge(ctx, in)
	if err == nil && m.st.Plan.Batches > 0 {
		err = m.mergeBatches(ctx)
	}
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		return m.st.Result, err
	}
	if err != nil {
		m.removePlan(ctx)
		return m.st.Result, err
	}
	if m.st.Plan.Batches == 0 {
		return m.st.Result, nil
	}
	if err := m.retire(ctx); err != nil {
		return m.st.Result, err
	}
	res := m.st.Result
	workflow.GetLogger(ctx).Info("merge complete", "staging_path", in.StagingPath, "total_inserted", res.TotalInserted,
		"total_skipped", res.TotalSkipped, "total_staging_rows", res.TotalStagingRows, "batches", res.Batches, "runs", m.st.Runs+1)
	return res, nil
}

func (in MergeInput) validate() error {
	if err := inputProblem(MergeWorkflowName, in.decodeProblem, []string{"staging_path", "batch_rows", "window", "adopt_staging", "state"}); err != nil {
		return err
	}
	if in.StagingPath == "" {
		return temporal.NewNonRetryableApplicationError("merge requires staging_path", activities.ErrTypeInvalidInput, nil)
	}
	if _, ok := CanonicalStagingPath(in.StagingPath); !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"staging_path must be an absolute path or an s3:// or file:// URI, got %q (the merge's workflow id is derived from it, and the worker may run in another directory)",
			in.StagingPath), activities.ErrTypeInvalidInput, nil)
	}
	if in.BatchRows < 0 || in.Window < 0 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("batch_rows and window must not be negative (got %d, %d)", in.BatchRows, in.Window),
			activities.ErrTypeInvalidInput, nil)
	}
	return nil
}

// mergeUnder runs the merge as a child under the staging table's merge
// workflow id, so that a run started under any other id (a schedule's, one
// typed by hand) cannot merge the table while another merge does. If one
// is running, this run merges nothing and says which.
func mergeUnder(ctx workflow.Context, id string, in MergeInput) (MergeResult, error) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:          id,
		StaticSummary:       "merge " + in.StagingPath,
		WaitForCancellation: true,
	})
	var res MergeResult
	err := workflow.ExecuteChildWorkflow(cctx, MergeWorkflowName, in).Get(ctx, &res)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		res.Skipped = fmt.Sprintf("a merge of %s is already running as workflow %s (temporal workflow describe -w %s); this run merged nothing",
			in.StagingPath, id, id)
		workflow.SetCurrentDetails(ctx, "**certlake merge** skipped: "+res.Skipped)
		workflow.GetLogger(ctx).Warn("merge skipped", "reason", res.Skipped)
		return res, nil
	}
	if err != nil && temporal.IsCanceledError(err) && ctx.Err() != nil {
		return res, temporal.NewCanceledError("merge canceled; staging kept")
	}
	if err != nil {
		return res, fail("merge under "+id, err)
	}
	return res, nil
}

// merge is the state of one MergeWorkflow run.
type merge struct {
	in    MergeInput
	st    *MergeState
	phase string
}

// newMerge registers the progress query and, on a first run, plans the
// merge and indexes main.
func newMerge(ctx workflow.Context, in MergeInput) (*merge, error) {
	m := &merge{in: in, st: in.State, phase: "merging"}
	if m.st == nil {
		info := workflow.GetInfo(ctx)
		m.st = &MergeState{PlanKey: info.WorkflowExecution.ID + "-" + info.WorkflowExecution.RunID}
		m.phase = "planning"
	}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (MergeProgress, error) {
		return MergeProgress{MergeResult: m.st.Result, Phase: m.phase, BatchesDone: m.st.BatchesDone}, nil
	}); err != nil {
		return m, fmt.Errorf("register progress query: %w", err)
	}
	m.show(ctx)
	if in.State != nil {
		return m, nil
	}
	if err := m.plan(ctx); err != nil || m.st.Plan.Batches == 0 {
		return m, err
	}
	return m, m.indexMain(ctx)
}

func (m *merge) setPhase(ctx workflow.Context, phase string) {
	m.phase = phase
	m.show(ctx)
}

func (m *merge) show(ctx workflow.Context) {
	r := m.st.Result
	workflow.SetCurrentDetails(ctx, fmt.Sprintf(
		"**certlake merge** of `%s`: %s\n\n| batches | done | staging rows | inserted | skipped | staging retired |\n|---:|---:|---:|---:|---:|---|\n| %d | %d | %d | %d | %d | %t |\n",
		m.in.StagingPath, m.phase, r.Batches, m.st.BatchesDone, r.TotalStagingRows, r.TotalInserted, r.TotalSkipped, r.StagingRetired))
}

// plan snapshots staging and cuts it into batches.
func (m *merge) plan(ctx workflow.Context) error {
	var a *activities.Merge
	var plan activities.PlanMergeResult
	err := workflow.ExecuteActivity(quickOptions(ctx), a.PlanMerge, activities.PlanMergeInput{
		StagingPath: m.in.StagingPath, BatchRows: m.in.BatchRows, AdoptStaging: m.in.AdoptStaging, PlanKey: m.st.PlanKey,
	}).Get(ctx, &plan)
	if err != nil {
		return fail("plan merge of "+m.in.StagingPath, err)
	}
	m.st.Result.Batches, m.st.Result.StagingVersion = plan.Batches, plan.StagingVersion
	m.st.Plan = mergePlan{File: plan.PlanFile, Batches: plan.Batches}
	m.st.HeartbeatTimeoutSeconds = plan.HeartbeatTimeoutSeconds
	m.st.Window = m.in.Window
	if m.st.Window == 0 {
		m.st.Window = max(plan.Window, 1)
	}
	if !plan.StagingExists || plan.Batches == 0 {
		m.st.Plan.Batches = 0
		m.setPhase(ctx, "nothing staged")
		workflow.GetLogger(ctx).Info("merge complete: nothing staged", "staging_path", m.in.StagingPath,
			"total_inserted", 0, "total_skipped", 0, "total_staging_rows", 0)
	}
	return nil
}

// indexMain indexes the main files added since the last merge, so each
// batch reads only the main files that can hold its keys. Best effort: the
// activity reports a problem as a warning, never as a failure.
func (m *merge) indexMain(ctx workflow.Context) error {
	m.setPhase(ctx, "indexing main")
	var a *activities.Merge
	var ix activities.IndexMainResult
	err := workflow.ExecuteActivity(longOptions(ctx, "index main's keys", m.st.HeartbeatTimeoutSeconds, 3),
		a.IndexMain, activities.IndexMainInput{StagingPath: m.in.StagingPath}).Get(ctx, &ix)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		m.setPhase(ctx, "canceled (staging kept)")
		return temporal.NewCanceledError("merge canceled; staging kept")
	}
	workflow.GetLogger(ctx).Warn("main's key index not updated; batches read main by stats alone", "err", err)
	return nil
}
