package ctlogtest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The logs' own klog output drowns test failures; CTLOGTEST_KLOG=1 keeps it.
	if os.Getenv("CTLOGTEST_KLOG") == "" {
		QuietKlog()
	}
	os.Exit(m.Run())
}
