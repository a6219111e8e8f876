package ctlogtest

import (
	"os"
	"testing"
)

// NewStaticTB starts a static log in FastTempDir(tb) and closes it when tb
// ends.
func NewStaticTB(tb testing.TB, opts Options) *Log {
	tb.Helper()
	l, err := StartStatic(tb.Context(), FastTempDir(tb), opts)
	if err != nil {
		tb.Fatalf("StartStatic: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("close static log %s: %v", l.Name, err)
		}
	})
	return l
}

// NewRFC6962TB starts an RFC 6962 log and closes it when tb ends.
func NewRFC6962TB(tb testing.TB, opts Options) *Log {
	tb.Helper()
	l, err := StartRFC6962(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("StartRFC6962: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("close rfc6962 log %s: %v", l.Name, err)
		}
	})
	return l
}

// FastTempDir returns a fresh directory, removed when tb ends, on tmpfs
// (/dev/shm) when there is one, else tb.TempDir(). Tessera's POSIX storage
// fsyncs every file it writes; on a slow disk (16 ms per fsync here) that,
// not the log, bounds a bulk load, and tmpfs makes fsync free.
func FastTempDir(tb testing.TB) string {
	tb.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "ctlogtest-"); err == nil {
			tb.Cleanup(func() {
				if err := os.RemoveAll(dir); err != nil {
					tb.Errorf("remove %s: %v", dir, err)
				}
			})
			return dir
		}
	}
	return tb.TempDir()
}
