package workflows

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// A misspelled key typed into `temporal workflow start --input` fails the
// run at once, naming the key, instead of being dropped.
func TestWorkflowInputsRejectUnknownFields(t *testing.T) {
	tests := []struct {
		name  string
		wf    any
		input map[string]any
		want  string
	}{
		{BackfillWorkflowName, BackfillWorkflow, map[string]any{"stagng_path": "/lake/staging"}, `unknown field "stagng_path"`},
		{MergeWorkflowName, MergeWorkflow, map[string]any{"staging_path": "/lake/staging", "batchrows": 5}, `unknown field "batchrows"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflowWithOptions(tt.wf, workflow.RegisterOptions{Name: tt.name})
			env.ExecuteWorkflow(tt.name, tt.input)
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeInvalidInput || !appErr.NonRetryable() ||
				!strings.Contains(appErr.Error(), tt.want) {
				t.Fatalf("%s(%v) error = %v, want non-retryable %s naming %s", tt.name, tt.input, err, activities.ErrTypeInvalidInput, tt.want)
			}
		})
	}
}
