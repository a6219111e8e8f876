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

// failWith is fail for a run that has a partial outcome to report: the
// failure keeps the cause's type and retryability and carries details (a
// failed segment's committed rows, say) for the caller to read.
func failWith(err error, details any) error {
	msg, typ, nonRetryable := err.Error(), "", false
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		typ, nonRetryable = appErr.Type(), appErr.NonRetryable()
	}
	return temporal.NewApplicationErrorWithOptions(msg, typ,
		temporal.ApplicationErrorOptions{NonRetryable: nonRetryable, Details: []any{details}})
}

// failureDetails decodes the details a failed or canceled run attached to
// its error (see failWith), reporting whether there were any.
func failureDetails(err error, v any) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		return appErr.Details(v) == nil
	}
	var canErr *temporal.CanceledError
	if errors.As(err, &canErr) && canErr.HasDetails() {
		return canErr.Details(v) == nil
	}
	return false
}
