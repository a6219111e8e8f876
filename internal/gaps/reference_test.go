package gaps_test

import (
	"context"
	"database/sql"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/reference"
)

func init() {
	gaps.SetDetectReference(func(ctx context.Context, db *sql.DB, keys string, logs []gaps.LogCeiling, opts gaps.Options, original bool) ([]gaps.Range, error) {
		return reference.Gaps(ctx, db, keys, logs, reference.GapsOptions{Options: opts, Original: original})
	})
}
