package merge

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
)

func TestValidatePaths(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main")
	if err := os.MkdirAll(filepath.Join(main, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link-to-main")
	if err := os.Symlink(main, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		staging string
		ok      bool
	}{
		{filepath.Join(dir, "staging"), true},
		{filepath.Join(dir, "main-staging"), true}, // a sibling sharing a prefix
		{main, false},
		{main + "/", false},
		{filepath.Join(dir, "x", "..", "main"), false},
		{filepath.Join(main, "staging"), false},
		{filepath.Join(main, "_delta_log"), false},
		{filepath.Join(dir, "staging", "..", "main", "s"), false},
		{dir, false}, // holds main
		{"/", false},
		{"", false},
		{link, false},
		{filepath.Join(link, "staging"), false},
	}
	for _, tc := range tests {
		err := ValidatePaths(main, tc.staging)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePaths(%q, %q) = %v, want ok %v", main, tc.staging, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotStaging) {
			t.Errorf("ValidatePaths(%q, %q) = %v, want ErrNotStaging", main, tc.staging, err)
		}
	}
}

func TestGroupFiles(t *testing.T) {
	r := func(url string, lo, hi uint64) KeyRange { return KeyRange{SourceURL: url, Start: lo, End: hi} }
	files := []stagedFile{
		{path: "f0", rows: 10, ranges: []KeyRange{r("a", 0, 9)}},
		{path: "f1", rows: 10, ranges: []KeyRange{r("a", 5, 14)}},                // overlaps f0
		{path: "f2", rows: 10, ranges: []KeyRange{r("a", 20, 29)}},               // alone
		{path: "f3", rows: 10, ranges: []KeyRange{r("b", 0, 9)}},                 // same indices, other log
		{path: "f4", rows: 20, ranges: []KeyRange{r("a", 25, 25), r("c", 0, 5)}}, // overlaps f2
		{path: "f5", rows: 10, ranges: []KeyRange{r("c", 5, 7)}},                 // overlaps f4 through c
		{path: "f6", rows: 0}, // empty: no group
		{path: "f7", rows: 5, ranges: []KeyRange{r("a", 15, 19)}}, // touches f1 and f2 but overlaps neither
	}
	groups := groupFiles(files)
	var got [][]string
	for _, g := range groups {
		got = append(got, g.files)
	}
	want := [][]string{{"f0", "f1"}, {"f7"}, {"f2", "f4", "f5"}, {"f3"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("groupFiles = %v, want %v", got, want)
	}
	batches := packBatches(groups, 25)
	var gotB [][]string
	for _, b := range batches {
		gotB = append(gotB, b.Files)
	}
	wantB := [][]string{{"f0", "f1", "f7"}, {"f2", "f4", "f5"}, {"f3"}}
	if !slices.EqualFunc(gotB, wantB, slices.Equal) {
		t.Errorf("packBatches(25) = %v, want %v", gotB, wantB)
	}
	if got, want := batches[0].Keys, []KeyRange{r("a", 0, 19)}; !slices.Equal(got, want) {
		t.Errorf("batch 0 keys = %v, want %v", got, want)
	}
	if got, want := batches[1].Keys, []KeyRange{r("a", 20, 29), r("c", 0, 7)}; !slices.Equal(got, want) {
		t.Errorf("batch 1 keys = %v, want %v", got, want)
	}
	if batches[1].Rows != 40 || batches[1].ID != 1 {
		t.Errorf("batch 1 = %+v, want 40 rows (a group is never split)", batches[1])
	}
}

// TestPlanMerge plans a real staging table whose files overlap, including
// one file committed without stats, whose keys the plan reads.
func TestPlanMerge(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	st := appendTable(t, stagingPath, lake.RoleStaging,
		rows(logA, day0, span(0, 9)...),
		rows(logA, day0, span(5, 14)...),
		rows(logA, day0, span(100, 109)...),
		rows(logB, day0, span(0, 9)...),
	)
	// Re-commit one file's data as a new file without stats.
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var src delta.Add
	for _, a := range snap.Files {
		if b := statsBox(a); b.URLMin == logB {
			src = a
		}
	}
	data, err := os.ReadFile(snap.LocalPath(src))
	if err != nil {
		t.Fatal(err)
	}
	nostats := filepath.Join(filepath.Dir(snap.LocalPath(src)), "nostats.parquet")
	if err := os.WriteFile(nostats, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(stagingPath, nostats)
	add := src
	add.Path, add.Stats = filepath.ToSlash(rel), ""
	if _, err := st.Delta().Commit(ctx, snap.Version, []delta.Action{{Add: &add}}, delta.CommitOptions{Operation: "WRITE"}); err != nil {
		t.Fatalf("commit add without stats = %v", err)
	}

	plan, err := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath, BatchRows: 15})
	if err != nil {
		t.Fatalf("PlanMerge = %v", err)
	}
	if plan.StagingRows != 50 || plan.StagingFiles != 5 || plan.StagingVersion != snap.Version+1 {
		t.Errorf("PlanMerge = %+v, want 50 rows in 5 files at version %d", plan, snap.Version+1)
	}
	var keys [][]KeyRange
	for _, b := range plan.Batches {
		keys = append(keys, b.Keys)
	}
	want := [][]KeyRange{
		{{logA, 0, 14}},
		{{logA, 100, 109}},
		{{logB, 0, 9}}, // the stats-less copy groups with its original
	}
	if !slices.EqualFunc(keys, want, slices.Equal) {
		t.Errorf("batch keys = %v, want %v", keys, want)
	}
	if n := len(plan.Batches[2].Files); n != 2 {
		t.Errorf("batch 2 files = %v, want the file and its stats-less copy", plan.Batches[2].Files)
	}
}

func TestPlanMergeRefuses(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 1))
	unmarked := filepath.Join(filepath.Dir(stagingPath), "unmarked")
	appendTable(t, unmarked, lake.RoleMain, rows(logA, day0, 2))
	nested := filepath.Join(mainPath, "staging")
	appendTable(t, nested, lake.RoleStaging, rows(logA, day0, 3))
	for _, p := range []string{unmarked, mainPath, nested} {
		if _, err := OpenStaging(ctx, mainPath, p, false, lake.Options{}); !errors.Is(err, ErrNotStaging) {
			t.Errorf("OpenStaging(%s) = %v, want ErrNotStaging", p, err)
		}
		if _, err := Merge(ctx, mainPath, p, Options{}); !errors.Is(err, ErrNotStaging) {
			t.Errorf("Merge(%s) = %v, want ErrNotStaging", p, err)
		}
		if !exists(p) {
			t.Errorf("%s was deleted", p)
		}
	}
	st, err := lake.Open(ctx, unmarked, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath}); !errors.Is(err, ErrNotStaging) {
		t.Errorf("PlanMerge(unmarked) = %v, want ErrNotStaging", err)
	}
}
