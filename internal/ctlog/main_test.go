package ctlog

import (
	"os"
	"testing"

	"github.com/certlake/certlake/internal/ctlogtest"
)

func TestMain(m *testing.M) {
	// The in-process logs' klog output drowns test failures; CTLOGTEST_KLOG=1 keeps it.
	if os.Getenv("CTLOGTEST_KLOG") == "" {
		ctlogtest.QuietKlog()
	}
	os.Exit(m.Run())
}
