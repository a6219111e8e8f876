package lake

import (
	"os"
	"path/filepath"
	"testing"
)

// TestScratchClean: Clean removes the uploads and spill files a killed
// worker left in its configured scratch and keeps the download cache; a
// scratch made under the OS temp dir is removed whole.
func TestScratchClean(t *testing.T) {
	dir := t.TempDir()
	s := &Scratch{Dir: dir}
	if got, want := s.SpillDir(), filepath.Join(dir, "duckdb"); got != want {
		t.Errorf("SpillDir() = %s, want %s", got, want)
	}
	if _, err := s.Cache(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"uploads/part-1.parquet", "duckdb/certlake-merge-duckdb-1/duckdb_temp_block", "cache/keep"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Clean(); err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]bool{"uploads": false, "duckdb": false, "cache/keep": true} {
		if _, err := os.Stat(filepath.Join(dir, sub)); (err == nil) != want {
			t.Errorf("after Clean, %s exists = %t, want %t", sub, err == nil, want)
		}
	}

	osTmp := t.TempDir()
	t.Setenv("TMPDIR", osTmp)
	var made Scratch
	if made.SpillDir() != "" {
		t.Errorf("SpillDir() of an unconfigured scratch = %q, want \"\" (the OS temp dir)", made.SpillDir())
	}
	if d := made.dir(); filepath.Dir(filepath.Dir(d)) != osTmp {
		t.Fatalf("upload dir of an unconfigured scratch = %s, want one under %s", d, osTmp)
	}
	if err := made.Clean(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(osTmp); len(ents) != 0 {
		t.Errorf("Clean left %s in the OS temp dir", ents[0].Name())
	}
}
