package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
)

// Activity option helpers, one per kind of activity, so timeouts and retry
// policies are decided in one place.

// quickOptions suits short activities that read config, state files or plans.
func quickOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.NonRetryable,
		},
	})
}

// longOptions suits activities that heartbeat their progress (FetchRange,
// MergeBatch): a worker crash is noticed within the heartbeat timeout, a
// retry resumes from the last heartbeat, and cancellation is awaited so the
// activity can stop cleanly.
func longOptions(ctx workflow.Context, summary string, heartbeatSeconds int, maxAttempts int32) workflow.Context {
	heartbeat := time.Duration(heartbeatSeconds) * time.Second
	if heartbeat <= 0 {
		heartbeat = defaultHeartbeat
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    heartbeat,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			MaximumAttempts:        maxAttempts,
			NonRetryableErrorTypes: activities.NonRetryable,
		},
	})
}
