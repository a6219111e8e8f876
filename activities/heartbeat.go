package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeater records an activity's latest progress and heartbeats it on a
// ticker, so a long DuckDB query or a rate-limit wait inside one step does
// not look like a dead worker. A crashed worker stops the ticker with it,
// which is what the heartbeat timeout is for; a hung step is still bounded
// by the activity's StartToCloseTimeout.
type heartbeater struct {
	mu   sync.Mutex
	last any
	stop chan struct{}
	done sync.WaitGroup
}

// startHeartbeat heartbeats initial, then the latest Set value, every
// interval until Stop.
func startHeartbeat(ctx context.Context, interval time.Duration, initial any) *heartbeater {
	h := &heartbeater{last: initial, stop: make(chan struct{})}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	activity.RecordHeartbeat(ctx, initial)
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				h.mu.Lock()
				v := h.last
				h.mu.Unlock()
				activity.RecordHeartbeat(ctx, v)
			case <-h.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return h
}

// Set replaces the progress to report and reports it now (the SDK throttles).
func (h *heartbeater) Set(ctx context.Context, v any) {
	h.mu.Lock()
	h.last = v
	h.mu.Unlock()
	activity.RecordHeartbeat(ctx, v)
}

// Stop ends the ticker.
func (h *heartbeater) Stop() {
	close(h.stop)
	h.done.Wait()
}

// heartbeatInterval is a third of the activity's heartbeat timeout.
func heartbeatInterval(ctx context.Context) time.Duration {
	if t := activity.GetInfo(ctx).HeartbeatTimeout; t > 0 {
		return t / 3
	}
	return 10 * time.Second
}
