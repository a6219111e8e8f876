package activities

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/statefile"
)

func TestClassifyErrors(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("open table /lake/main: %w", err) }
	tests := []struct {
		name         string
		err          error
		wantType     string // "" = not an application error
		nonRetryable bool
		nextDelay    time.Duration
	}{
		{"corrupt table", wrap(delta.ErrCorrupt), ErrTypeBadTable, true, 0},
		{"unsupported feature", wrap(delta.ErrUnsupported), ErrTypeUnsupported, true, 0},
		{"not certstream", wrap(lake.ErrNotCertstream), ErrTypeBadTable, true, 0},
		{"wrong role", wrap(lake.ErrWrongRole), ErrTypeNotStaging, true, 0},
		{"not staging", wrap(merge.ErrNotStaging), ErrTypeNotStaging, true, 0},
		{"state file missing", wrap(statefile.ErrNotFound), ErrTypeStateFile, true, 0},
		{"state file malformed", wrap(statefile.ErrMalformed), ErrTypeStateFile, true, 0},
		{"log list", wrap(ctlog.ErrLogList), ErrTypeLogList, true, 0},
		{"from at ceiling", wrap(gaps.ErrFromAtCeiling), ErrTypeInvalidInput, true, 0},
		{"invalid row", wrap(lake.ErrInvalidRow), ErrTypeInvalidInput, true, 0},
		{"malformed plan", wrap(gaps.ErrMalformedPlan), ErrTypeBadPlan, true, 0},
		{"commit conflict", wrap(delta.ErrConflict), "", false, 0},
		{"503", &ctlog.RangeError{Start: 5, End: 9, Err: &ctlog.HTTPError{Status: 503}}, "", false, 0},
		{"429 long retry-after", &ctlog.RangeError{Start: 5, End: 9,
			Err: &ctlog.HTTPError{Status: 429, RetryAfter: 10 * time.Minute}}, ErrTypeRateLimited, false, 10 * time.Minute},
		{"canceled", fmt.Errorf("fetch: %w", context.Canceled), "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toTemporal(classify(tt.err))
			if !errors.Is(got, tt.err) && tt.wantType == "" {
				t.Fatalf("toTemporal(classify(%v)) = %v, want the error unchanged", tt.err, got)
			}
			var appErr *temporal.ApplicationError
			isApp := errors.As(got, &appErr)
			if tt.wantType == "" {
				if isApp {
					t.Fatalf("toTemporal(classify(%v)) = application error %q, want a plain (retried) error", tt.err, appErr.Type())
				}
				return
			}
			if !isApp || appErr.Type() != tt.wantType || appErr.NonRetryable() != tt.nonRetryable || appErr.NextRetryDelay() != tt.nextDelay {
				t.Fatalf("toTemporal(classify(%v)) = %v, want type %s non-retryable %t next delay %s",
					tt.err, got, tt.wantType, tt.nonRetryable, tt.nextDelay)
			}
		})
	}
}
