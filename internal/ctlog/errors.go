package ctlog

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrNotFound reports that the log answered 404 Not Found. An [*HTTPError]
	// with Status 404 matches it with errors.Is.
	ErrNotFound = errors.New("not found")

	// ErrLogList marks a log list that could not be loaded or parsed. Retrying
	// the same call will not help; callers should treat it as a configuration
	// error.
	ErrLogList = errors.New("bad log list")

	// ErrBeyondTree reports a range that reaches past the log's tree size.
	ErrBeyondTree = errors.New("range beyond tree size")
)

// HTTPError is a response with a status other than 200 OK, returned after any
// retries were used up (or at once for statuses that are not retried).
type HTTPError struct {
	URL    string
	Status int
	// RetryAfter is the wait the log asked for in its Retry-After header,
	// or zero. A 429 whose Retry-After exceeds Config.MaxRetryAfter is
	// returned at once so the caller can schedule the retry itself.
	RetryAfter time.Duration
	// Message is the start of the response body, for diagnostics.
	Message string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is makes a 404 match [ErrNotFound].
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// RangeError reports the part of a requested range that was not fetched:
// every index before Start was emitted, [Start, End] (inclusive) was not.
// Err says why (an [*HTTPError], a timeout, context.Canceled, ...).
type RangeError struct {
	Start, End uint64
	Err        error
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("entries [%d, %d] not fetched: %v", e.Start, e.End, e.Err)
}

func (e *RangeError) Unwrap() error { return e.Err }

// retryableError marks a response that was delivered but is unusable in a
// way a new attempt may fix: a truncated or invalid body, an empty
// get-entries answer.
type retryableError struct{ err error }

func (e retryableError) Error() string { return e.err.Error() }
func (e retryableError) Unwrap() error { return e.err }

// permanentError marks a failure that another attempt cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }
