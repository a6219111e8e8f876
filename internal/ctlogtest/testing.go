package ctlogtest

import "testing"

// NewStaticTB starts a static log in tb.TempDir() and closes it when tb ends.
func NewStaticTB(tb testing.TB, opts Options) *Log {
	tb.Helper()
	l, err := StartStatic(tb.Context(), tb.TempDir(), opts)
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
