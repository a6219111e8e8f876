package activities

import (
	"context"

	"github.com/certlake/certlake/internal/plandir"
)

// RemovePlansInput names the run whose plan files are removed.
type RemovePlansInput struct {
	PlanKey string `json:"plan_key"` // as given to DetectGaps or PlanMerge
}

// RemovePlans deletes a backfill's plan files; BackfillWorkflow calls it
// when it ends, whatever the outcome. Idempotent.
func (b *Backfill) RemovePlans(ctx context.Context, in RemovePlansInput) error {
	return removePlans(b.Lake.PlanDir, in)
}

// RemoveMergePlan deletes a merge's plan file when the merge ends without
// retiring staging (RetireStaging removes it otherwise). Idempotent.
func (m *Merge) RemoveMergePlan(ctx context.Context, in RemovePlansInput) error {
	return removePlans(m.Lake.PlanDir, in)
}

func removePlans(root string, in RemovePlansInput) error {
	if in.PlanKey == "" {
		return toTemporal(fatalf(ErrTypeInvalidInput, "remove plans: plan_key is required"))
	}
	if err := plandir.Remove(root, in.PlanKey); err != nil {
		return toTemporal(classify(err))
	}
	return nil
}
