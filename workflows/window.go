package workflows

import "go.temporal.io/sdk/workflow"

// slidingWindow keeps up to size futures in flight: start is asked for the
// next one whenever a slot is free, and each completion runs its callback
// before the window is refilled. start returns ok=false when there is
// nothing more to start (for now: the window asks again after the next
// completion). run returns once nothing is in flight and start has nothing.
type slidingWindow struct {
	size  int
	start func() (f workflow.Future, done func(workflow.Future), ok bool)
}

func (w slidingWindow) run(ctx workflow.Context) {
	sel := workflow.NewSelector(ctx)
	inFlight := 0
	for {
		for inFlight < w.size {
			f, done, ok := w.start()
			if !ok {
				break
			}
			inFlight++
			sel.AddFuture(f, func(f workflow.Future) {
				inFlight--
				done(f)
			})
		}
		if inFlight == 0 {
			return
		}
		sel.Select(ctx)
	}
}
