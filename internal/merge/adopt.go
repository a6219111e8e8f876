package merge

import (
	"context"
	"errors"
	"fmt"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
)

// A staging table another tool wrote (certstream-server-rust's --staging-path
// backfill) has the certstream schema but not certlake's staging marker.
// Merge reads from staging and then deletes it, so such a table is merged
// only once adopted: AdoptStaging proves it is not main and commits the
// marker.

// notMarked is the error for an unmarked staging table merge was not told
// to adopt: it says how to adopt it.
func notMarked(path string) error {
	return fmt.Errorf("%w: %s has no %s=%s marker. If it is a staging table another tool wrote "+
		"(certstream-server-rust --staging-path), merge it with \"adopt_staging\": true in MergeInput "+
		"(starter merge --adopt-staging): certlake then checks that it is not the main table and marks it",
		ErrNotStaging, path, lake.ConfigRole, lake.RoleStaging)
}

// AdoptStaging marks the table at stagingPath as a certlake staging table
// after proving it is not main: not main's location, not inside main nor
// holding it (ValidatePaths, symlinks resolved), and not carrying main's
// table id (metaData.id; a copy of main has it). A table already marked is
// returned as is. The result is the table opened as marked staging.
// errors.Is(err, ErrNotStaging) when the proof fails; lake.ErrNotExist when
// there is no table at stagingPath.
func AdoptStaging(ctx context.Context, mainPath, stagingPath string, opts lake.Options) (*lake.Table, error) {
	if err := ValidatePaths(mainPath, stagingPath); err != nil {
		return nil, fmt.Errorf("adopt staging: %w", err)
	}
	opts.Role, opts.AcceptUnmarked = lake.RoleStaging, true
	staging, err := lake.Open(ctx, stagingPath, opts)
	if err != nil {
		return nil, fmt.Errorf("adopt staging: %w", err)
	}
	if staging.Marked() {
		return staging, nil
	}
	snap, err := staging.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("adopt staging: %w", err)
	}
	mainID, err := tableID(ctx, mainPath)
	if err != nil {
		return nil, fmt.Errorf("adopt staging: main table: %w", err)
	}
	if mainID != "" && mainID == snap.Metadata.ID {
		return nil, fmt.Errorf("%w: %s has the main table's id %s: it is the main table %s (or a copy of it), not a staging table",
			ErrNotStaging, stagingPath, mainID, mainPath)
	}
	if err := staging.MarkStaging(ctx); err != nil {
		return nil, fmt.Errorf("adopt staging: %w", err)
	}
	opts.AcceptUnmarked = false
	adopted, err := lake.Open(ctx, stagingPath, opts)
	if err != nil {
		return nil, fmt.Errorf("adopt staging: reopen: %w", err)
	}
	return adopted, nil
}

// tableID returns the metaData.id of the Delta table at path, "" when
// there is none.
func tableID(ctx context.Context, path string) (string, error) {
	t, err := delta.Open(ctx, path, delta.Options{})
	if errors.Is(err, delta.ErrNotATable) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s, err := t.Snapshot(ctx)
	if err != nil {
		return "", err
	}
	return s.Metadata.ID, nil
}
