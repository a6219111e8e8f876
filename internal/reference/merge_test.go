package reference

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/record"
)

// TestMergeAgreesWithMerge: the original's merge and certlake's, run on
// copies of one main and staging, insert the same rows and leave main
// with the same keys (staging holding duplicates and keys main has).
func TestMergeAgreesWithMerge(t *testing.T) {
	ctx := t.Context()
	const url = "https://ct.example.com/log/"
	g := laketest.New(7, url)
	seen := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	build := func(dir string) (string, string) {
		mainPath, stagingPath := filepath.Join(dir, "main"), filepath.Join(dir, "staging")
		for _, tb := range []struct {
			path  string
			role  lake.Role
			parts [][]record.Row
		}{
			{mainPath, lake.RoleMain, [][]record.Row{g.Rows(0, 100, seen)}},
			{stagingPath, lake.RoleStaging, [][]record.Row{g.Rows(90, 50, seen), g.Rows(120, 40, seen.Add(24*time.Hour))}},
		} {
			tbl, err := lake.OpenOrCreate(ctx, tb.path, lake.Options{Role: tb.role})
			if err != nil {
				t.Fatal(err)
			}
			for _, rows := range tb.parts {
				if _, err := tbl.Append(ctx, rows, lake.CommitOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return mainPath, stagingPath
	}
	refMain, refStaging := build(t.TempDir())
	mt, err := lake.Open(ctx, refMain, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := lake.Open(ctx, refStaging, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Merge(ctx, mt, st, lake.DBOptions{})
	if err != nil {
		t.Fatalf("reference Merge = %v", err)
	}
	main, staging := build(t.TempDir())
	got, err := merge.Merge(ctx, main, staging, merge.Options{})
	if err != nil {
		t.Fatalf("merge.Merge = %v", err)
	}
	want := merge.Totals{StagingRows: 90, Inserted: 60, Skipped: 30} // keys 100-159 are new
	if ref != want || got.Totals != want {
		t.Errorf("reference %+v, merge %+v; want %+v", ref, got.Totals, want)
	}
	if a, b := keys(t, refMain), keys(t, main); !slices.Equal(a, b) || len(a) != 160 {
		t.Errorf("main keys: reference %d, merge %d; want the same 160", len(a), len(b))
	}
}

func keys(t *testing.T, path string) []uint64 {
	t.Helper()
	tbl, err := lake.Open(t.Context(), path, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := lake.ReadRows(t.Context(), tbl.Files(snap))
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, r := range rows {
		out = append(out, r.CertIndex)
	}
	slices.Sort(out)
	return out
}
