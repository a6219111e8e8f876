package activities

import (
	"github.com/certlake/certlake/internal/allowed"
	"github.com/certlake/certlake/internal/merge"
)

// checkStaging refuses a staging table named by a workflow input before
// anything is read, created or deleted there: it must not be main (nor lie
// inside it), and it must lie under lake.allowed_locations, since anyone who
// can start a workflow on the task queue can name any location.
// notStagingType is the error type of the first refusal (InvalidInput for a
// backfill, NotStaging for a merge).
func (s LakeSettings) checkStaging(path, notStagingType string) error {
	if _, err := s.allowed().Check("staging_path", path); err != nil {
		return fatal(ErrTypeNotAllowed, err)
	}
	if err := merge.ValidatePaths(s.MainPath, path); err != nil {
		return fatal(notStagingType, err)
	}
	return nil
}

// allowed is the list of locations certlake may write; a nil list (settings
// built by hand) allows nothing.
func (s LakeSettings) allowed() *allowed.List {
	if s.Allowed == nil {
		return &allowed.List{}
	}
	return s.Allowed
}

// checkPlanFile refuses a plan file outside lake.plan_dir: plans are read,
// and their directories deleted, by paths that travel in workflow state.
func (s LakeSettings) checkPlanFile(path string) error {
	dir, err := allowed.New([]string{s.PlanDir})
	if err == nil {
		_, err = dir.Check("plan_file", path)
	}
	if err != nil {
		return fatalf(ErrTypeBadPlan, "plan file %s is not under lake.plan_dir %s: %v", path, s.PlanDir, err)
	}
	return nil
}
