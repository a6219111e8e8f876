//go:build !linux

package main

import "errors"

// pinProcess is not available here: item 3 compares unpinned runs.
func pinProcess(pid, cpu int) error { return errors.ErrUnsupported }
