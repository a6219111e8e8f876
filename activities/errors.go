package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/statefile"
	"github.com/certlake/certlake/internal/storage"
)

// Application error types. They name what the user must fix, and the
// workflows list them in their retry policies' NonRetryableErrorTypes.
const (
	ErrTypeInvalidInput = "InvalidInput"     // a workflow or activity input is wrong
	ErrTypeBadTable     = "BadTable"         // not a certstream table, corrupt log, schema mismatch
	ErrTypeUnsupported  = "UnsupportedTable" // a Delta feature certlake cannot read or write
	ErrTypeNotStaging   = "NotStaging"       // a path that is not a certlake staging table
	ErrTypeStateFile    = "StateFile"        // missing or malformed state file
	ErrTypeLogList      = "LogList"          // unreachable or malformed log list
	ErrTypeUnknownLog   = "UnknownLog"       // a log that is not configured or listed
	ErrTypeBadPlan      = "BadPlan"          // a missing or malformed plan file
	ErrTypeStorage      = "StorageConfig"    // wrong credentials, bucket, endpoint or location (storage.ErrConfig)
	ErrTypeVerification = "Verification"     // a log served what its signed tree does not prove
	ErrTypeNoLogKey     = "NoLogKey"         // a verified log without a public key
	ErrTypeNotAllowed   = "NotAllowed"       // a location outside lake.allowed_locations
	// ErrTypeRateLimited is retryable: a log asked for a long wait.
	ErrTypeRateLimited = "RateLimited"
)

// NonRetryable lists the error types that retrying cannot fix.
var NonRetryable = []string{
	ErrTypeInvalidInput, ErrTypeBadTable, ErrTypeUnsupported, ErrTypeNotStaging,
	ErrTypeStateFile, ErrTypeLogList, ErrTypeUnknownLog, ErrTypeBadPlan, ErrTypeStorage,
	ErrTypeVerification, ErrTypeNoLogKey, ErrTypeNotAllowed,
}

// classified is an error with its application error type decided.
type classified struct {
	typ string
	err error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// fatal marks err as non-retryable with the given type.
func fatal(typ string, err error) error { return &classified{typ: typ, err: err} }

// fatalf is fatal with a formatted message.
func fatalf(typ, format string, args ...any) error {
	return fatal(typ, fmt.Errorf(format, args...))
}

// toTemporal turns an internal error into what Temporal should see: a
// non-retryable application error for bad input, the error itself (retried)
// for everything else. context.Canceled passes through unchanged.
func toTemporal(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var c *classified
	if errors.As(err, &c) {
		// The message already holds the whole chain; a cause would repeat it.
		return temporal.NewNonRetryableApplicationError(err.Error(), c.typ, nil)
	}
	// A log that asked for a long wait (Retry-After beyond what ctlog waits
	// out in place) gets it from Temporal: the retry is scheduled then, and
	// the wait is visible in the Web UI instead of hidden in an activity.
	var h *ctlog.HTTPError
	if errors.As(err, &h) && h.RetryAfter > 0 {
		return temporal.NewApplicationErrorWithOptions(err.Error(), ErrTypeRateLimited,
			temporal.ApplicationErrorOptions{NextRetryDelay: h.RetryAfter})
	}
	return err
}

// classify maps the engine's sentinel errors to application error types:
// what retrying cannot fix becomes fatal, everything else (network, 5xx,
// rate limits, commit conflicts, disk errors) is returned as is and retried.
func classify(err error) error {
	var c *classified
	switch {
	case err == nil, errors.As(err, &c), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, delta.ErrUnsupported):
		return fatal(ErrTypeUnsupported, err)
	case errors.Is(err, delta.ErrCorrupt), errors.Is(err, delta.ErrVersionNotFound),
		errors.Is(err, lake.ErrNotCertstream):
		return fatal(ErrTypeBadTable, err)
	case errors.Is(err, merge.ErrIncomplete):
		// Retrying would only report "already committed": stop and say so.
		return fatal(ErrTypeBadTable, err)
	case errors.Is(err, lake.ErrWrongRole), errors.Is(err, merge.ErrNotStaging):
		return fatal(ErrTypeNotStaging, err)
	case errors.Is(err, statefile.ErrNotFound), errors.Is(err, statefile.ErrMalformed):
		return fatal(ErrTypeStateFile, err)
	case errors.Is(err, ctlog.ErrLogList):
		return fatal(ErrTypeLogList, err)
	case errors.Is(err, ctlog.ErrVerification):
		return fatal(ErrTypeVerification, verificationMessage(err))
	case errors.Is(err, ctlog.ErrNoKey):
		return fatal(ErrTypeNoLogKey, err)
	case errors.Is(err, gaps.ErrMalformedPlan):
		return fatal(ErrTypeBadPlan, err)
	case errors.Is(err, storage.ErrConfig):
		return fatal(ErrTypeStorage, err)
	case errors.Is(err, gaps.ErrFromAtCeiling), errors.Is(err, lake.ErrInvalidRow):
		return fatal(ErrTypeInvalidInput, err)
	}
	return err
}

// planError classifies a failure to read a plan: a missing or malformed
// plan is fatal, a store that did not answer is retried.
func planError(err error) error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, gaps.ErrMalformedPlan) {
		return fatal(ErrTypeBadPlan, err)
	}
	return classify(err)
}

// verificationMessage says which entries failed verification and why,
// starting with "verification:" (the failed range's reason).
func verificationMessage(err error) error {
	var ve *ctlog.VerificationError
	if !errors.As(err, &ve) {
		return err
	}
	var re *ctlog.RangeError
	if errors.As(err, &re) {
		return fmt.Errorf("verification: entries [%d, %d] not staged: %s", re.Start, re.End, ve.Reason)
	}
	return fmt.Errorf("verification: %s", ve.Reason)
}
