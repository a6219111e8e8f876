package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"go.temporal.io/sdk/activity"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/storage"
)

// PlanMerge takes a snapshot of the staging table and cuts it into
// key-disjoint batches, written to a plan file. A missing or empty staging
// table is a plan with no batches (AC4.1).
func (m *Merge) PlanMerge(ctx context.Context, in PlanMergeInput) (PlanMergeResult, error) {
	res := PlanMergeResult{Window: m.Defaults.Window, HeartbeatTimeoutSeconds: int(m.Defaults.HeartbeatTimeout.Seconds())}
	if in.StagingPath == "" {
		return res, toTemporal(fatalf(ErrTypeInvalidInput, "merge requires staging_path"))
	}
	if err := m.Lake.checkStaging(in.StagingPath, ErrTypeNotStaging); err != nil {
		return res, toTemporal(err)
	}
	staging, err := merge.OpenStaging(ctx, m.Lake.MainPath, in.StagingPath, in.AdoptStaging, m.Lake.tableOptions(lake.Options{Logger: m.Logger}))
	if err == nil && staging == nil {
		err = lake.ErrNotExist
	}
	if errors.Is(err, lake.ErrNotExist) {
		if isNonEmptyDir(in.StagingPath) {
			return res, toTemporal(fatalf(ErrTypeNotStaging,
				"staging path %s is a directory but not a Delta table; refusing to merge or delete it", in.StagingPath))
		}
		activity.GetLogger(ctx).Info("staging table does not exist; nothing to merge", "staging_path", in.StagingPath)
		return res, nil
	}
	if err != nil {
		return res, toTemporal(classify(err))
	}
	batchRows := in.BatchRows
	if batchRows <= 0 {
		batchRows = m.Defaults.BatchRows
	}
	plan, err := merge.PlanMerge(ctx, staging, merge.PlanOptions{MainPath: m.Lake.MainPath, BatchRows: batchRows, DB: m.Lake.mergeDB()})
	if err != nil {
		return res, toTemporal(classify(err))
	}
	res.StagingExists = true
	res.StagingVersion, res.StagingTableID = plan.StagingVersion, plan.StagingTableID
	res.Batches, res.StagingRows, res.StagingFiles = len(plan.Batches), plan.StagingRows, plan.StagingFiles
	if len(plan.Batches) == 0 {
		activity.GetLogger(ctx).Info("staging table is empty; nothing to merge", "staging_path", in.StagingPath)
		return res, nil
	}
	plans, planLoc, err := m.Lake.planStore(ctx, in.PlanKey)
	if err != nil {
		return res, toTemporal(classify(err))
	}
	res.PlanFile = planLoc.Child(mergePlanName).String()
	if err := writeJSON(ctx, plans, mergePlanName, plan); err != nil {
		return res, toTemporal(classify(fmt.Errorf("write merge plan: %w", err)))
	}
	activity.GetLogger(ctx).Info("merge planned", "staging_path", in.StagingPath, "version", plan.StagingVersion,
		"batches", len(plan.Batches), "rows", plan.StagingRows, "files", plan.StagingFiles)
	return res, nil
}

// IndexMain brings main's key index up to date (see merge.IndexMain): the
// main files the live ingester added since the last run have their exact
// key sets read once, so each batch then anti-joins against those sets and
// reads no indexed main file. The index is a cache, so this step never
// fails a merge: a problem (a main table that cannot be read, a full
// disk) is logged and returned as a warning, and the batches read main by
// its stats alone. Only a cancel ends it with an error.
func (m *Merge) IndexMain(ctx context.Context, in IndexMainInput) (IndexMainResult, error) {
	var res IndexMainResult
	log := activity.GetLogger(ctx)
	main, err := lake.Open(ctx, m.Lake.MainPath, m.Lake.tableOptions(lake.Options{Role: lake.RoleMain, Logger: m.Logger}))
	if errors.Is(err, lake.ErrNotExist) {
		return res, nil // created by the first batch; nothing to index
	}
	if err == nil {
		hb := startHeartbeat(ctx, heartbeatInterval(ctx), res)
		var ir merge.IndexResult
		ir, err = merge.IndexMain(ctx, main, merge.IndexOptions{
			DB:     m.Lake.mergeDB(),
			Logger: m.Logger,
			Progress: func(done, total int) {
				hb.Set(ctx, IndexMainResult{Indexed: done, ToIndex: total})
			},
		})
		hb.Stop()
		res = IndexMainResult{Files: ir.Files, Known: ir.Known, Indexed: ir.Indexed, ToIndex: ir.Files - ir.Known,
			Unreadable: ir.Unreadable, Rows: ir.Rows}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err != nil {
		res.Warning = err.Error()
		log.Warn("main's key index not updated; batches read main files by their stats alone", "err", err)
		return res, nil
	}
	log.Info("main's key index updated", "files", res.Files, "already_indexed", res.Known,
		"indexed", res.Indexed, "unreadable", res.Unreadable, "rows_read", res.Rows)
	return res, nil
}

// MergeBatch merges one batch of the plan into main. It is idempotent: a
// retry of a batch whose commit already landed changes nothing.
func (m *Merge) MergeBatch(ctx context.Context, in MergeBatchInput) (MergeBatchResult, error) {
	var res MergeBatchResult
	if err := m.Lake.checkStaging(in.StagingPath, ErrTypeNotStaging); err != nil {
		return res, toTemporal(err)
	}
	if err := m.Lake.checkPlanFile(in.PlanFile); err != nil {
		return res, toTemporal(err)
	}
	var plan merge.Plan
	if err := m.readPlan(ctx, in.PlanFile, &plan); err != nil {
		return res, toTemporal(planError(err))
	}
	if in.BatchID < 0 || in.BatchID >= len(plan.Batches) {
		return res, toTemporal(fatalf(ErrTypeInvalidInput, "batch %d not in plan %s (%d batches)", in.BatchID, in.PlanFile, len(plan.Batches)))
	}
	staging, err := lake.Open(ctx, in.StagingPath, m.Lake.tableOptions(lake.Options{Role: lake.RoleStaging, Logger: m.Logger}))
	if err != nil {
		return res, toTemporal(classify(err))
	}
	if err := checkTableDir(m.Lake.MainPath, "main table path"); err != nil {
		return res, toTemporal(err)
	}
	main, err := lake.OpenOrCreate(ctx, m.Lake.MainPath, m.Lake.tableOptions(lake.Options{Role: lake.RoleMain,
		AsDERBinary: m.Lake.AsDERBinary, CheckpointInterval: m.Lake.CheckpointInterval, Logger: m.Logger}))
	if err != nil {
		return res, toTemporal(classify(err))
	}
	hb := startHeartbeat(ctx, heartbeatInterval(ctx), merge.Progress{Batch: in.BatchID})
	br, err := merge.MergeBatch(ctx, main, staging, plan.Ref(), plan.Batches[in.BatchID], merge.BatchOptions{
		DB:       m.Lake.mergeDB(),
		Logger:   m.Logger,
		Progress: func(p merge.Progress) { hb.Set(ctx, p) },
	})
	hb.Stop()
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, toTemporal(classify(fmt.Errorf("batch %d: %w", in.BatchID, err)))
	}
	res = MergeBatchResult{StagingRows: br.StagingRows, Inserted: br.Inserted, Skipped: br.Skipped,
		MainVersion: br.MainVersion, AlreadyCommitted: br.AlreadyCommitted, Attempts: br.Attempts}
	if !br.AlreadyCommitted && m.Metrics != nil {
		m.Metrics.RowsMerged(br.Inserted)
	}
	activity.GetLogger(ctx).Info("batch merged", "batch", in.BatchID, "rows", br.StagingRows,
		"inserted", br.Inserted, "skipped", br.Skipped, "already_committed", br.AlreadyCommitted, "attempts", br.Attempts)
	return res, nil
}

// RetireStaging removes the merged files of the plan's snapshot from staging
// and deletes the staging directory when nothing newer is left in it.
func (m *Merge) RetireStaging(ctx context.Context, in RetireStagingInput) (RetireStagingResult, error) {
	var res RetireStagingResult
	if err := m.Lake.checkStaging(in.StagingPath, ErrTypeNotStaging); err != nil {
		return res, toTemporal(err)
	}
	if err := m.Lake.checkPlanFile(in.PlanFile); err != nil {
		return res, toTemporal(err)
	}
	var plan merge.Plan
	if err := m.readPlan(ctx, in.PlanFile, &plan); err != nil {
		return res, toTemporal(planError(err))
	}
	staging, err := lake.Open(ctx, in.StagingPath, m.Lake.tableOptions(lake.Options{Role: lake.RoleStaging, Logger: m.Logger}))
	if err != nil {
		return res, toTemporal(classify(err))
	}
	main, err := lake.Open(ctx, m.Lake.MainPath, m.Lake.tableOptions(lake.Options{Role: lake.RoleMain, Logger: m.Logger}))
	if err != nil {
		return res, toTemporal(classify(err))
	}
	rr, err := merge.Retire(ctx, main, staging, plan, merge.RetireOptions{Logger: m.Logger})
	if err != nil {
		return res, toTemporal(classify(err))
	}
	res = RetireStagingResult{RemovedFiles: rr.RemovedFiles, DirectoryDeleted: rr.DirectoryDeleted}
	if err := m.removePlan(ctx, in.PlanFile); err != nil {
		activity.GetLogger(ctx).Warn("remove merge plan", "err", err)
	}
	return res, nil
}

func isNonEmptyDir(p string) bool {
	ents, err := os.ReadDir(p)
	return err == nil && len(ents) > 0
}

// mergePlanName is the merge plan's object under its plan directory.
const mergePlanName = "merge-plan.json"

// writeJSON writes v as the object key of s (a store's Put is atomic: a
// reader never sees half a plan).
func writeJSON(ctx context.Context, s storage.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return storage.PutBytes(ctx, s, key, b)
}

// readPlan reads the merge plan at ref (a path or URI).
func (m *Merge) readPlan(ctx context.Context, ref string, v any) error {
	s, key, err := m.Lake.opener().OpenObject(ctx, "plan_file", ref)
	if err != nil {
		return err
	}
	b, err := storage.ReadAll(ctx, s, key)
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("plan %s: %w: %v", ref, gaps.ErrMalformedPlan, err)
	}
	return nil
}

// removePlan deletes the objects of the plan directory holding ref, one
// by one (never a prefix blindly: only what the listing shows there).
func (m *Merge) removePlan(ctx context.Context, ref string) error {
	s, _, err := m.Lake.opener().OpenObject(ctx, "plan_file", ref)
	if err != nil {
		return err
	}
	objs, err := s.List(ctx, "", "", 0)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}
