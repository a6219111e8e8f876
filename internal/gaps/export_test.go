package gaps

import (
	"context"
	"database/sql"
)

// detectReference is reference.Gaps, the original's planner, which the
// tests compare Detect with. internal/reference imports gaps, so the
// external test package sets it (reference_test.go).
var detectReference func(ctx context.Context, db *sql.DB, keys string, logs []LogCeiling, opts Options, original bool) ([]Range, error)

// SetDetectReference sets detectReference, for reference_test.go.
func SetDetectReference(f func(ctx context.Context, db *sql.DB, keys string, logs []LogCeiling, opts Options, original bool) ([]Range, error)) {
	detectReference = f
}
