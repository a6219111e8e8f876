//go:build !unix

package record

import "time"

// processCPUTime is not available here; benchmarks fall back to wall time.
func processCPUTime() time.Duration { return 0 }
