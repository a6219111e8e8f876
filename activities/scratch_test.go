package activities

import (
	"path/filepath"
	"testing"

	"github.com/certlake/certlake/internal/lake"
)

// TestMergeDBSpillsInScratch: the merge's DuckDB spills under
// lake.duckdb.temp_dir when set, else under worker.scratch_dir, else (no
// scratch configured) in a fresh directory under the OS temp dir.
func TestMergeDBSpillsInScratch(t *testing.T) {
	for _, tc := range []struct {
		name, tempDir, scratch, want string
	}{
		{"Scratch", "", "/var/certlake/w1", filepath.Join("/var/certlake/w1", "duckdb")},
		{"TempDirWins", "/fast/spill", "/var/certlake/w1", "/fast/spill"},
		{"Neither", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := LakeSettings{DB: lake.DBOptions{TempDir: tc.tempDir}, Scratch: &lake.Scratch{Dir: tc.scratch}}
			if got := l.mergeDB().TempDir; got != tc.want {
				t.Errorf("mergeDB().TempDir = %q, want %q", got, tc.want)
			}
		})
	}
}
