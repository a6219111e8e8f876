package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// fail names the step that failed. When the cause is an application error
// (an activity's or a child's), its type and retryability are kept at the
// top of the workflow's failure, so `temporal workflow show` and clients
// see "InvalidInput, non-retryable" first, not a generic wrapper.
func fail(step string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && !temporal.IsCanceledError(err) {
		return temporal.NewApplicationErrorWithOptions(step+": "+appErr.Message(), appErr.Type(),
			temporal.ApplicationErrorOptions{NonRetryable: appErr.NonRetryable()})
	}
	return fmt.Errorf("%s: %w", step, err)
}
