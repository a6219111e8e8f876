package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinProcess sets the CPU affinity of every thread of process pid (0: this
// one) to cpu alone, or to every CPU of the machine if cpu < 0. Threads a
// pinned thread starts later inherit its affinity. Item 3 pins certlake and
// the log it reads to different vCPUs while it compares verified and
// unverified runs: this machine's two vCPUs are the two threads of one
// core, and a thread's CPU time grows by half or more while the other one
// runs, so the CPU of runs that overlapped differently is not comparable.
func pinProcess(pid, cpu int) error {
	var set unix.CPUSet
	if cpu < 0 {
		for c := range runtime.NumCPU() { // the affinity at start: every CPU

			set.Set(c)
		}
	} else {
		set.Set(cpu)
	}
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	// Twice: a thread started during the first pass by a thread not yet
	// pinned has the old affinity.
	for range 2 {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("pin process %d: %w", pid, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pin thread %d of process %d to CPU %d: %w", tid, pid, cpu, err)
			}
		}
	}
	return nil
}
