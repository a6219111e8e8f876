package merge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
)

// TestMergeSpillsUnderTempDir: every DuckDB of a merge spills into a fresh
// directory of its own under DBOptions.TempDir (the worker's scratch),
// removed when the step ends; nothing is left in the OS temp dir.
func TestMergeSpillsUnderTempDir(t *testing.T) {
	osTmp := t.TempDir()
	t.Setenv("TMPDIR", osTmp)
	spill := filepath.Join(t.TempDir(), "scratch", "duckdb") // made on first use

	a, err := openDB(t.Context(), DBOptions{TempDir: spill})
	if err != nil {
		t.Fatal(err)
	}
	b, err := openDB(t.Context(), DBOptions{TempDir: spill})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*duck{a, b} {
		var got string
		if err := d.QueryRowContext(t.Context(), "SELECT current_setting('temp_directory')").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(got) != spill || !strings.HasPrefix(filepath.Base(got), spillPrefix) {
			t.Errorf("temp_directory = %s, want a %s* directory under %s", got, spillPrefix, spill)
		}
	}
	if a.tempDir == b.tempDir {
		t.Errorf("two databases share the spill directory %s", a.tempDir)
	}
	a.Close()
	b.Close()
	if ents, _ := os.ReadDir(spill); len(ents) != 0 {
		t.Errorf("%d entries left in %s after Close, want none", len(ents), spill)
	}

	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10, 11))
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0.Add(time.Hour), 12, 13))
	res, err := Merge(t.Context(), mainPath, stagingPath, Options{DB: DBOptions{TempDir: spill}})
	if err != nil || res.Inserted != 2 {
		t.Fatalf("Merge = %+v, %v; want 2 inserted", res.Totals, err)
	}
	if ents, _ := os.ReadDir(spill); len(ents) != 0 {
		t.Errorf("%d entries left in %s after the merge, want none", len(ents), spill)
	}
	if ents, _ := os.ReadDir(osTmp); len(ents) != 0 {
		t.Errorf("the merge left %s in the OS temp dir", ents[0].Name())
	}
}
