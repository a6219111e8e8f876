package e2e

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// AC4.1: a merge with nothing staged (a nightly run on a quiet day) ends
// green with zero counts.
func TestMergeWithNothingStagedSucceeds(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(300, 0)[:1]})
	res, err := e.merge("merge-empty", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if res != (workflows.MergeResult{}) {
		t.Fatalf("merge result = %+v, want zero counts", res)
	}
}

// AC4.5: an empty staging_path fails at once, non-retryable, with a clear
// message.
func TestMergeRequiresStagingPath(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(100, 0)[:1]})
	_, err := e.merge("merge-no-path", workflows.MergeInput{})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidInput || !appErr.NonRetryable() ||
		!strings.Contains(appErr.Error(), "merge requires staging_path") {
		t.Fatalf("merge without staging_path: err = %v, want non-retryable %s 'merge requires staging_path'", err, activities.ErrTypeInvalidInput)
	}
}
