package activities

import (
	"context"

	"github.com/certlake/certlake/internal/plandir"
	"github.com/certlake/certlake/internal/storage"
)

// RemovePlansInput names the run whose plan files are removed.
type RemovePlansInput struct {
	PlanKey string `json:"plan_key"` // as given to DetectGaps or PlanMerge
}

// RemovePlans deletes a backfill's plan files; BackfillWorkflow calls it
// when it ends, whatever the outcome. Idempotent.
func (b *Backfill) RemovePlans(ctx context.Context, in RemovePlansInput) error {
	return removePlans(ctx, b.Lake, in)
}

// RemoveMergePlan deletes a merge's plan file when the merge ends without
// retiring staging (RetireStaging removes it otherwise). Idempotent.
func (m *Merge) RemoveMergePlan(ctx context.Context, in RemovePlansInput) error {
	return removePlans(ctx, m.Lake, in)
}

func removePlans(ctx context.Context, lake LakeSettings, in RemovePlansInput) error {
	if in.PlanKey == "" {
		return toTemporal(fatalf(ErrTypeInvalidInput, "remove plans: plan_key is required"))
	}
	loc, err := storage.ParseLocation("lake.plan_dir", lake.PlanDir)
	if err != nil {
		return toTemporal(classify(err))
	}
	s, err := lake.opener().Open(ctx, loc)
	if err != nil {
		return toTemporal(classify(err))
	}
	if err := plandir.Remove(ctx, s, in.PlanKey); err != nil {
		return toTemporal(classify(err))
	}
	return nil
}
