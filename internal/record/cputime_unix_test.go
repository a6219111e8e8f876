//go:build unix

package record

import (
	"syscall"
	"time"
)

// processCPUTime returns the CPU time (user + system) the test process has
// used. Benchmarks divide by it rather than wall time, so that a busy shared
// machine does not deflate the rows-per-core figure.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
