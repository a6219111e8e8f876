package config_test

import (
	"testing"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/merge"
)

// TestDefaultsMatchEngine: the configuration's defaults are the engine's
// own, so a worker run with no configuration does what the benchmarks
// measured (they call the engine with its defaults).
func TestDefaultsMatchEngine(t *testing.T) {
	d := config.Defaults()
	if d.Merge.BatchRows != merge.DefaultBatchRows {
		t.Errorf("merge.batch_rows default = %d, merge.DefaultBatchRows = %d", d.Merge.BatchRows, merge.DefaultBatchRows)
	}
}
