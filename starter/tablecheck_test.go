package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/lake"
)

func TestTableCheck(t *testing.T) {
	simple, err := filepath.Abs("../internal/delta/testdata/delta/simple_table")
	if err != nil {
		t.Fatal(err)
	}
	dir := workdir(t, "")
	const a = "https://ct.example.com/logs/a"
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39})
	appendRows(t, main, lake.RoleMain, a, [2]uint64{40, 79})
	appendRows(t, main, lake.RoleMain, a, [2]uint64{80, 99})

	// A table certlake wrote, and one delta-rs wrote, pass.
	for _, p := range []string{main, simple} {
		r := runStarter(t, "table", "check", p)
		if r.code != 0 || !strings.Contains(r.stdout, "follows the protocol rules") {
			t.Errorf("table check %s = %d, %q, %q; want 0 and a clean verdict", p, r.code, r.stdout, r.stderr)
		}
	}

	// A hole in the commit sequence and a commit with an action that
	// lacks its required fields: exit 1, each problem named.
	if err := os.Remove(filepath.Join(main, "_delta_log", "00000000000000000001.json")); err != nil {
		t.Fatal(err)
	}
	bad := `{"add":{"path":"x.parquet","partitionValues":{},"modificationTime":1,"dataChange":true}}` + "\n"
	if err := os.WriteFile(filepath.Join(main, "_delta_log", "00000000000000000003.json"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runStarter(t, "table", "check", "--json", main)
	var v checkView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("table check --json output %q: %v", r.stdout, err)
	}
	all := strings.Join(v.Problems, "\n")
	if r.code != 1 || v.OK || len(v.Problems) < 2 || !strings.Contains(all, "00000000000000000001.json is missing") || !strings.Contains(all, "size") {
		t.Errorf("table check of a broken log = %d, %+v; want exit 1 naming the missing commit 1 and add.size", r.code, v)
	}
	r = runStarter(t, "table", "check", main)
	if r.code != 1 || !strings.Contains(r.stdout, "problems in the Delta log") {
		t.Errorf("table check (text) of a broken log = %d, %q", r.code, r.stdout)
	}

	// Not a table: an error, not a verdict.
	r = runStarter(t, "table", "check", filepath.Join(dir, "nope"))
	if r.code != 1 || !strings.Contains(r.stderr, "is not a Delta table") {
		t.Errorf("table check of a missing table = %d, %q", r.code, r.stderr)
	}
	if r := runStarter(t, "table", "check"); r.code != 2 {
		t.Errorf("table check without PATH = %d, want 2", r.code)
	}
}
